package failover

import (
	"strings"
	"testing"

	"github.com/myha/myha/topology"
)

func semiSyncRemembered(s *topology.ServerState) { s.SemiSync.SourceEnabled = true }

func stepKinds(p Plan) string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, string(s.Kind)+"@"+s.Server+"<"+s.Source+">"+s.Target)
	}
	return strings.Join(out, " ")
}

func TestPlanReplaysWhatOnlyCapturesHold(t *testing.T) {
	states := []topology.ServerState{server("db1:3306", 1, "", dead, semiSyncRemembered)}
	for _, r := range []topology.ServerState{
		server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")),
		server("db3:3306", 3, "0-1-97", replicaOf("db1:3306", 1, "")),
	} {
		ioDown(&r)
		states = append(states, r)
	}
	snap := snapshot(states...)
	p := Build(snap, pol, Request{Kind: KindFailover, Captures: []CaptureHold{
		{Monitor: "mon1", Source: "198.18.0.101:3310", Position: "0-1-120"},
		{Monitor: "mon2", Source: "198.18.0.102:3310", Error: "connection refused"},
		{Monitor: "mon3", Source: "198.18.0.103:3310", Position: "0-1-110"},
	}})
	if !p.OK() {
		t.Fatalf("blocked: %v", p.Blockers)
	}
	got := stepKinds(p)
	want := "replay_from_capture@db2:3306<198.18.0.101:3310>0-1-120 promote@db2:3306<>0-1-120"
	if !strings.Contains(got, want) {
		t.Fatalf("steps %s\nwant the replay from mon1 right before a promotion that checks 0-1-120", got)
	}
	if strings.Contains(got, "198.18.0.103") {
		t.Fatalf("mon3 holds nothing beyond mon1, yet is replayed: %s", got)
	}
	if p.Final != "0-1-120" || p.LostTransactions.Count == nil || *p.LostTransactions.Count != 0 ||
		!strings.HasPrefix(p.LostTransactions.Description, "0 transactions lost (20 recovered: 20 from capture on mon1)") {
		t.Fatalf("final %s, loss %+v", p.Final, p.LostTransactions)
	}
	if !strings.Contains(strings.Join(p.Warnings, ";"), "mon2") {
		t.Fatalf("an unreachable capture is not warned about: %v", p.Warnings)
	}
	// Replayed only to the server promoted.
	for _, s := range p.Steps {
		if s.Kind == StepReplayCapture && s.Server != p.NewPrimary {
			t.Fatalf("captured events sent to %s, not the new primary %s", s.Server, p.NewPrimary)
		}
	}
	// A switchover never replays.
	if sw := Build(snap, pol, Request{Kind: KindSwitchover, Captures: []CaptureHold{{Monitor: "mon1", Source: "x:1", Position: "0-1-120"}}}); strings.Contains(stepKinds(sw), "replay") {
		t.Fatal("switchover replays a capture")
	}
}

func TestPlanCapturesPerDomainAndDivergence(t *testing.T) {
	states := []topology.ServerState{server("db1:3306", 1, "", dead)}
	r := server("db2:3306", 2, "0-1-100,1-1-50", replicaOf("db1:3306", 1, ""))
	ioDown(&r)
	states = append(states, r)
	snap := snapshot(states...)
	p := Build(snap, pol, Request{Kind: KindFailover, Captures: []CaptureHold{
		{Monitor: "mon1", Source: "m1:3310", Position: "0-1-105,1-1-50"},
		{Monitor: "mon2", Source: "m2:3310", Position: "0-1-100,1-1-60"},
		{Monitor: "mon3", Source: "m3:3310", Position: "0-9-100,1-1-70"},
	}})
	if p.Final != "0-1-105,1-1-60" {
		t.Fatalf("final %s, want both captures' domains merged (and the diverged mon3 ignored); steps %s", p.Final, stepKinds(p))
	}
	if n := strings.Count(stepKinds(p), "replay_from_capture"); n != 2 {
		t.Fatalf("%d replays, want 2: %s", n, stepKinds(p))
	}
	if !strings.Contains(strings.Join(p.Warnings, ";"), "mon3") {
		t.Fatalf("diverged capture not reported: %v", p.Warnings)
	}
	if !strings.Contains(p.LostTransactions.Description, "semi-sync was not active") {
		t.Fatalf("without semi-sync the loss must stay unknown past the capture: %s", p.LostTransactions.Description)
	}
}

func TestCaptureCheck(t *testing.T) {
	semiOn := func(active bool) srvOpt {
		return func(s *topology.ServerState) {
			s.SemiSync.SourceEnabled, s.SemiSync.SourceActive, s.SemiSync.SourceClients = true, active, 2
		}
	}
	holds := []CaptureHold{{Monitor: "mon1", Source: "m1:3310", Position: "0-1-100"}, {Monitor: "mon2", Source: "m2:3310", Position: "0-1-99"}}
	status := func(cs []Check) Status { return Summarize(cs) }
	healthy := snapshot(server("db1:3306", 1, "0-1-100", writable, semiOn(true)), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")))
	if s := status(CaptureCheck(healthy, holds)); s != OK {
		t.Fatalf("healthy captures: %s %+v", s, CaptureCheck(healthy, holds))
	}
	fellBack := snapshot(server("db1:3306", 1, "0-1-100", writable, semiOn(false)), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")))
	if cs := CaptureCheck(fellBack, holds); status(cs) != Fail || !strings.Contains(cs[0].Message, "fell back to async") {
		t.Fatalf("semi-sync fallen back to async must fail: %+v", cs)
	}
	noClients := snapshot(server("db1:3306", 1, "0-1-100", writable, semiOn(true), func(s *topology.ServerState) { s.SemiSync.SourceClients = 0 }),
		server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")))
	if cs := CaptureCheck(noClients, holds); status(cs) != Fail || !strings.Contains(cs[0].Message, "fallen back to async") {
		t.Fatalf("semi-sync with no client left must fail: %+v", cs)
	}
	broken := []CaptureHold{{Monitor: "mon1", Source: "m1:3310", Error: "connection refused"}, {Monitor: "mon2", Source: "m2:3310", Position: "0-1-1"}}
	behind := snapshot(server("db1:3306", 1, "0-1-5000", writable, semiOn(true)), server("db2:3306", 2, "0-1-5000", replicaOf("db1:3306", 1, "")))
	cs := CaptureCheck(behind, broken)
	if status(cs) != Warn || len(cs) != 2 {
		t.Fatalf("a broken and a lagging capture must each warn: %+v", cs)
	}
	if cs := CaptureCheck(healthy, broken[:1]); status(cs) != Fail {
		t.Fatalf("no capture answering must fail: %+v", cs)
	}
}

// A failover stopped after (or during) a replay leaves the chosen server
// pointed at the capture with its threads stopped: the rerun still plans it
// as a replica of the old primary (the journal names it), not as lost.
func TestPlanAfterInterruptedReplay(t *testing.T) {
	r := server("db2:3306", 2, "0-1-120", replicaOf("198.18.0.101:3310", 4000001, ""))
	r.Replication[0].IOState, r.Replication[0].SQLRunning = "No", false
	r.Replication[0].LagSeconds = nil
	o := server("db3:3306", 3, "0-1-97", replicaOf("db1:3306", 1, ""))
	ioDown(&o)
	snap := snapshot(server("db1:3306", 1, "", dead), r, o)
	p := Build(snap, pol, Request{Kind: KindFailover, PreviousAttempt: "db2:3306"})
	if !p.OK() || p.NewPrimary != "db2:3306" || p.Final != "0-1-120" {
		t.Fatalf("rerun after an interrupted replay: new %s final %s blockers %v", p.NewPrimary, p.Final, p.Blockers)
	}
}
