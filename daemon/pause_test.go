package daemon

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// The pause decision is a pure function of the replicated deadline and
// the leader's clock: an indefinite pause holds until resumed, a timed one
// until its deadline, and at the deadline it is expired (the leader then
// commits its end).
func TestPauseAtDecision(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := fsmState{Paused: map[string]Pause{
		"forever": {Since: t0},
		"timed":   {Since: t0, Until: t0.Add(2 * time.Hour)},
	}}
	for _, tc := range []struct {
		cluster         string
		now             time.Time
		paused, expired bool
	}{
		{"none", t0, false, false},
		{"forever", t0.Add(1000 * time.Hour), true, false},
		{"timed", t0.Add(time.Hour), true, false},
		{"timed", t0.Add(2*time.Hour - time.Nanosecond), true, false},
		{"timed", t0.Add(2 * time.Hour), false, true},
		{"timed", t0.Add(3 * time.Hour), false, true},
	} {
		_, paused, expired := pauseAt(&st, tc.cluster, tc.now)
		if paused != tc.paused || expired != tc.expired {
			t.Errorf("%s at %s: paused %v expired %v, want %v %v", tc.cluster, tc.now.Sub(t0), paused, expired, tc.paused, tc.expired)
		}
	}
}

// Operator commands are validated like the others (a malformed one is
// refused, never applied), a leader's "timed pause ended" does not end a
// pause renewed meanwhile, and both survive a snapshot and restore.
func TestFSMOperatorCommands(t *testing.T) {
	f := newFSM()
	now := time.Now().UTC()
	for _, bad := range []command{
		{Op: "pause", Cluster: "c"},
		{Op: "pause", Pause: &Pause{Since: now}},
		{Op: "pause", Cluster: "c", Pause: &Pause{Since: now, Until: now.Add(-time.Second)}},
		{Op: "pause", Cluster: "c", Pause: &Pause{Since: now, Reason: strings.Repeat("x", maxOperatorReason+1)}},
		{Op: "pause", Cluster: strings.Repeat("c", maxField+1), Pause: &Pause{Since: now}},
		{Op: "resume"},
		{Op: "maintenance", Cluster: "c", On: true},
		{Op: "maintenance", Cluster: "c", Server: "db2", On: true, Reason: strings.Repeat("x", maxOperatorReason+1)},
	} {
		if r := apply(t, f, bad); r == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if st := f.snapshot(); len(st.Paused) != 0 || len(st.Maint) != 0 {
		t.Fatalf("a refused command changed the state: %+v %+v", st.Paused, st.Maint)
	}
	first := Pause{Since: now, Until: now.Add(time.Hour), Reason: "upgrade"}
	if r := apply(t, f, command{Op: "pause", Cluster: "c", Pause: &first}); r != nil {
		t.Fatal(r)
	}
	renewed := Pause{Since: now.Add(time.Minute), Reason: "longer"}
	if r := apply(t, f, command{Op: "pause", Cluster: "c", Pause: &renewed}); r != nil {
		t.Fatal(r)
	}
	// The end of the first pause, committed late by a leader, is refused.
	if r := apply(t, f, command{Op: "resume", Cluster: "c", Pause: &first}); r == nil {
		t.Fatal("a stale end of pause lifted the renewed pause")
	}
	if _, paused, _ := pauseAt(ptr(f.snapshot()), "c", now.Add(2*time.Hour)); !paused {
		t.Fatal("the renewed pause is gone")
	}
	for _, c := range []command{
		{Op: "maintenance", Cluster: "c", Server: "db2", On: true, Reason: "disk swap", At: now},
		{Op: "maintenance", Cluster: "c", Server: "db3", On: true, At: now},
		{Op: "maintenance", Cluster: "c", Server: "db3", On: false, At: now},
	} {
		if r := apply(t, f, c); r != nil {
			t.Fatal(r)
		}
	}
	if m := maintenanceOf(ptr(f.snapshot()), "c"); len(m) != 1 || m["db2"] != "disk swap" {
		t.Fatalf("maintenance: %v", m)
	}

	snap, _ := f.Snapshot()
	var buf bytes.Buffer
	snap.(fsmSnap).Persist(&sinkBuf{Buffer: &buf})
	g := newFSM()
	if err := g.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	st := g.snapshot()
	if p, paused, _ := pauseAt(&st, "c", now); !paused || p.Reason != "longer" || maintenanceOf(&st, "c")["db2"] != "disk swap" {
		t.Fatalf("after restore: paused %v %+v, maintenance %v", paused, p, st.Maint)
	}
	if r := apply(t, g, command{Op: "resume", Cluster: "c"}); r != nil {
		t.Fatal(r)
	}
	if _, paused, _ := pauseAt(ptr(g.snapshot()), "c", now); paused {
		t.Fatal("resume did not lift the pause")
	}
}

// A pause is a warning in the check report; a server in maintenance is
// shown, and its own findings are kept, marked, but no longer count.
func TestOperatorChecks(t *testing.T) {
	checks := []failover.Check{
		{Name: "replication", Server: "db2:3306", Status: failover.Fail, Message: "SQL thread stopped"},
		{Name: "replication", Server: "db3:3306", Status: failover.OK, Message: "running"},
	}
	out := OperatorChecks(checks, nil, map[string]string{"db2:3306": "rebuilding"})
	if s := failover.Summarize(out); s != failover.OK {
		t.Fatalf("a server in maintenance still fails the check: %s %+v", s, out)
	}
	if !strings.Contains(out[0].Message, "in maintenance: rebuilding") || !strings.Contains(out[0].Message, "SQL thread stopped") {
		t.Fatalf("the finding is hidden or unmarked: %+v", out[0])
	}
	if last := out[len(out)-1]; last.Name != "maintenance" || last.Server != "db2:3306" {
		t.Fatalf("no maintenance line: %+v", out)
	}
	out = OperatorChecks(checks[1:], &Pause{Since: time.Now(), Reason: "upgrade"}, nil)
	if s := failover.Summarize(out); s != failover.Warn || !strings.Contains(fmt.Sprint(out), "paused") || !strings.Contains(fmt.Sprint(out), "upgrade") {
		t.Fatalf("a pause is not a warning naming it: %+v", out)
	}
}

// On fakes (fakeserver, not MariaDB): a paused cluster whose primary dies
// is not failed over while paused, whatever the leader; a timed pause ends
// by itself on the leader's clock (committed to raft) and the dead primary
// is then failed over, to the replica that is not in maintenance although
// the one in maintenance is marked candidate.
func TestPausedClusterNotFailedOverUntilThePauseEnds(t *testing.T) {
	primary, r2, r3, cc := fakeCluster(t)
	cc.Spec.Servers[1].Candidate = true // r2 would be chosen
	tm := startMonitors(t, 3, []ClusterConfig{cc})
	leader := leaderOf(t, tm)
	eventually(t, "the monitors to agree on the primary", 10*time.Second, func() bool {
		return leader.fsm.snapshot().Primary["c"] == primary.Addr()
	})
	now := leader.now()
	if err := leader.apply(command{Op: "maintenance", Cluster: "c", Server: r2.Addr(), On: true, Reason: "disk swap", At: now}); err != nil {
		t.Fatal(err)
	}
	if err := leader.apply(command{Op: "pause", Cluster: "c", Pause: &Pause{Since: now, Until: now.Add(4 * time.Second), Reason: "test"}, At: now}); err != nil {
		t.Fatal(err)
	}
	killFake(primary, r2, r3)
	eventually(t, "the leader to judge the primary dead", 10*time.Second, func() bool {
		return leader.cluster("c").status()["state"] == StateDead
	})
	if leader.cluster("c").status()["paused"] == nil {
		t.Fatal("status does not show the pause")
	}
	for time.Since(now) < 3500*time.Millisecond { // sampled until just before the deadline
		if st := leader.fsm.snapshot(); len(st.History) > 0 || len(st.Open) > 0 {
			t.Fatalf("a paused cluster was failed over: %+v %+v", st.History, st.Open)
		}
		time.Sleep(100 * time.Millisecond) // sampling for an unwanted failover
	}
	eventually(t, "the failover after the pause ran out", 15*time.Second, func() bool {
		st := leader.fsm.snapshot()
		return len(st.History) == 1 && len(st.Paused) == 0
	})
	if rep := leader.fsm.snapshot().History[0]; rep.NewPrimary != r3.Addr() {
		t.Fatalf("failed over to %s, want %s (%s is in maintenance): %+v", rep.NewPrimary, r3.Addr(), r2.Addr(), rep)
	}
}

// The API checks operator changes before committing them: a unit-less or
// negative --for, an unknown server, a state other than on/off.
func TestOperatorActionRefusesBadInput(t *testing.T) {
	_, _, _, cc := fakeCluster(t)
	tm := startMonitors(t, 1, []ClusterConfig{cc})
	d := leaderOf(t, tm)
	cm := d.cluster("c")
	for _, q := range []string{"pause?for=3600", "pause?for=-1h", "maintenance?server=nope:1&state=on", "maintenance?server=" + cc.Spec.Servers[1].Address + "&state=maybe"} {
		action, _, _ := strings.Cut(q, "?")
		rec := httptest.NewRecorder()
		d.operatorAction(rec, httptest.NewRequest(http.MethodPost, "/api/clusters/c/"+q, nil), cm, action)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, rec.Code, rec.Body)
		}
	}
	st := d.fsm.snapshot()
	if len(st.Paused) != 0 || len(st.Maint) != 0 {
		t.Fatalf("refused input changed the state: %+v %+v", st.Paused, st.Maint)
	}
	rec := httptest.NewRecorder()
	d.operatorAction(rec, httptest.NewRequest(http.MethodPost, "/api/clusters/c/pause?for=2h&reason=upgrade", nil), cm, "pause")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "manual failover and switchover still run") {
		t.Fatalf("pause: %d %s", rec.Code, rec.Body)
	}
	if p, paused, _ := pauseAt(ptr(d.fsm.snapshot()), "c", d.now().Add(119*time.Minute)); !paused || p.Reason != "upgrade" {
		t.Fatalf("pause for 2h not recorded: %+v", p)
	}
}

// An agent whose server the latest lease lists in maintenance answers 503
// on /replica (and /read-only) with the reason; out of maintenance, the
// same healthy replica answers 200.
func TestAgentReplicaEndpointLeavesMaintenance(t *testing.T) {
	ag := &Agent{cfg: AgentConfig{Server: "198.18.0.12:3306", Cluster: ClusterConfig{Spec: topology.ClusterSpec{Name: "app1"}}}}
	ag.local = topology.ServerState{Reachable: true, ReadOnly: true, ServerID: 12,
		Replication: []topology.ReplicaConn{{SourceHost: "198.18.0.11", SourcePort: 3306, IOState: "Yes", SQLRunning: true}}}
	h := ag.handler()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	ag.lease = LeaseMsg{Cluster: "app1", Primary: "198.18.0.11:3306", Epoch: 3}
	if code, body := get("/replica"); code != 200 {
		t.Fatalf("/replica of a healthy replica: %d %s", code, body)
	}
	ag.lease.Maint = map[string]string{"198.18.0.12:3306": "disk swap"}
	for _, path := range []string{"/replica", "/read-only"} {
		if code, body := get(path); code != 503 || !strings.Contains(body, "disk swap") {
			t.Fatalf("%s of a replica in maintenance: %d %s", path, code, body)
		}
	}
}

func ptr[T any](v T) *T { return &v }
