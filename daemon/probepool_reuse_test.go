package daemon

// These tests use FAKE servers (test/fakeserver on loopback) and a fake
// dialer: they check what the prober makes of a reused session (the
// deadline of a write on it, a replacement the server refuses), not
// server behaviour.

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	sqlmysql "github.com/go-sql-driver/mysql"

	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

// slowStatementMon is a cluster monitor whose prober pool uses a connect
// timeout of 300 ms and a read timeout of 2 s, against a fake primary
// whose statements starting with slowPrefix take 700 ms: slower than a
// connect, well within a statement's bound.
func slowStatementMon(t *testing.T, slowPrefix string) (*clusterMon, *fakeserver.Server) {
	t.Helper()
	s, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.OnQuery = func(q string) (*mysql.Result, bool, error) {
		up := strings.ToUpper(q)
		switch {
		case strings.HasPrefix(up, slowPrefix):
			time.Sleep(700 * time.Millisecond)
			return nil, true, nil
		case strings.HasPrefix(up, "CREATE ") || strings.HasPrefix(up, "REPLACE "):
			return nil, true, nil
		}
		return nil, false, nil
	}
	spec := topology.ClusterSpec{Name: "c1", ConnectTimeout: 300 * time.Millisecond, ReadTimeout: 2 * time.Second,
		Servers: []topology.ServerSpec{{Address: s.Addr()}}}
	inner := topology.SQLDialer{Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: spec.ConnectTimeout, ReadTimeout: spec.ReadTimeout}
	cm := &clusterMon{d: &Daemon{self: MonitorAddr{Name: "m1"}}, cfg: ClusterConfig{Spec: spec, WriteProbe: true}, failing: map[string]bool{}}
	cm.pool = newPoolDialer(inner, func(string) bool { return false }, spec.ConnectTimeout, time.Now)
	cm.probeDialer = cm.pool
	t.Cleanup(cm.pool.closeAll)
	// A routine probe leaves its session in the pool, as every interval does.
	if st := probeWith(cm.pool, s.Addr()); !st.Reachable {
		t.Fatalf("first probe: %+v", st)
	}
	if cm.pool.idleCount() != 1 {
		t.Fatal("the probe's session was not kept")
	}
	return cm, s
}

// A primary whose commit takes longer than a connect but less than the
// read timeout (slow fsync, a busy disk) is alive and writable: the write
// probe on the session the routine probe left in the pool must get the
// read timeout, as on a new session, not the connect timeout meant for
// the liveness check. Otherwise every interval counts it as down.
func TestWriteProbeOnReusedSessionGetsReadTimeout(t *testing.T) {
	cm, _ := slowStatementMon(t, "REPLACE INTO MYHA.HEARTBEAT")
	cm.heartbeatReady.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cm.writeProbe(ctx, cm.cfg.Spec.Servers[0].Address); err != nil {
		t.Fatalf("write probe of a primary that commits in 700 ms (read_timeout 2 s) failed: %v", err)
	}
}

// The SQL fence (SET GLOBAL read_only=1 waits for running writes) gets
// its whole bound on a reused session too.
func TestFenceSQLOnReusedSessionGetsReadTimeout(t *testing.T) {
	cm, s := slowStatementMon(t, "SET GLOBAL READ_ONLY")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap := topology.Snapshot{}
	if err := cm.fenceSQL(ctx, &snap, s.Addr()); err != nil {
		t.Fatalf("fencing a primary whose read_only takes 700 ms (connect 300 ms + read 2 s allowed) failed: %v", err)
	}
}

// refusingDialer dials for real until refuse is set, then answers every
// connect as a server at max_connections does.
type refusingDialer struct {
	inner  topology.Dialer
	refuse *atomic.Bool
}

func (r refusingDialer) Dial(ctx context.Context, addr string) (topology.Querier, error) {
	if r.refuse.Load() {
		return nil, &topology.ServerError{Addr: addr, Op: "connect", Err: &sqlmysql.MySQLError{Number: 1040, Message: "Too many connections"}}
	}
	return r.inner.Dial(ctx, addr)
}

// A primary whose kept probe session was closed (an operator or pt-kill
// killing idle sessions to free slots) and that refuses the new one with
// "too many connections" is alive: the probe says it answered, as a
// refused fresh connect does, so it is no reason to fail over.
func TestProbePoolRefusedReplacementCountsAsAnswered(t *testing.T) {
	s, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var refuse atomic.Bool
	inner := refusingDialer{inner: topology.SQLDialer{Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: time.Second}, refuse: &refuse}
	p := newPoolDialer(inner, func(string) bool { return false }, 300*time.Millisecond, time.Now)
	defer p.closeAll()
	if st := probeWith(p, s.Addr()); !st.Reachable {
		t.Fatalf("first probe: %+v", st)
	}
	refuse.Store(true)
	// A fresh connect refused: answered (the rule the pool must keep).
	fresh := topology.Probe(context.Background(), inner, topology.ServerSpec{Address: s.Addr()})
	if !fresh.Answered {
		t.Fatalf("a refused fresh connect is not counted as answered: %+v", fresh)
	}
	s.DropConnections()
	st := probeWith(p, s.Addr())
	if st.Reachable || !st.Answered {
		t.Fatalf("kept session closed, replacement refused with 1040: Reachable=%v Answered=%v (%s); want answered, as a refused fresh connect", st.Reachable, st.Answered, st.Error)
	}
}
