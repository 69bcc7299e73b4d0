package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/myha/myha/topology"
)

// Fencing policies (failover.fencing).
const (
	// FencingRequire refuses to promote while the old primary may still
	// be writable.
	FencingRequire = "require"
	// FencingBestEffort promotes after trying to fence (the executor's
	// read_only=1 or shutdown_script), whatever the outcome.
	FencingBestEffort = "best_effort"
)

// leaseMargin is added to a lease the leader did not grant itself (its
// predecessor's): the deposed leader may have renewed it until it noticed.
const leaseMargin = time.Second

// fenceEvidence is what the fencing gate knows about the old primary.
type fenceEvidence struct {
	Policy         string
	OldPrimary     string
	ShutdownScript bool   // the executor runs it, and stops before promotion if it fails
	SQLFenced      bool   // read_only=1 set over SQL just now
	SQLErr         string // why not
	// Refused is set when the old primary's host answered and refused the
	// connection (TCP reset): no mysqld listens there, so nothing takes
	// writes; a restarted one comes back read-only (myha check verifies
	// read_only_at_start) and the leader fences any stray writer.
	Refused      bool
	Agents       bool      // vip.method: agent: an agent fences its server when its lease lapses
	AgentFenced  bool      // the old primary's agent reported it released the VIP and the server is read-only or down
	LeaseExpires time.Time // when the old primary's lease surely ends (monitors' clock); zero: never leased
	// DeadSince is when this monitor first judged the primary dead (a
	// majority of servers free of it). Its agent may keep it writable on
	// failsafe evidence older than that for up to failsafeSettle.
	DeadSince time.Time
	Now       time.Time
}

// fenceGate decides whether promoting is allowed under the fencing policy,
// and says why not. It is pure.
func fenceGate(e fenceEvidence) (bool, string) {
	if e.Policy == FencingBestEffort || e.OldPrimary == "" {
		return true, ""
	}
	switch {
	case e.SQLFenced:
		return true, "old primary fenced over SQL"
	case e.Refused:
		return true, "the old primary's host refuses connections: its server is not running (it restarts read-only)"
	case e.ShutdownScript:
		return true, "shutdown_script configured: the failover stops before promotion if it fails"
	case e.Agents && e.AgentFenced:
		return true, "the old primary's agent released the VIP and reports its server read-only or down"
	case e.Agents && !e.Now.Before(e.LeaseExpires) && !e.DeadSince.IsZero() && !e.Now.Before(e.DeadSince.Add(failsafeSettle)):
		return true, "the old primary's VIP lease has expired and no failsafe evidence can still hold: its agent fenced it"
	}
	why := []string{fmt.Sprintf("failover.fencing is require and %s may still be writable: not reachable over SQL (%s), no shutdown_script", e.OldPrimary, e.SQLErr)}
	if e.Agents {
		left := e.LeaseExpires.Sub(e.Now)
		if e.DeadSince.IsZero() {
			left = max(left, failsafeSettle)
		} else {
			left = max(left, e.DeadSince.Add(failsafeSettle).Sub(e.Now))
		}
		why = append(why, fmt.Sprintf("its agent has not reported it fenced and its lease or failsafe may hold it writable for %s more", left.Round(time.Millisecond)))
	} else {
		why = append(why, "no agents (vip.method: agent) to fence it; configure shutdown_script or agents, or set failover.fencing: best_effort")
	}
	return false, strings.Join(why, "; ")
}

// fenced gathers the evidence for the fencing gate, trying a SQL fence
// first (bounded: the old primary is failing, so the fast-fail dialer
// applies).
func (cm *clusterMon) fenced(ctx context.Context, snap *topology.Snapshot, old string) (bool, string) {
	now := cm.d.now()
	e := fenceEvidence{Policy: cm.cfg.Fencing, OldPrimary: old, ShutdownScript: cm.cfg.Hooks.ShutdownScript != "", Agents: cm.cfg.VIPLease > 0, Now: now}
	if e.Policy == "" {
		e.Policy = FencingRequire
	}
	if e.Policy == FencingBestEffort || old == "" {
		return fenceGate(e)
	}
	if e.Agents {
		cm.mu.Lock()
		since := cm.downSince
		cm.mu.Unlock()
		if a, at, ok := cm.d.gossip().agent(old); ok && !since.IsZero() && at.After(since) && !a.Holding && (a.ReadOnly || a.LocalDown) {
			e.AgentFenced = true
		}
		e.LeaseExpires = cm.leaseExpiry(old)
		cm.mu.Lock()
		e.DeadSince = cm.lastDead
		cm.mu.Unlock()
		if ok, why := fenceGate(e); ok {
			// Provably out already: no need to wait for a SQL fence of a
			// host that may be cut off (the executor's fence step still
			// tries it, briefly).
			return ok, why
		}
	}
	if err := cm.fenceSQL(ctx, snap, old); err != nil {
		e.SQLErr = err.Error()
		e.Refused = errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused")
	} else {
		e.SQLFenced = true
	}
	ok, why := fenceGate(e)
	cm.mu.Lock()
	cm.gateOpens = time.Time{}
	if !ok {
		cm.gateOpens = gateOpensAt(e)
	}
	cm.mu.Unlock()
	return ok, why
}

// gateOpensAt is when the fencing gate opens by time alone (the old
// primary's lease has ended and no failsafe evidence can still hold), or
// zero when time alone never opens it (no agents, or the primary not yet
// judged dead). It is pure.
func gateOpensAt(e fenceEvidence) time.Time {
	if e.Policy == FencingBestEffort || !e.Agents || e.DeadSince.IsZero() {
		return time.Time{}
	}
	at := e.DeadSince.Add(failsafeSettle)
	if e.LeaseExpires.After(at) {
		at = e.LeaseExpires
	}
	return at
}

// fenceSQL sets read_only=1 on the old primary if it answers.
func (cm *clusterMon) fenceSQL(ctx context.Context, snap *topology.Snapshot, old string) error {
	fctx, cancel := context.WithTimeout(ctx, cm.cfg.Spec.ConnectTimeout+cm.cfg.Spec.ReadTimeout)
	defer cancel()
	q, err := cm.probeDialer.Dial(fctx, old)
	if err != nil {
		return err
	}
	defer q.Close()
	d := topology.Dialect{}
	if v, ok := snap.Server(old); ok {
		d = v.Dialect
	}
	stmts := d.SetReadOnly(true)
	if d.Flavor == "" {
		stmts = []string{"SET GLOBAL read_only=1"}
	}
	for _, s := range stmts {
		if err := q.Exec(fctx, s); err != nil {
			return err
		}
	}
	return nil
}

// leaseExpiry is when the VIP lease of server surely ends, on the monitors'
// side: leaseEnd from when this leader last sent it, or, if this leader
// never leased it, leaseEnd plus a margin from when it took over (its
// predecessor acknowledged reports received before it was deposed, so
// before this leader's election).
func (cm *clusterMon) leaseExpiry(server string) time.Time {
	cm.leaseMu.Lock()
	defer cm.leaseMu.Unlock()
	t := &cm.lease
	switch {
	case t.holder == server && !t.lastSent.IsZero():
		return leaseEnd(t.lastSent, cm.cfg.VIPLease)
	case t.oldHolder == server:
		return t.oldExpires
	}
	return leaseEnd(cm.d.leaderSinceTime(), cm.cfg.VIPLease+leaseMargin)
}

func (cm *clusterMon) setFenceRefusal(why string) {
	cm.mu.Lock()
	changed := cm.fenceRefusal != why
	cm.fenceRefusal = why
	cm.mu.Unlock()
	if changed && why != "" {
		cm.d.log.Error("failover refused: the old primary is not fenced", "cluster", cm.cfg.Spec.Name, "why", why)
	}
}
