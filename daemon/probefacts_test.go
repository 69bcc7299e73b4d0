package daemon

// These tests use FAKE servers (test/fakeserver on loopback): they check
// which statements the daemon's routine probe sends through its pool, not
// server behaviour.

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

// The routine probe reuses slow facts only on a session the pool kept: a
// session the server closed, or a server that failed its last probe, is
// read in full at once.
func TestRoutineProbeReusesFactsOnPooledSessionsOnly(t *testing.T) {
	st := fakeMaria(1, nil, "")
	st.Status = map[string]string{"Uptime": "5000"}
	s, err := fakeserver.Start("myha", "pw", st)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var failing atomic.Bool
	inner := topology.SQLDialer{Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: time.Second}
	p := newPoolDialer(inner, func(string) bool { return failing.Load() }, 300*time.Millisecond, time.Now)
	defer p.closeAll()
	facts := topology.NewFactsCache(topology.FactsMaxAge, nil)
	spec := topology.ClusterSpec{Name: "c", ConnectTimeout: time.Second, ReadTimeout: time.Second, Servers: []topology.ServerSpec{{Address: s.Addr()}}}
	probe := func(name string, wantFull bool) {
		t.Helper()
		n := len(s.Statements())
		snap := topology.DiscoverRoutine(context.Background(), spec, p, facts)
		if v := snap.Servers[0]; !v.Reachable || v.Error != "" {
			t.Fatalf("%s: %+v", name, v.ServerState)
		}
		full := slices.Contains(s.Statements()[n:], topology.VersionQuery)
		if full != wantFull || snap.ReusedFacts() == wantFull {
			t.Fatalf("%s: full read %v (reused %v), want %v: %q", name, full, snap.ReusedFacts(), wantFull, s.Statements()[n:])
		}
	}
	probe("first probe", true)
	probe("pooled session", false)
	s.DropConnections()
	probe("after the server closed the session", true)
	probe("pooled session again", false)
	failing.Store(true)
	probe("a server that failed its last probe", true)
}

// While the primary fails or a failover runs here, the probe reads
// everything: its snapshot may be the one a failover plans with.
func TestRoutineFactsOnlyWhileHealthy(t *testing.T) {
	cm := &clusterMon{facts: topology.NewFactsCache(0, nil)}
	if cm.routineFacts() == nil {
		t.Fatal("a healthy cluster's probe does not use the cache")
	}
	cm.failures = 1
	if cm.routineFacts() != nil {
		t.Fatal("the probe reuses facts while the primary fails")
	}
	cm.failures = 0
	cm.acting.Store(true)
	if cm.routineFacts() != nil {
		t.Fatal("the probe reuses facts while a failover runs")
	}
	cm.acting.Store(false)
	cm.resuming.Store(true)
	if cm.routineFacts() != nil {
		t.Fatal("the probe reuses facts while a failover resumes")
	}
}
