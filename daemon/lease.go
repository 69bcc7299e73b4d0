package daemon

import (
	"time"
)

// leaseTracker is the leader's side of VIP leases for one cluster: it
// renews the agreed primary's lease every probe, and when the primary
// changes it makes the new holder wait until the old holder has confirmed
// releasing the VIP or its lease has surely expired.
type leaseTracker struct {
	holder     string    // whom the last lease named
	lastSent   time.Time // when (leader's clock)
	oldHolder  string    // the previous holder, while its lease may run
	oldExpires time.Time
}

// next returns the lease to send now for primary.
func (t *leaseTracker) next(cluster, primary string, epoch int64, lease time.Duration, now time.Time, released func(server string, since time.Time) bool) LeaseMsg {
	if primary != t.holder {
		if t.holder != "" {
			t.oldHolder, t.oldExpires = t.holder, leaseEnd(t.lastSent, lease)
		}
		t.holder = primary
	}
	var wait time.Duration
	if t.oldHolder != "" && t.oldHolder != primary {
		if released(t.oldHolder, t.oldExpires.Add(-lease-agentReaction)) {
			t.oldHolder = ""
		} else if left := t.oldExpires.Sub(now); left > 0 {
			wait = left
		} else {
			t.oldHolder = ""
		}
	}
	t.lastSent = now
	return LeaseMsg{Cluster: cluster, Primary: primary, Epoch: epoch, LeaseMS: lease.Milliseconds(), WaitMS: wait.Milliseconds()}
}
