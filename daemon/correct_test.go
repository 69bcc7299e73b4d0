package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// server builds a snapshot view: src "" is a root.
func server(addr string, ro bool, src string, io string) topology.ServerView {
	v := topology.ServerView{ServerState: topology.ServerState{Spec: topology.ServerSpec{Address: addr}, Reachable: true, ReadOnly: ro,
		Dialect: topology.Dialect{Flavor: "mariadb"}}}
	if src != "" {
		h, p := splitAddr(src)
		v.Replication = []topology.ReplicaConn{{SourceHost: h, SourcePort: p, IOState: io, SQLRunning: true}}
		v.Source = src
	}
	return v
}

func kinds(acts []Action) string {
	var out []string
	for _, a := range acts {
		out = append(out, string(a.Kind)+":"+a.Server)
	}
	return strings.Join(out, ",")
}

func TestPlanCorrections(t *testing.T) {
	const p, r1, r2 = "db1:3306", "db2:3306", "db3:3306"
	healthy := Verdict{State: StateHealthy}
	st := func(agreed string) fsmState {
		return fsmState{Primary: map[string]string{"c": agreed}, Open: map[string]*Decision{}}
	}
	for _, tc := range []struct {
		name    string
		servers []topology.ServerView
		primary string
		verdict Verdict
		state   fsmState
		want    string
	}{
		{"healthy: nothing to do",
			[]topology.ServerView{server(p, false, "", ""), server(r1, true, p, "Yes"), server(r2, true, p, "Yes")}, p, healthy, st(p), ""},
		// (7) A fast restart: back read-only, replicas reconnected.
		{"restarted primary back read-only: make it writable",
			[]topology.ServerView{server(p, true, "", ""), server(r1, true, p, "Yes"), server(r2, true, p, "Yes")}, p, healthy, st(p), "make_writable:" + p},
		{"restarted, one replica still connecting: a majority is enough",
			[]topology.ServerView{server(p, true, "", ""), server(r1, true, p, "Yes"), server(r2, true, p, "Connecting")}, p, healthy, st(p), "make_writable:" + p},
		{"back read-only but its replicas do not follow: not made writable (its agent fenced it)",
			[]topology.ServerView{server(p, true, "", ""), server(r1, true, p, "Connecting"), server(r2, true, p, "Connecting")}, p, healthy, st(p), ""},
		{"back read-only but a replica follows another server: something happened",
			[]topology.ServerView{server(p, true, "", ""), server(r1, true, p, "Yes"), server(r2, true, r1, "Yes")}, p, healthy, st(p), ""},
		{"read-only primary while the verdict is not healthy",
			[]topology.ServerView{server(p, true, "", ""), server(r1, true, p, "Yes"), server(r2, true, p, "Yes")}, p, Verdict{State: StateSuspect}, st(p), ""},
		// (5) The agreed primary follows the writable root in service,
		// even with problems elsewhere, so the leader never fences it.
		{"manual switchover to db2: agree on db2, fence nothing",
			[]topology.ServerView{server(p, true, r1, "Yes"), server(r1, false, "", ""), server(r2, true, r1, "Yes")}, r1, healthy, st(p), "agree_primary:" + r1},
		{"stray writer fenced",
			[]topology.ServerView{server(p, false, "", ""), server(r1, false, p, "Yes"), server(r2, true, p, "Yes")}, p, healthy, st(p), "fence_stray:" + r1},
		{"two writers, agreed is a replica: the writable replica is fenced, agreed stays",
			[]topology.ServerView{server(p, false, "", ""), server(r1, false, p, "Yes"), server(r2, true, p, "Yes")}, p, healthy, st(r1), "fence_stray:" + p},
		// (6) An open decision freezes corrections unless superseded.
		{"open decision: hands off",
			[]topology.ServerView{server(p, false, "", ""), server(r1, false, p, "Yes"), server(r2, true, p, "Yes")}, p, healthy,
			fsmState{Primary: map[string]string{"c": p}, Open: map[string]*Decision{"c": {Epoch: 4, OldPrimary: p, NewPrimary: r1}}}, ""},
		{"open decision superseded by a healthy cluster under db2",
			[]topology.ServerView{server(p, true, r1, "Yes"), server(r1, false, "", ""), server(r2, true, r1, "Yes")}, r1, healthy,
			fsmState{Primary: map[string]string{"c": p}, Open: map[string]*Decision{"c": {Epoch: 4, OldPrimary: p, NewPrimary: r2}}},
			"close_superseded:" + r1 + ",agree_primary:" + r1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := &topology.Snapshot{Servers: tc.servers, Primary: tc.primary}
			if got := kinds(planCorrections(correctionInput{Cluster: "c", Snap: snap, Verdict: tc.verdict, State: tc.state})); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// With agents, a primary back read-only is re-opened only while its
	// agent runs: a paused agent's watchdog fenced it, and nothing would
	// fence it again if its host were cut off next.
	restarted := &topology.Snapshot{Primary: p, Servers: []topology.ServerView{server(p, true, "", ""), server(r1, true, p, "Yes"), server(r2, true, p, "Yes")}}
	for _, tc := range []struct {
		name  string
		alive map[string]bool
		want  string
	}{
		{"agent running", map[string]bool{p: true}, "make_writable:" + p},
		{"agent silent", map[string]bool{r1: true, r2: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := correctionInput{Cluster: "c", Snap: restarted, Verdict: healthy, State: st(p), Agents: true, AgentAlive: tc.alive}
			if got := kinds(planCorrections(in)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFenceGate(t *testing.T) {
	now := time.Unix(1000, 0)
	base := fenceEvidence{Policy: FencingRequire, OldPrimary: "db1", SQLErr: "connection refused", Now: now}
	for _, tc := range []struct {
		name string
		mod  func(*fenceEvidence)
		want bool
		why  string
	}{
		{"no agents, no fence: refused", func(*fenceEvidence) {}, false, "no agents"},
		{"best_effort", func(e *fenceEvidence) { e.Policy = FencingBestEffort }, true, ""},
		{"host refuses the port: no server runs", func(e *fenceEvidence) { e.Refused = true }, true, "not running"},
		{"fenced over SQL", func(e *fenceEvidence) { e.SQLFenced = true }, true, ""},
		{"shutdown_script", func(e *fenceEvidence) { e.ShutdownScript = true }, true, ""},
		{"agent confirmed", func(e *fenceEvidence) { e.Agents, e.AgentFenced, e.LeaseExpires = true, true, now.Add(time.Second) }, true, ""},
		{"agents, lease still running", func(e *fenceEvidence) {
			e.Agents, e.LeaseExpires, e.DeadSince = true, now.Add(time.Second), now.Add(-time.Minute)
		}, false, "lease or failsafe may hold it writable for 1s more"},
		{"agents, lease expired", func(e *fenceEvidence) {
			e.Agents, e.LeaseExpires, e.DeadSince = true, now.Add(-time.Millisecond), now.Add(-failsafeSettle)
		}, true, ""},
		// The server-majority rule was first seen to hold just now: the old
		// agent may keep writes on failsafe evidence gathered before it.
		{"agents, lease expired, failsafe may still hold", func(e *fenceEvidence) {
			e.Agents, e.LeaseExpires, e.DeadSince = true, now.Add(-time.Minute), now.Add(-time.Second)
		}, false, "failsafe may hold it writable for 2.2s more"},
		{"agents, lease expired, never judged dead here", func(e *fenceEvidence) {
			e.Agents, e.LeaseExpires = true, now.Add(-time.Minute)
		}, false, "failsafe"},
		{"agent confirmed beats a running failsafe", func(e *fenceEvidence) {
			e.Agents, e.AgentFenced, e.LeaseExpires, e.DeadSince = true, true, now.Add(time.Minute), now
		}, true, ""},
		{"agent report without agents configured counts for nothing", func(e *fenceEvidence) { e.AgentFenced = true }, false, "no agents"},
	} {
		e := base
		tc.mod(&e)
		ok, why := fenceGate(e)
		if ok != tc.want || (tc.why != "" && !strings.Contains(why, tc.why)) {
			t.Errorf("%s: got %v %q", tc.name, ok, why)
		}
		// The moment the gate says it opens by time alone does open it.
		if at := gateOpensAt(e); !ok && !at.IsZero() {
			e.Now = at
			if ok, why := fenceGate(e); !ok {
				t.Errorf("%s: still refused at the moment it should open: %s", tc.name, why)
			}
			e.Now = at.Add(-time.Millisecond)
			if ok, _ := fenceGate(e); ok {
				t.Errorf("%s: open before the moment gateOpensAt gives", tc.name)
			}
		}
	}
}

// MHA's rule: a failed automatic failover blocks the next automatic ones
// until acknowledged; a manual failure does not.
func TestFailedAutomaticFailoverBlocksUntilAck(t *testing.T) {
	f := newFSM()
	at := time.Unix(1000, 0)
	apply := func(c command) {
		t.Helper()
		if err, ok := f.apply(c).(error); ok {
			t.Fatal(err)
		}
	}
	apply(command{Op: "decide", Decision: &Decision{Epoch: 1, Cluster: "c", OldPrimary: "db1", NewPrimary: "db2", Auto: true}, At: at})
	apply(command{Op: "result", Report: &failover.Report{Epoch: 1, Cluster: "c", Kind: failover.KindFailover, Result: failover.ResultAborted, Error: "pre hook failed"},
		At: at, Block: time.Hour, Auto: true})
	st := f.snapshot()
	if until := st.Blocked["c"]; !until.After(at.Add(100*365*24*time.Hour)) || !strings.Contains(st.BlockedWhy["c"], "pre hook failed") {
		t.Fatalf("not blocked until ack: %v %q", until, st.BlockedWhy["c"])
	}
	apply(command{Op: "ack", Cluster: "c", At: at})
	if _, ok := f.snapshot().Blocked["c"]; ok {
		t.Fatal("ack did not lift the block")
	}
	apply(command{Op: "decide", Decision: &Decision{Epoch: 2, Cluster: "c"}, At: at})
	apply(command{Op: "result", Report: &failover.Report{Epoch: 2, Cluster: "c", Kind: failover.KindFailover, Result: failover.ResultFailed}, At: at})
	if _, ok := f.snapshot().Blocked["c"]; ok {
		t.Fatal("a failed manual failover blocked automatic ones")
	}
	// A primary observed in service gets a new epoch: leases naming it
	// are newer than any naming the previous one.
	apply(command{Op: "primary", Cluster: "c", Primary: "db1", At: at}) // first agreement: no new epoch
	apply(command{Op: "primary", Cluster: "c", Primary: "db3", At: at})
	if st := f.snapshot(); st.PrimEpoc["c"] != 3 || st.Epoch != 3 {
		t.Fatalf("epoch after an observed primary change: %d/%d", st.PrimEpoc["c"], st.Epoch)
	}
}
