package daemon

import (
	"encoding/json"
	"testing"
	"time"
)

func TestLeaseHandover(t *testing.T) {
	var tr leaseTracker
	t0 := time.Unix(1000, 0)
	never := func(string, time.Time) bool { return false }
	if l := tr.next("c", "db1", 1, 3*time.Second, t0, never); l.Primary != "db1" || l.WaitMS != 0 {
		t.Fatalf("first lease %+v", l)
	}
	// The primary changes 1 s after the last renewal of db1: db2 must wait
	// the 2 s db1's lease may still run, plus the time db1's agent takes
	// to notice and fence.
	l := tr.next("c", "db2", 2, 3*time.Second, t0.Add(time.Second), never)
	if want := (2*time.Second + agentReaction).Milliseconds(); l.Primary != "db2" || l.WaitMS != want {
		t.Fatalf("handover lease %+v, want a %d ms wait", l, want)
	}
	if l := tr.next("c", "db2", 2, 3*time.Second, t0.Add(2500*time.Millisecond), never); l.WaitMS != (500*time.Millisecond + agentReaction).Milliseconds() {
		t.Fatalf("wait must shrink: %+v", l)
	}
	// Once db1's agent confirms the release, no more waiting.
	var tr2 leaseTracker
	tr2.next("c", "db1", 1, 3*time.Second, t0, never)
	released := func(s string, since time.Time) bool { return s == "db1" }
	if l := tr2.next("c", "db2", 2, 3*time.Second, t0.Add(100*time.Millisecond), released); l.WaitMS != 0 {
		t.Fatalf("released: %+v", l)
	}
	if l := tr.next("c", "db2", 2, 3*time.Second, t0.Add(3*time.Second+agentReaction), never); l.WaitMS != 0 {
		t.Fatalf("after expiry: %+v", l)
	}
}

func TestLeaseAcceptable(t *testing.T) {
	mons := map[string]bool{"mon1": true, "mon2": true, "mon3": true}
	cur := LeaseMsg{Cluster: "c", Primary: "db1", Epoch: 3, Leader: "mon1", Term: 5}
	for _, tc := range []struct {
		name   string
		sender string
		l      LeaseMsg
		have   bool
		want   bool
	}{
		{"first lease from a monitor", "mon1", cur, false, true},
		{"renewal from the same leader", "mon1", cur, true, true},
		{"an agent or stranger", "agent-db2", LeaseMsg{Primary: "db2", Epoch: 9, Leader: "agent-db2", Term: 9}, true, false},
		{"relayed: leader is not the sender", "mon2", cur, true, false},
		{"no term", "mon1", LeaseMsg{Primary: "db1", Epoch: 3, Leader: "mon1"}, false, false},
		{"deposed leader, older term", "mon2", LeaseMsg{Primary: "db2", Epoch: 3, Leader: "mon2", Term: 4}, true, false},
		{"another leader in the same term", "mon2", LeaseMsg{Primary: "db1", Epoch: 3, Leader: "mon2", Term: 5}, true, false},
		{"new leader, newer term", "mon2", LeaseMsg{Primary: "db1", Epoch: 3, Leader: "mon2", Term: 6}, true, true},
		{"older epoch", "mon1", LeaseMsg{Primary: "db2", Epoch: 2, Leader: "mon1", Term: 5}, true, false},
	} {
		if got, why := leaseAcceptable(mons, tc.sender, tc.l, cur, tc.have); got != tc.want {
			t.Errorf("%s: got %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
}

// Through the gossip delegate: an agent drops a lease that a non-monitor
// sends, and one from a deposed leader after a newer leader's.
func TestGossipDropsForeignAndStaleLeases(t *testing.T) {
	g := &gossip{self: "agent-db1", now: time.Now, peers: map[string]peerState{}, leases: map[string]leaseState{}, agents: map[string]agentState{},
		monitors: map[string]bool{"mon1": true, "mon2": true}}
	send := func(sender string, l LeaseMsg) {
		b, _ := json.Marshal(gossipMsg{Monitor: sender, SentAt: time.Now(), Kind: "lease", Lease: &l})
		g.NotifyMsg(b)
	}
	send("agent-db2", LeaseMsg{Cluster: "c", Primary: "db2", Epoch: 1, Leader: "agent-db2", Term: 1})
	if _, _, ok := g.lease("c"); ok {
		t.Fatal("accepted a lease from an agent")
	}
	send("mon2", LeaseMsg{Cluster: "c", Primary: "db1", Epoch: 1, Leader: "mon2", Term: 7})
	send("mon1", LeaseMsg{Cluster: "c", Primary: "db2", Epoch: 1, Leader: "mon1", Term: 6}) // deposed
	if l, _, ok := g.lease("c"); !ok || l.Primary != "db1" || l.Leader != "mon2" {
		t.Fatalf("lease %+v %v: want mon2's for db1", l, ok)
	}
}
