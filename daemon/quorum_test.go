package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/topology"
)

// The two conditions can never hold at once: for every cluster size, every
// state of each other server (unreachable from either side, following the
// old primary, free of it) and every view the agent and the monitors have
// of it, the agent's failsafe majority and the monitors' promotion majority
// exclude each other.
func TestServerMajorityRulesExcludeEachOther(t *testing.T) {
	for n := 1; n <= 7; n++ {
		others := n - 1
		// Each other server: 0 follows the old primary (the agent may count
		// it; the monitors never count it free), 1 free of it (the agent
		// never counts it; the monitors may), seen or not by each side.
		states := 1
		for i := 0; i < others; i++ {
			states *= 2 * 2 * 2
		}
		for code := 0; code < states; code++ {
			c := code
			agentCount, free := 1, 0
			var replicas []ReplicaView
			for i := 0; i < others; i++ {
				follows, agentSees, monSees := c%2 == 0, (c/2)%2 == 0, (c/4)%2 == 0
				c /= 8
				if follows && agentSees {
					agentCount++
				}
				rv := ReplicaView{Address: fmt.Sprintf("db%d", i+2), Reachable: monSees, HeartbeatPeriod: time.Second, IORunning: follows}
				replicas = append(replicas, rv)
				if monSees && !follows {
					free++
				}
			}
			agentHolds := failsafeEvidence{Following: agentCount, Servers: n}.majority()
			v := Detect(DetectInput{Primary: "db1", Monitors: 1, Servers: n, OwnFailures: 3, OwnDownFor: time.Minute,
				Replicas: replicas, DownAfter: time.Second, Freshness: time.Second, MinSilence: 1500 * time.Millisecond})
			if agentHolds && v.State == StateDead {
				t.Fatalf("n=%d code=%d: the old primary keeps a failsafe majority (%d) while the monitors promote (%d free)", n, code, agentCount, free)
			}
		}
	}
}

func TestDetectServerMajority(t *testing.T) {
	down := func(n int, reps ...ReplicaView) DetectInput {
		return DetectInput{Primary: "db1", Monitors: 3, Servers: n, OwnFailures: 3, OwnDownFor: 2 * time.Second,
			Peers:    []PeerView{{Monitor: "m2", Age: 100 * time.Millisecond}},
			Replicas: reps, DownAfter: time.Second, Freshness: 3 * time.Second, MinSilence: 1500 * time.Millisecond}
	}
	lost := func(a string) ReplicaView {
		return ReplicaView{Address: a, Reachable: true, HeartbeatPeriod: time.Second}
	}
	gone := func(a string) ReplicaView { return ReplicaView{Address: a} }
	for _, tc := range []struct {
		name string
		in   DetectInput
		want State
		why  string
	}{
		{"3 servers, both replicas free", down(3, lost("db2"), lost("db3")), StateDead, "2 of the cluster's 3 servers"},
		// The zone split {P, R1, mon1} | {R2, mon2, mon3}: R1 cannot be
		// seen; P's agent may still count it.
		{"3 servers, one replica unreachable", down(3, lost("db2"), gone("db3")), StateNoServerMajority, "server-majority rule"},
		{"2 servers never fail over", down(2, lost("db2")), StateNoServerMajority, "2 servers never fails over"},
		{"5 servers, 3 free", down(5, lost("db2"), lost("db3"), lost("db4"), gone("db5")), StateDead, ""},
		{"5 servers, 2 free", down(5, lost("db2"), lost("db3"), gone("db4"), gone("db5")), StateNoServerMajority, "needs 3"},
		{"a server replicating from elsewhere is free of the primary", down(3, lost("db2"),
			ReplicaView{Address: "db3", Reachable: true, IORunning: true, NotReplica: true}), StateDead, ""},
	} {
		v := Detect(tc.in)
		if v.State != tc.want || (tc.why != "" && !strings.Contains(strings.Join(v.Reasons, "; "), tc.why)) {
			t.Errorf("%s: %s %q", tc.name, v.State, v.Reasons)
		}
	}
}

func TestDecideAgent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	lease := LeaseMsg{Primary: "db1", LeaseMS: 3000}
	base := agentInput{Self: "db1", Now: t0, Lease: lease, HasLease: true, Received: t0.Add(-100 * time.Millisecond),
		Anchor: t0.Add(-500 * time.Millisecond), LeaseDur: 3 * time.Second, Writable: true,
		Evidence: failsafeEvidence{Started: t0.Add(-300 * time.Millisecond), Following: 1, Servers: 3}, HaveProof: true}
	for _, tc := range []struct {
		name              string
		mod               func(*agentInput)
		hold, safe, fence bool
	}{
		{"fresh lease: hold", func(*agentInput) {}, true, false, false},
		{"fresh lease, read-only server: nothing", func(in *agentInput) { in.Writable = false }, false, false, false},
		{"fresh lease, waiting for the old holder", func(in *agentInput) { in.Lease.WaitMS = 1000 }, false, false, false},
		{"fresh lease for another: no hold, no fence", func(in *agentInput) { in.Lease.Primary = "db2" }, false, false, false},
		// A lease that arrives late (queued while the agent was paused)
		// is trusted from its anchor, not from its arrival.
		{"late lease with an old anchor: not fresh, fence", func(in *agentInput) {
			in.Received, in.Anchor = t0, t0.Add(-2*time.Second)
		}, false, false, true},
		{"lease acknowledging nothing this agent sent", func(in *agentInput) { in.Anchor = time.Time{} }, false, false, true},
		{"lapsed, a majority follows: failsafe", func(in *agentInput) {
			in.Anchor, in.Evidence.Following = t0.Add(-time.Hour), 2
		}, true, true, false},
		{"lapsed, majority seen before a pause: fence", func(in *agentInput) {
			in.Anchor, in.Evidence.Following, in.Evidence.Started = t0.Add(-time.Hour), 2, t0.Add(-failsafeValidity)
		}, false, false, true},
		{"lapsed, 2 of 4 is no majority", func(in *agentInput) {
			in.Anchor, in.Evidence.Following, in.Evidence.Servers = t0.Add(-time.Hour), 2, 4
		}, false, false, true},
		{"lapsed, not named: nothing", func(in *agentInput) { in.Anchor, in.Lease.Primary = t0.Add(-time.Hour), "db2" }, false, false, false},
		{"never leased: nothing", func(in *agentInput) { in.HasLease, in.Lease = false, LeaseMsg{} }, false, false, false},
	} {
		in := base
		tc.mod(&in)
		d := decideAgent(in)
		if d.Hold != tc.hold || d.Failsafe != tc.safe || d.Fence != tc.fence {
			t.Errorf("%s: %+v", tc.name, d)
		}
		// Until: the lease's trust or the evidence's validity, set when
		// holding and also for a writable, named server not yet holding
		// (the watchdog guards it); the VIP's lifetime is renewed only
		// while holding.
		switch {
		case !d.Hold && !d.Until.IsZero() && !(in.Writable && in.HasLease && in.Lease.Primary == in.Self):
			t.Errorf("%s: not holding, yet until %s", tc.name, d.Until)
		case d.Hold && !d.Failsafe && !d.Until.Equal(in.Anchor.Add(leaseTrust(in.LeaseDur))) && !d.Until.Equal(in.Evidence.Started.Add(failsafeValidity)):
			t.Errorf("%s: until %s, want the lease's trust %s", tc.name, d.Until, in.Anchor.Add(leaseTrust(in.LeaseDur)))
		case d.Failsafe && !d.Until.Equal(in.Evidence.Started.Add(failsafeValidity)):
			t.Errorf("%s: until %s, want the evidence's validity", tc.name, d.Until)
		}
	}
	// The address outlives the decision's Until by at most agentReaction
	// (renewals stop vipRenewMargin before it; the kernel removes the
	// address within vipLifetime + vipKernelSlack of the last one), and is
	// renewed often enough to never lapse while the decision stands.
	if vipRenewMargin <= 0 || -vipRenewMargin+vipLifetime+vipKernelSlack > agentReaction ||
		vipRenewEvery*3 > vipLifetime || vipLifetime-vipRenewEvery-vipRenewMargin <= 0 {
		t.Fatalf("vipLifetime %s, slack %s, margin %s, renewals every %s do not fit agentReaction %s", vipLifetime, vipKernelSlack, vipRenewMargin, vipRenewEvery, agentReaction)
	}
	// Until, what the watchdog is armed with: the lease's trust from its
	// anchor, extended by valid failsafe evidence; zero when nothing may
	// be kept writable.
	for _, tc := range []struct {
		name string
		mod  func(*agentInput)
		want time.Time
	}{
		{"fresh lease: its trust", func(*agentInput) {}, t0.Add(-500*time.Millisecond + leaseTrust(3*time.Second))},
		{"fresh lease, waiting: guarded all the same", func(in *agentInput) { in.Lease.WaitMS = 1000 }, t0.Add(-500*time.Millisecond + leaseTrust(3*time.Second))},
		{"fresh lease and a majority: the later of both", func(in *agentInput) {
			in.Anchor, in.Evidence.Following = t0.Add(-1900*time.Millisecond), 2
		}, t0.Add(-300*time.Millisecond + failsafeValidity)},
		{"failsafe: the evidence's validity", func(in *agentInput) {
			in.Anchor, in.Evidence.Following = t0.Add(-time.Hour), 2
		}, t0.Add(-300*time.Millisecond + failsafeValidity)},
		{"fenced: nothing", func(in *agentInput) { in.Anchor = t0.Add(-time.Hour) }, time.Time{}},
		{"read-only: nothing", func(in *agentInput) { in.Writable = false }, time.Time{}},
		{"the lease names another: nothing", func(in *agentInput) { in.Lease.Primary = "db2" }, time.Time{}},
	} {
		in := base
		tc.mod(&in)
		if got := decideAgent(in).Until; !got.Equal(tc.want) {
			t.Errorf("Until, %s: got %v, want %v", tc.name, got.Sub(t0), tc.want.Sub(t0))
		}
	}
	// The watchdog acts within a running agent's reaction of that moment.
	if watchdogGrace+agentFenceBound > agentReaction {
		t.Fatal("the watchdog acts later than the monitors count")
	}
	// The trust never outlives the leader's count, whatever the delays:
	// anchor ≤ leader's send, trust < lease, leaseEnd adds the reaction.
	if leaseTrust(3*time.Second) >= 3*time.Second || !leaseEnd(t0, 3*time.Second).After(t0.Add(3*time.Second+agentReaction-time.Nanosecond)) {
		t.Fatal("lease bounds")
	}
}

// The agent counts a replica's silence from the start of the round that
// last saw its old progress (never later than when it really last
// received something), so it stops counting the replica as following no
// later than the monitors, who count from when they read the change.
func TestAgentEvidenceSilenceIsNeverShorterThanReal(t *testing.T) {
	const p, r = "db1:3306", "db2:3306"
	a := &Agent{cfg: AgentConfig{Server: p, Cluster: ClusterConfig{Interval: time.Second,
		Spec: topology.ClusterSpec{Servers: []topology.ServerSpec{{Address: p}, {Address: r}, {Address: "db3:3306"}}}}}, marks: map[string]replicaMark{}}
	local := topology.ServerState{Spec: topology.ServerSpec{Address: p}, Reachable: true, ServerID: 1}
	replica := func(heartbeats int64) []topology.ServerState {
		v := server(r, true, p, "Yes")
		v.Replication[0].HeartbeatSecs, v.Replication[0].Heartbeats = 1, heartbeats
		return []topology.ServerState{v.ServerState}
	}
	t0 := time.Unix(1000, 0)
	round := func(at time.Duration, hb int64) int {
		return a.evidence(t0.Add(at), &local, replica(hb), t0.Add(at+50*time.Millisecond)).Following
	}
	if n := round(0, 1); n != 1 {
		t.Fatal("a replica never seen changing counted as following")
	}
	if n := round(200*time.Millisecond, 1); n != 1 {
		t.Fatal("still no change seen: not following")
	}
	// The heartbeat arrived somewhere after the round at 200 ms began:
	// silence counts from 200 ms.
	if n := round(400*time.Millisecond, 2); n != 2 {
		t.Fatal("a replica seen receiving does not follow")
	}
	lim, _ := SilenceLimit(time.Second, minSilence(time.Second))
	if n := round(200*time.Millisecond+lim-100*time.Millisecond, 2); n != 2 {
		t.Fatal("silent for less than its limit, but not following")
	}
	if n := round(200*time.Millisecond+lim, 2); n != 1 {
		t.Fatalf("silent %s since the round before the change, still following", lim)
	}
}

// The timing bounds the proof uses, and the relations between them.
func TestTimingRelations(t *testing.T) {
	for _, r := range []struct {
		what string
		ok   bool
	}{
		{"a follower's probe fits in the agent's probe bound", followerProbeBound <= agentProbeBound},
		{"a running agent renews its failsafe evidence before it expires", agentTick+agentProbeBound < failsafeValidity},
		{"the reaction covers a round and a fence", agentReaction == agentTick+agentProbeBound+agentFenceBound},
		{"the settle covers evidence validity and a reaction", failsafeSettle == failsafeValidity+agentReaction},
		{"the watchdog acts within a running agent's reaction", watchdogGrace+agentFenceBound <= agentReaction},
		{"a running agent acts before its watchdog", agentTick+agentProbeBound <= watchdogGrace},
		{"an agent's lease trust is shorter than the lease", leaseTrust(500*time.Millisecond) < 500*time.Millisecond && leaseTrust(3*time.Second) < 3*time.Second},
		{"the shortest lease (500 ms) is still trusted for more than a tick", leaseTrust(500*time.Millisecond) > agentTick},
		{"agents report more often than the leader's liveness window", agentTick < agentAliveWithin},
	} {
		if !r.ok {
			t.Errorf("timing relation broken: %s", r.what)
		}
	}
}
