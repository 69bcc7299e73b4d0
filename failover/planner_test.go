package failover

import (
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

var maria = topology.Dialect{Flavor: binlog.MariaDB, Major: 10, Minor: 11, Patch: 19}

type srvOpt func(*topology.ServerState)

func server(addr string, id uint32, pos string, opts ...srvOpt) topology.ServerState {
	host, _, _ := strings.Cut(addr, ":")
	_ = host
	s := topology.ServerState{Spec: topology.ServerSpec{Address: addr}, Reachable: true, Dialect: maria, ServerID: id,
		ReadOnly: true, LogBin: true, LogReplicaUpd: true, GTIDStrictMode: true,
		GTIDBinlogPos: binlog.MustParseMariaDBPos(pos), GTIDCurrentPos: binlog.MustParseMariaDBPos(pos)}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// replicaOf makes s replicate from src; received defaults to its own position.
func replicaOf(src string, srcID uint32, received string) srvOpt {
	return func(s *topology.ServerState) {
		host, port, _ := strings.Cut(src, ":")
		p := 3306
		if port != "" {
			p = atoi(port)
		}
		if received == "" {
			received = s.GTIDCurrentPos.String()
		}
		s.GTIDSlavePos = s.GTIDCurrentPos
		lag := int64(0)
		s.Replication = []topology.ReplicaConn{{SourceHost: host, SourcePort: p, SourceServerID: srcID, IOState: "Yes",
			SQLRunning: true, UsingGTID: "Slave_Pos", LagSeconds: &lag, GTIDIOPos: binlog.MustParseMariaDBPos(received)}}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func writable(s *topology.ServerState) { s.ReadOnly = false }
func dead(s *topology.ServerState)     { s.Reachable = false; s.Error = "connection refused" }
func ioDown(s *topology.ServerState) {
	s.Replication[0].IOState = "Connecting"
	s.Replication[0].LagSeconds = nil
}
func candidate(s *topology.ServerState) { s.Spec.Candidate = true }
func noMaster(s *topology.ServerState)  { s.Spec.NoMaster = true }
func priority(n int) srvOpt             { return func(s *topology.ServerState) { s.Spec.Priority = n } }
func lag(n int64) srvOpt                { return func(s *topology.ServerState) { s.Replication[0].LagSeconds = &n } }
func binlogPos(p string) srvOpt {
	return func(s *topology.ServerState) { s.GTIDBinlogPos = binlog.MustParseMariaDBPos(p) }
}
func version(maj, min int) srvOpt {
	return func(s *topology.ServerState) { s.Dialect.Major, s.Dialect.Minor = maj, min }
}
func replicatesFrom(src string, id uint32) srvOpt {
	return func(s *topology.ServerState) {
		host, port, _ := strings.Cut(src, ":")
		s.Replication = []topology.ReplicaConn{{SourceHost: host, SourcePort: atoi(port), SourceServerID: id, IOState: "Yes", SQLRunning: true, UsingGTID: "Slave_Pos"}}
	}
}

var pol = Policy{MaxLag: 30 * time.Second, CatchupTimeout: time.Minute, KillGrace: time.Second}

func snapshot(states ...topology.ServerState) *topology.Snapshot {
	s := topology.Build("c", states, time.Time{})
	return &s
}

// deadPrimary is the common case: db1 dead, its replicas' IO threads lost it.
func deadPrimary(replicas ...topology.ServerState) *topology.Snapshot {
	states := []topology.ServerState{server("db1:3306", 1, "", dead)}
	for _, r := range replicas {
		ioDown(&r)
		states = append(states, r)
	}
	return snapshot(states...)
}

func TestPlanner(t *testing.T) {
	failover := Request{Kind: KindFailover}
	for _, tc := range []struct {
		name      string
		snap      *topology.Snapshot
		req       Request
		want      string // new primary
		catchUp   string
		blocker   string
		lost      string // a lost replica address
		lostCount int64  // -1: unknown
	}{
		{name: "most advanced wins",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "0-1-100")), server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, "0-1-90"))),
			req:  failover, want: "db2:3306", lostCount: -1},
		{name: "received but not applied counts as advanced",
			snap: deadPrimary(server("db2:3306", 2, "0-1-80", replicaOf("db1:3306", 1, "0-1-100")), server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, "0-1-90"))),
			req:  failover, want: "db2:3306", lostCount: -1},
		{name: "tie goes to config order",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, ""))),
			req:  failover, want: "db2:3306", lostCount: -1},
		{name: "tie goes to priority",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, ""), priority(10))),
			req:  failover, want: "db3:3306", lostCount: -1},
		{name: "candidate less advanced is caught up",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, ""), candidate)),
			req:  failover, want: "db3:3306", catchUp: "db2:3306", lostCount: -1},
		{name: "no_master on the most advanced",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, ""), noMaster), server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, ""))),
			req:  failover, want: "db3:3306", catchUp: "db2:3306", lostCount: -1},
		{name: "no_master everywhere",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, ""), noMaster), server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, ""), noMaster)),
			req:  failover, blocker: "no replica can be promoted"},
		{name: "errant transactions on the best replica",
			snap: snapshot(server("db1:3306", 1, "0-1-100", writable),
				server("db2:3306", 2, "0-2-101", replicaOf("db1:3306", 1, "0-1-100"), binlogPos("0-2-101")),
				server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, ""))),
			req: Request{Kind: KindFailover, Hypothetical: true}, want: "db3:3306", lost: "db2:3306", lostCount: 0},
		{name: "candidate wins a tie over config order",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, ""), candidate)),
			req:  Request{Kind: KindFailover}, want: "db3:3306", lostCount: -1},
		{name: "several GTID domains compared per domain",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100,1-1-50", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100,1-1-52", replicaOf("db1:3306", 1, ""))),
			req:  failover, want: "db3:3306", lostCount: -1},
		{name: "operator picks the less advanced replica",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, ""))),
			req:  Request{Kind: KindFailover, NewPrimary: "db3:3306"}, want: "db3:3306", catchUp: "db2:3306", lostCount: -1},
		{name: "operator picks a no_master replica",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, ""), noMaster)),
			req:  Request{Kind: KindFailover, NewPrimary: "db3:3306"}, blocker: "cannot be promoted: no_master"},
		{name: "live primary is not failed over",
			snap: snapshot(server("db1:3306", 1, "0-1-100", writable), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, ""))),
			req:  failover, blocker: "it is not dead"},
		{name: "live primary with --force",
			snap: snapshot(server("db1:3306", 1, "0-1-100", writable), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, ""))),
			req:  Request{Kind: KindFailover, Force: true}, want: "db2:3306", lostCount: 0},
		{name: "hypothetical counts what the primary has that nobody received",
			snap: snapshot(server("db1:3306", 1, "0-1-105", writable), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, ""))),
			req:  Request{Kind: KindFailover, Hypothetical: true}, want: "db2:3306", lostCount: 5},
		{name: "unreachable primary that replicas still see",
			snap: snapshot(server("db1:3306", 1, "", dead), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, ""))),
			req:  failover, blocker: "still replicate from it"},
		{name: "dead replica is left behind",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "", replicaOf("db1:3306", 1, ""), dead)),
			req:  failover, want: "db2:3306", lost: "db3:3306", lostCount: -1},
		{name: "newer version is not promoted over older replicas",
			snap: deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, ""), version(11, 4)), server("db3:3306", 3, "0-1-99", replicaOf("db1:3306", 1, ""))),
			req:  failover, want: "db3:3306", catchUp: "db2:3306", lostCount: -1},
		{name: "switchover to the best",
			snap: snapshot(server("db1:3306", 1, "0-1-100", writable), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, ""))),
			req:  Request{Kind: KindSwitchover}, want: "db2:3306", lostCount: 0},
		{name: "switchover with a dead replica",
			snap: snapshot(server("db1:3306", 1, "0-1-100", writable), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "", dead)),
			req:  Request{Kind: KindSwitchover}, blocker: "needs every server up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Build(tc.snap, pol, tc.req)
			var sb strings.Builder
			p.WriteText(&sb)
			if tc.blocker != "" {
				if p.OK() || !strings.Contains(strings.Join(p.Blockers, "|"), tc.blocker) {
					t.Fatalf("want blocker %q:\n%s", tc.blocker, sb.String())
				}
				return
			}
			if !p.OK() || p.NewPrimary != tc.want || p.CatchUpFrom != tc.catchUp {
				t.Fatalf("new primary %q catch-up %q, want %q / %q:\n%s", p.NewPrimary, p.CatchUpFrom, tc.want, tc.catchUp, sb.String())
			}
			if tc.lost != "" && (len(p.LostReplicas) == 0 || p.LostReplicas[0].Address != tc.lost) {
				t.Fatalf("lost replicas %+v, want %s", p.LostReplicas, tc.lost)
			}
			if tc.lostCount == -1 && p.LostTransactions.Count != nil || tc.lostCount >= 0 && (p.LostTransactions.Count == nil || *p.LostTransactions.Count != tc.lostCount) {
				t.Fatalf("lost transactions %+v, want %d", p.LostTransactions, tc.lostCount)
			}
			if tc.catchUp != "" && !hasStep(p, StepCatchUp, tc.want) {
				t.Fatalf("no catch_up step:\n%s", sb.String())
			}
			if !hasStep(p, StepPromote, tc.want) {
				t.Fatalf("no promote step:\n%s", sb.String())
			}
		})
	}
}

func hasStep(p Plan, k StepKind, server string) bool {
	for _, s := range p.Steps {
		if s.Kind == k && s.Server == server {
			return true
		}
	}
	return false
}

func TestPlannerCoPrimaryPreferred(t *testing.T) {
	// db1 and db2 are a pair; db3 replicates from db1 and is more advanced.
	snap := snapshot(
		server("db1:3306", 1, "", dead),
		func() topology.ServerState {
			s := server("db2:3306", 2, "0-1-90", replicaOf("db1:3306", 1, ""))
			ioDown(&s)
			return s
		}(),
		func() topology.ServerState {
			s := server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, ""))
			ioDown(&s)
			return s
		}(),
	)
	// The dead side's own replication (to db2) is unknown; mark the pair
	// the way discovery does when db1 was last seen.
	snap.Servers[0].CoPrimaryOf, snap.Servers[1].CoPrimaryOf = "db2:3306", "db1:3306"
	p := Build(snap, pol, Request{Kind: KindFailover})
	if p.NewPrimary != "db2:3306" || p.CatchUpFrom != "db3:3306" || !strings.Contains(p.Why, "co-primary") {
		t.Fatalf("got %s from %s (%s)", p.NewPrimary, p.CatchUpFrom, p.Why)
	}
	if !hasStep(p, StepRepoint, "db3:3306") {
		t.Fatal("the dead side's replica must move under the new primary")
	}
}

func TestPlannerLaggingCandidate(t *testing.T) {
	snap := snapshot(server("db1:3306", 1, "0-1-100", writable),
		server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, ""), candidate, lag(120)),
		server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, "")))
	p := Build(snap, pol, Request{Kind: KindFailover, Hypothetical: true})
	if p.NewPrimary != "db3:3306" {
		t.Fatalf("new primary %s, want db3 (db2 lags 120s)", p.NewPrimary)
	}
	if c := p.Candidates; !strings.Contains(strings.Join(append(c[0].Reasons, c[1].Reasons...), "|"), "exceeds failover.max_lag") {
		t.Fatalf("reasons: %+v", c)
	}
}

func TestPlannerMySQLSets(t *testing.T) {
	const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	my := topology.Dialect{Flavor: binlog.MySQL, Major: 8, Minor: 4}
	mk := func(addr string, id uint32, executed, retrieved string, primary bool) topology.ServerState {
		s := topology.ServerState{Spec: topology.ServerSpec{Address: addr}, Reachable: true, Dialect: my, ServerID: id,
			ReadOnly: !primary, SuperReadOnly: !primary, LogBin: true, LogReplicaUpd: true, GTIDMode: "ON",
			GTIDExecuted: binlog.MustParseMySQLSet(executed)}
		if !primary {
			zero := int64(0)
			s.Replication = []topology.ReplicaConn{{SourceHost: "db1", SourcePort: 3306, SourceServerID: 1, IOState: "Connecting",
				SQLRunning: true, UsingGTID: "Auto_Position", LagSeconds: &zero, RetrievedSet: binlog.MustParseMySQLSet(retrieved)}}
		}
		return s
	}
	p1 := mk("db1:3306", 1, "", "", true)
	p1.Reachable = false
	snap := snapshot(p1, mk("db2:3306", 2, u+":1-90", u+":1-95", false), mk("db3:3306", 3, u+":1-92", u+":1-92", false))
	p := Build(snap, pol, Request{Kind: KindFailover})
	if p.NewPrimary != "db2:3306" {
		var sb strings.Builder
		p.WriteText(&sb)
		t.Fatalf("MySQL: want db2 (retrieved 1-95):\n%s", sb.String())
	}
	if !strings.Contains(promoteText(&snap.Servers[1], &snap.Servers[0], false), "RESET REPLICA ALL") {
		t.Fatal("MySQL promote must use RESET REPLICA ALL")
	}
}

func TestSwitchoverSteps(t *testing.T) {
	snap := snapshot(server("db1:3306", 1, "0-1-100", writable), server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, "")))
	p := Build(snap, Policy{MaxLag: time.Minute, CatchupTimeout: time.Minute, KillGrace: time.Second, VIP: "198.18.0.100/24", VIPInterface: "eth0"}, Request{Kind: KindSwitchover, NewPrimary: "db3:3306"})
	var kinds []string
	for _, s := range p.Steps {
		kinds = append(kinds, string(s.Kind))
	}
	want := "attach_replica,set_read_only,kill_writers,wait_caught_up,promote,verify_replica,demote_old_primary,move_vip"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
}

// A server in maintenance (Policy.Maintenance) is never chosen, even when
// it is the most advanced replica and marked candidate; it is still
// repointed to the new primary, and the plan says why it was passed over.
// With nothing else eligible the failover is blocked rather than promote it.
func TestPlannerSkipsServersInMaintenance(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "0-1-100"), candidate),
		server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, "0-1-90")))
	req := Request{Kind: KindFailover}
	if p := Build(snap, Policy{}, req); p.NewPrimary != "db2:3306" {
		t.Fatalf("without maintenance the plan chose %s, want db2 (the test's premise)", p.NewPrimary)
	}
	p := Build(snap, Policy{Maintenance: map[string]string{"db2:3306": "disk swap"}}, req)
	if p.NewPrimary != "db3:3306" || !p.OK() {
		t.Fatalf("chose %q (blockers %v), want db3:3306", p.NewPrimary, p.Blockers)
	}
	if !hasStep(p, StepRepoint, "db2:3306") {
		t.Fatalf("the server in maintenance is not repointed to the new primary: %+v", p.Steps)
	}
	for _, c := range p.Candidates {
		if c.Address == "db2:3306" && (c.Eligible || !strings.Contains(strings.Join(c.Reasons, " "), "in maintenance (disk swap)")) {
			t.Fatalf("the plan does not say why db2 was passed over: %+v", c)
		}
	}
	p = Build(snap, Policy{Maintenance: map[string]string{"db2:3306": "a", "db3:3306": "b"}}, req)
	if p.OK() || p.NewPrimary != "" {
		t.Fatalf("every replica in maintenance, yet the plan promotes %s", p.NewPrimary)
	}
}
