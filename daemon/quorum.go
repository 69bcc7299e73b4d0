package daemon

import (
	"fmt"
	"time"
)

// Why there are never two writers (README, "Why there are never two
// writers"): the old primary may stay writable only while its lease is
// fresh or it plus the servers following it are a strict majority of the
// cluster's servers (the agent's failsafe); a new primary is promoted only
// when a strict majority of the servers, the old primary excluded, is
// reachable and free of it (Detect), and only once the old primary's lease
// and any failsafe it could still hold have run out (fenceGate), unless it
// is fenced for sure. The timing constants below are the bounds the proof
// uses; both sides are derived from the same ones.

const (
	// agentTick is the pause between two rounds of the agent's loop.
	agentTick = 200 * time.Millisecond
	// agentProbeBound bounds one round's probes: the local server and
	// every other server, concurrently.
	agentProbeBound = time.Second
	// followerProbeBound bounds the probe of each other server: one cut
	// off by dropped packets must not age the round's evidence past its
	// validity.
	followerProbeBound = 500 * time.Millisecond
	// agentFenceBound bounds the agent's read_only=1 on its server.
	agentFenceBound = 500 * time.Millisecond
	// agentReaction is the longest a running agent takes to act on what
	// it sees: a lapsed lease is noticed and fenced within it.
	agentReaction = agentTick + agentProbeBound + agentFenceBound
	// failsafeValidity is how long one round's evidence that a majority
	// follows this primary may justify keeping it writable, from when the
	// round began (monotonic clock).
	failsafeValidity = 1500 * time.Millisecond
	// failsafeSettle is how long after the monitors first saw a majority
	// of servers free of the old primary its agent may still keep it
	// writable on older evidence: the evidence's validity plus one
	// reaction. Promotion on an expired lease waits this long too.
	failsafeSettle = failsafeValidity + agentReaction
	// watchdogGrace is how long after the armed moment the agent's
	// watchdog acts: a running agent notices a lapse and fences within
	// agentTick + agentProbeBound, and re-arms every round while it may
	// keep writes, so a running agent always acts (or re-arms) first. The
	// watchdog's fence is bounded by agentFenceBound: done within
	// agentReaction of the moment.
	watchdogGrace = agentTick + agentProbeBound
	// vipLifetime is the valid lifetime of the VIP's address on the
	// holder's interface, renewed in place every vipRenewEvery while the
	// agent's decision to hold stands (agentDecision.Until) less
	// vipRenewMargin. Once renewals stop (that moment passed, or the agent
	// was killed, frozen or is stuck) the kernel removes the address
	// within vipLifetime + vipKernelSlack, so at the latest agentReaction
	// after Until: the address is gone before the leader counts the lease
	// ended (leaseEnd: at least Until plus agentReaction), so before any
	// other agent may take the VIP, and a killed agent leaves nothing
	// behind. One second is the kernel's smallest lifetime; it does not
	// depend on vip.lease because the renewals follow the lease's trust,
	// which does.
	vipLifetime = time.Second
	// vipKernelSlack is how late the kernel may remove an expired IPv4
	// address: it checks lifetimes at most once a second, so a check that
	// another address change on the host set off just before the expiry
	// puts the next one a second later, plus its timer rounding (a quarter
	// second). Measured on a veth pair: 1.01-1.36 s after the last renewal
	// of a 1 s lifetime, 1.98 s once with other addresses changing.
	vipKernelSlack = 1250 * time.Millisecond
	// vipRenewMargin ends the renewals this long before Until, so that
	// the last renewal plus vipLifetime plus vipKernelSlack is within
	// agentReaction of Until. Between leases (every check_interval) the
	// default 3 s lease keeps Until more than this ahead.
	vipRenewMargin = vipLifetime + vipKernelSlack - agentReaction
	vipRenewEvery  = 200 * time.Millisecond
)

// The relations between these bounds (TestTimingRelations): a running
// agent's round (agentTick + agentProbeBound) is shorter than
// failsafeValidity, so it renews its evidence before it expires; each
// follower probe fits in a round; the watchdog acts within agentReaction;
// the lease's trust is shorter than the lease and longer than a round.
// config.MinVIPLease ties vip.lease to check_interval.

// leaseTrust is how long an agent trusts a lease, counted on its own
// monotonic clock from when it sent the report the lease acknowledges
// (always before the leader sent the lease): two thirds of the lease.
func leaseTrust(lease time.Duration) time.Duration { return lease * 2 / 3 }

// leaseEnd is when a lease sent at sent (leader's clock) surely no longer
// lets its agent keep writes: the full lease, which the agent's trust
// never exceeds even if its clock ran a third faster, plus the time a
// running agent takes to notice and fence.
func leaseEnd(sent time.Time, lease time.Duration) time.Time {
	return sent.Add(lease + agentReaction)
}

// failsafeEvidence is one round of the agent's look at the other servers:
// how many follow this primary (the agent's server counted), of how many.
type failsafeEvidence struct {
	Started   time.Time // when the round began (monotonic)
	Following int       // this server plus the servers following it
	Servers   int       // configured servers, this one included
	Names     []string  // the followers, for logs
}

// majority reports whether the evidence shows a strict majority.
func (e failsafeEvidence) majority() bool {
	return e.Servers > 0 && e.Following >= ServerMajority(e.Servers)
}

// agentInput is everything the agent's VIP decision depends on.
type agentInput struct {
	Self     string
	Now      time.Time // monotonic
	Lease    LeaseMsg
	HasLease bool
	Received time.Time // when the lease arrived
	// Anchor is when this agent sent the report the lease acknowledges
	// (zero: the lease acknowledges nothing this agent remembers sending).
	Anchor    time.Time
	LeaseDur  time.Duration
	Writable  bool // the local server answers and is writable
	Evidence  failsafeEvidence
	HaveProof bool // Evidence was gathered
}

// agentDecision is what the agent does: hold the VIP (keeping the server
// writable), and whether on the failsafe; or fence the server.
type agentDecision struct {
	Hold     bool
	Failsafe bool
	Fence    bool
	Fresh    bool
	Why      string
	// Until is when the justification for keeping the server writable
	// ends (the lease's trust, or the failsafe evidence's validity); zero
	// when there is none. The agent arms its watchdog with it, and renews
	// the VIP's lifetime only before it (vipLifetime).
	Until time.Time
}

// decideAgent is the agent's VIP decision. It is pure.
//
// A lease is fresh for leaseTrust from its anchor, the agent's own report
// that the leader acknowledged: transit delays and pauses only make the
// agent trust it for less. Named and fresh: hold (after the wait the
// leader set). Fresh for another server: do not hold. Not fresh, named,
// and writable: keep it on the failsafe only if evidence begun less than
// failsafeValidity ago shows a strict majority of servers following this
// one; otherwise fence.
func decideAgent(in agentInput) agentDecision {
	dur := in.LeaseDur
	if in.Lease.LeaseMS > 0 {
		dur = time.Duration(in.Lease.LeaseMS) * time.Millisecond
	}
	fresh := in.HasLease && !in.Anchor.IsZero() && in.Now.Sub(in.Anchor) < leaseTrust(dur)
	named := in.HasLease && in.Lease.Primary == in.Self
	d := agentDecision{Fresh: fresh}
	e := in.Evidence
	failsafe := in.HaveProof && !e.Started.IsZero() && in.Now.Sub(e.Started) < failsafeValidity && e.majority()
	switch {
	case fresh && named:
		wait := in.Received.Add(time.Duration(in.Lease.WaitMS) * time.Millisecond)
		d.Hold = in.Writable && !in.Now.Before(wait)
		d.Why = "fresh lease"
		if d.Hold {
			d.Until = in.Anchor.Add(leaseTrust(dur))
		}
		if in.Writable && !d.Hold {
			d.Why = fmt.Sprintf("fresh lease, waiting %s for the previous holder", wait.Sub(in.Now).Round(time.Millisecond))
		}
		if in.Writable {
			// Writable and named, VIP held or not: a lapse must fence it.
			d.Until = in.Anchor.Add(leaseTrust(dur))
			if failsafe && e.Started.Add(failsafeValidity).After(d.Until) {
				d.Until = e.Started.Add(failsafeValidity)
			}
		}
	case fresh:
		d.Why = "the lease names " + in.Lease.Primary
	case named && in.Writable:
		if failsafe {
			d.Hold, d.Failsafe = true, true
			d.Until = e.Started.Add(failsafeValidity)
			d.Why = fmt.Sprintf("lease lapsed; failsafe: %d of %d servers follow this one", e.Following, e.Servers)
		} else {
			d.Fence = true
			d.Why = fmt.Sprintf("lease lapsed and no recent evidence that a strict majority (%d of %d) follows this server", ServerMajority(max(e.Servers, 1)), e.Servers)
		}
	default:
		d.Why = "not the agreed primary, or not writable"
	}
	return d
}
