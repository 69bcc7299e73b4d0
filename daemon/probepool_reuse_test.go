package daemon

// These tests use FAKE servers (test/fakeserver on loopback): they check
// what the prober makes of a reused session (the deadline of a write on
// it), not server behaviour.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

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
