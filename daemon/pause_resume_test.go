package daemon

import (
	"testing"
	"time"
)

// A paused cluster's open, unpromoted automatic decision is not resumed by
// a new leader at its election (FAKE servers): every automatic path checks
// the pause in failover(); the decision stays open until myha resume.
// Found by review: the election loop resumed open decisions without it.
func TestPausedOpenDecisionNotResumedByNewLeader(t *testing.T) {
	primary, r2, r3, cc := fakeCluster(t)
	held, _ := holdLock(r2, cc)
	tm := startMonitors(t, 3, []ClusterConfig{cc})
	leader := leaderOf(t, tm)
	eventually(t, "the monitors to agree on the primary", 10*time.Second, func() bool {
		return leader.fsm.snapshot().Primary["c"] == primary.Addr()
	})
	killFake(primary, r2, r3)
	eventually(t, "the decision to be opened", 15*time.Second, func() bool {
		_, open := leader.fsm.snapshot().Open["c"]
		return open
	})
	now := leader.now()
	if err := leader.apply(command{Op: "pause", Cluster: "c", Pause: &Pause{Since: now, Reason: "operator takes over"}, At: now}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a sampling window: an attempt in flight ends on the held lock
	if st := leader.fsm.snapshot(); len(st.History) != 0 {
		t.Fatalf("an attempt while the lock was held closed the decision: %+v", st.History)
	}
	held.Store(false)           // the lock is free: only the pause stops the failover now
	time.Sleep(3 * time.Second) // sampling window: the same leader must not resume (it does not)
	if st := leader.fsm.snapshot(); len(st.History) != 0 {
		t.Fatalf("same leader resumed while paused: %+v", st.History)
	}
	if err := leader.raft().LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		for _, d := range tm.ds {
			if st := d.fsm.snapshot(); len(st.History) > 0 {
				if _, paused := st.Paused["c"]; paused {
					t.Fatalf("a new leader failed over a paused cluster (open decision resumed at election): %+v", st.History[0])
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
