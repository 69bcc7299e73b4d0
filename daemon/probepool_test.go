package daemon

// These tests use FAKE servers (test/fakeserver on loopback): they check
// the prober's connection reuse, not server behaviour.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

func probeWith(p *poolDialer, addr string) topology.ServerState {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return topology.Probe(ctx, p, topology.ServerSpec{Address: addr})
}

// Probes reuse one session; a session the server closed is replaced at
// once; a killed server is reported down at once, not after a timeout.
func TestProbePoolReusesAndReplacesSessions(t *testing.T) {
	s, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var failing atomic.Bool
	inner := topology.SQLDialer{Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: time.Second}
	p := newPoolDialer(inner, func(string) bool { return failing.Load() }, 300*time.Millisecond, time.Now)
	defer p.closeAll()
	for i := 0; i < 5; i++ {
		if st := probeWith(p, s.Addr()); !st.Reachable || st.Error != "" {
			t.Fatalf("probe %d: %+v", i, st)
		}
	}
	if n := s.Successes(); n != 1 {
		t.Fatalf("5 probes logged in %d times, want 1 (the session reused)", n)
	}
	s.DropConnections() // a restart, or wait_timeout
	if st := probeWith(p, s.Addr()); !st.Reachable {
		t.Fatalf("probe after the server closed the session: %+v", st)
	}
	if n := s.Successes(); n != 2 {
		t.Fatalf("logins after a dropped session: %d, want 2", n)
	}
	failing.Store(true) // a server that failed its last probe is dialled afresh
	probeWith(p, s.Addr())
	if n := s.Successes(); n != 3 {
		t.Fatalf("logins for a failing server: %d, want 3", n)
	}
	failing.Store(false)
	probeWith(p, s.Addr())
	s.Kill()
	start := time.Now()
	if st := probeWith(p, s.Addr()); st.Reachable {
		t.Fatalf("killed server reported reachable: %+v", st)
	}
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Fatalf("a killed server took %s to report down (a refused connect is immediate)", took)
	}
}

// A server that stops answering on a reused session (cut off, hung) is
// reported down within the connect timeout, as a fresh connect would be,
// not after the read timeout.
func TestProbePoolUnansweredSessionFailsWithinConnectTimeout(t *testing.T) {
	s, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inner := topology.SQLDialer{Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: 3 * time.Second}
	p := newPoolDialer(inner, func(string) bool { return false }, 300*time.Millisecond, time.Now)
	defer p.closeAll()
	if st := probeWith(p, s.Addr()); !st.Reachable {
		t.Fatalf("first probe: %+v", st)
	}
	var hang atomic.Bool
	hang.Store(true)
	s.OnQuery = func(q string) (*mysql.Result, bool, error) {
		if hang.Load() {
			time.Sleep(2 * time.Second)
		}
		return nil, false, nil
	}
	start := time.Now()
	st := probeWith(p, s.Addr())
	took := time.Since(start)
	hang.Store(false)
	if st.Reachable {
		t.Fatalf("an unanswering server reported reachable: %+v", st)
	}
	if took > 800*time.Millisecond {
		t.Fatalf("unanswered session reported after %s, want about the connect timeout (300ms)", took)
	}
	if p.idleCount() != 0 {
		t.Fatal("the unanswered session went back to the pool")
	}
}
