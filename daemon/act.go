package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// lead is what the leader does after each probe of a cluster: the
// corrections the analysis asks for (agreed primary, stray writers, a
// primary back read-only after a restart, superseded decisions), the
// agreed primary's lease, resuming an open decision with backoff, and
// failing over a dead primary.
func (cm *clusterMon) lead(ctx context.Context, snap *topology.Snapshot, v Verdict) {
	name := cm.cfg.Spec.Name
	if !cm.d.caughtUp.Load() {
		// A new leader before its barrier: its state may lack what the
		// previous leader committed (a promotion); acting on it could
		// resume a promoted decision as if nothing was promoted.
		return
	}
	if cm.acting.Load() {
		// A failover runs on this monitor: it owns the cluster's states.
		// But once it has promoted (committed before read_only=0), the new
		// primary gets its lease now, not after the repoints and the
		// final report.
		st := cm.d.fsm.view(cm.cfg.Spec.Name)
		if agreed := st.Primary[name]; agreed != "" {
			cm.renewLease(snap, agreed, st.PrimEpoc[name])
		}
		return
	}
	if p, paused, expired := pauseAt(cm.d.fsm.operatorView(name), name, cm.d.now()); paused {
		// An operator is in charge: keep the lease, change nothing.
		cm.leadPaused(snap, v, cm.d.fsm.view(name), p)
		return
	} else if expired {
		cm.endPause(p)
	}
	cm.correct(ctx, snap, v, cm.d.fsm.view(name))
	st := cm.d.fsm.view(name)
	agreed := st.Primary[name]
	if agreed != "" {
		cm.renewLease(snap, agreed, st.PrimEpoc[name])
		if cm.d.pub != nil {
			cm.d.pub.offer(name, publishedTopology(snap, agreed, cm.cfg.Policy.MaxLag))
		}
	}
	if dec, open := st.Open[name]; open {
		cm.resumeLater(*dec)
		return
	}
	cm.resumeBackoff.Store(0)
	if agreed != "" {
		cm.rejoin(ctx, snap, agreed, st)
	}
	if v.State != StateDead {
		return
	}
	if !cm.cfg.Auto {
		cm.d.log.Warn("primary is dead; failover.auto is off: not failing over", "cluster", name)
		cm.d.emitOnce("blocked", "auto off", Event{Kind: EventFailoverBlocked, Cluster: name, Primary: cm.primaryNow(),
			Message: "the primary is dead; failover.auto is off: not failing over (myha failover)"})
		return
	}
	if until, ok := st.Blocked[name]; ok && cm.d.now().Before(until) {
		cm.d.log.Warn("primary is dead, but automatic failovers are blocked; run myha ack", "cluster", name, "until", until, "why", st.BlockedWhy[name])
		cm.d.emitOnce("blocked", "anti-flapping "+until.String(), Event{Kind: EventFailoverBlocked, Cluster: name, Primary: cm.primaryNow(),
			Message: fmt.Sprintf("the primary is dead, but automatic failovers are blocked until %s (%s): run myha ack", until.Format(time.RFC3339), st.BlockedWhy[name])})
		return
	}
	go guard(cm.d.log, "automatic failover (the decision stays open; a leader change resumes it)", func() {
		_, err := cm.failover(ctx, failover.Request{Kind: failover.KindFailover, ReplicasConfirmed: true}, 0, true)
		if err == nil || !strings.HasPrefix(err.Error(), "refused") {
			return
		}
		// Refused only until a known moment (the old primary's lease and
		// failsafe): try again right then rather than at the first probe
		// after it, if this monitor still leads and still sees it dead.
		if !cm.waitGate(ctx) || !cm.d.isLeader() || !cm.confirmedDead() {
			return
		}
		cm.failover(ctx, failover.Request{Kind: failover.KindFailover, ReplicasConfirmed: true}, 0, true)
	}, "cluster", name)
}

// maxGateWait bounds how long a refused failover waits for the fencing
// gate to open on its own: the longest the gate waits is a lease plus its
// reaction, or the failsafe settle; past that, the probes retry.
const maxGateWait = 10 * time.Second

// waitGate sleeps until the fencing gate's last refusal said it opens,
// when that is known and near; false when there is nothing to wait for.
func (cm *clusterMon) waitGate(ctx context.Context) bool {
	cm.mu.Lock()
	at := cm.gateOpens
	cm.mu.Unlock()
	wait := at.Sub(cm.d.now())
	if at.IsZero() || wait > maxGateWait {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(max(wait, 0) + time.Millisecond):
		return true
	}
}

// Backoff between attempts to resume an open decision.
const (
	resumeFirstBackoff = time.Second
	resumeMaxBackoff   = 30 * time.Second
)

// resumeLater retries an open decision with exponential backoff: a
// decision left open (another holder had the lock, leadership moved) is
// never forgotten by the same leader, and never retried in a tight loop.
func (cm *clusterMon) resumeLater(dec Decision) {
	now := cm.d.now()
	// An automatic decision while paused: failover() would refuse and this
	// would log a retry at every backoff; the decision stays open and is
	// taken up after myha resume. (A manual one goes on, as manual
	// failovers do during a pause.)
	if _, paused, _ := pauseAt(cm.d.fsm.operatorView(dec.Cluster), dec.Cluster, now); paused && dec.Auto {
		return
	}
	cm.mu.Lock()
	due := !now.Before(cm.nextResume)
	cm.mu.Unlock()
	if !due || !cm.resuming.CompareAndSwap(false, true) {
		return
	}
	back := time.Duration(cm.resumeBackoff.Load())
	if back == 0 {
		back = resumeFirstBackoff
	}
	cm.resumeBackoff.Store(int64(min(2*back, resumeMaxBackoff)))
	cm.mu.Lock()
	cm.nextResume = now.Add(back)
	cm.mu.Unlock()
	go func() {
		defer cm.resuming.Store(false)
		guard(cm.d.log, "resuming a failover", func() {
			if err := cm.resume(cm.d.leaderContext(), dec); err != nil {
				cm.d.log.Warn("resuming the open failover failed; will retry", "cluster", dec.Cluster, "epoch", dec.Epoch, "in", back, "err", err)
			}
		}, "cluster", dec.Cluster)
	}()
}

// failover decides (committing to raft before the first change), executes
// with the shared planner and executor, and records the result. epoch > 0
// continues an open decision.
//
// auto marks an automatic failover: if it fails, automatic failovers stay
// blocked until acknowledged. Under failover.fencing: require a failover
// is refused (before any decision or hook) while the old primary may still
// be writable.
func (cm *clusterMon) failover(ctx context.Context, req failover.Request, epoch int64, auto bool) (*failover.Report, error) {
	name := cm.cfg.Spec.Name
	if auto {
		// Every automatic path (the detector, the retry after a fencing
		// refusal, a new leader resuming an open decision) stops here
		// while an operator has paused the cluster; the decision stays
		// open and is taken up after myha resume.
		if p, paused, _ := pauseAt(cm.d.fsm.operatorView(name), name, cm.d.now()); paused {
			return nil, fmt.Errorf("paused since %s (%s): no automatic failover until myha resume", p.Since.Format(time.RFC3339), p.Reason)
		}
	}
	if !cm.acting.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("a failover of %s is already running on this monitor", cm.cfg.Spec.Name)
	}
	defer cm.acting.Store(false)
	// The detector's snapshot is fresh (the primary is re-probed every
	// 100 ms while it fails); rediscovering would wait another connect
	// timeout on a cut primary.
	cm.mu.Lock()
	snap, at := cm.snap, cm.snapAt
	cm.mu.Unlock()
	// A routine probe's snapshot may hold facts from an earlier probe
	// (topology.FactsCache): a plan reads everything fresh.
	if cm.d.now().Sub(at) > 500*time.Millisecond || req.Kind != failover.KindFailover || !req.ReplicasConfirmed || snap.ReusedFacts() {
		snap = topology.Discover(ctx, cm.cfg.Spec, cm.dialer)
	}
	snap = cm.recalled(snap)
	if req.Kind == failover.KindFailover {
		req.Captures = cm.capturePositions(ctx)
	}
	plan := failover.Build(&snap, cm.policy(), req)
	blockedKind := EventFailoverBlocked
	if req.Kind == failover.KindSwitchover {
		blockedKind = EventSwitchoverBlocked
	}
	if !plan.OK() {
		cm.d.log.Warn("failover not possible", "cluster", name, "blockers", plan.Blockers)
		cm.d.emitOnce("blocked", strings.Join(plan.Blockers, "\n"), Event{Kind: blockedKind, Cluster: name, OldPrimary: plan.OldPrimary, Auto: auto,
			Blockers: plan.Blockers, Message: fmt.Sprintf("%s of %s blocked: %s", req.Kind, name, strings.Join(plan.Blockers, "; "))})
		return nil, &blockedError{blockers: plan.Blockers}
	}
	if req.Kind == failover.KindFailover {
		if ok, why := cm.fenced(ctx, &snap, plan.OldPrimary); !ok {
			cm.setFenceRefusal(why)
			// Keyed by the old primary, not the words: the reason
			// counts down ("... for 1.2s more") at every probe.
			cm.d.emitOnce("blocked", "fencing "+plan.OldPrimary, Event{Kind: blockedKind, Cluster: name, OldPrimary: plan.OldPrimary, Auto: auto,
				Message: fmt.Sprintf("failover of %s refused until the old primary is fenced: %s", name, why)})
			return nil, fmt.Errorf("refused: %s", why)
		}
		cm.setFenceRefusal("")
	}
	if cm.d.leaderContext().Err() != nil {
		return nil, fmt.Errorf("not the leader")
	}
	if epoch == 0 {
		epoch = cm.d.fsm.view(cm.cfg.Spec.Name).Epoch + 1
	}
	dec := &Decision{Epoch: epoch, Cluster: name, Kind: req.Kind, OldPrimary: plan.OldPrimary, NewPrimary: plan.NewPrimary, Leader: cm.d.self.Name, Started: cm.d.now(), Auto: auto}
	if err := cm.d.apply(command{Op: "decide", Decision: dec, At: cm.d.now()}); err != nil {
		return nil, fmt.Errorf("could not commit the decision: %w", err)
	}
	cm.d.log.Warn("failing over", "cluster", name, "epoch", epoch, "old", plan.OldPrimary, "new", plan.NewPrimary, "why", plan.Why)
	started := EventFailoverStarted
	if req.Kind == failover.KindSwitchover {
		started = EventSwitchoverStarted
	}
	cm.d.resetOnce(name, "blocked")
	cm.d.emit(Event{Kind: started, Cluster: name, OldPrimary: plan.OldPrimary, NewPrimary: plan.NewPrimary, Epoch: epoch, Auto: auto,
		Reasons: []string{plan.Why}, Message: fmt.Sprintf("%s of %s started: %s → %s", req.Kind, name, plan.OldPrimary, plan.NewPrimary)})
	return cm.execute(ctx, &snap, &plan, dec)
}

func (cm *clusterMon) execute(ctx context.Context, snap *topology.Snapshot, plan *failover.Plan, dec *Decision) (*failover.Report, error) {
	ex := &failover.Executor{
		Dialer: cm.dialer, Repl: cm.cfg.Repl, ReplTLS: cm.cfg.Spec.TLS, Policy: cm.cfg.Policy, Hooks: cm.cfg.Hooks, Log: cm.d.log, Epoch: dec.Epoch,
		Accounts:         []string{cm.cfg.Spec.Credentials.User, cm.cfg.Repl.User},
		LockAccount:      cm.cfg.Spec.Credentials.User,
		StatementTimeout: max(2*cm.cfg.Spec.ReadTimeout, 5*time.Second),
		Crash:            cm.d.cfg.Crash,
		Rediscover:       func(ctx context.Context) topology.Snapshot { return topology.Discover(ctx, cm.cfg.Spec, cm.dialer) },
		// The promotion is committed to raft before read_only=0: a leader
		// killed right after making the new primary writable leaves a
		// decision its successor finishes with the same new primary, never
		// a second promotion; a leader that cannot commit (deposed, no
		// quorum) stops before promotion.
		BeforePromote: func() error {
			return cm.d.apply(command{Op: "promoted", Cluster: dec.Cluster, Decision: dec, At: cm.d.now()})
		},
		// Writable now: lease it at once (the lease carries any wait for
		// the old holder), while the executor goes on repointing.
		OnPromoted: func() { go cm.leaseNow(plan.NewPrimary) },
	}
	// The executor runs to its end even if the caller goes away (an API
	// client hanging up), but stops at its next safe point when this
	// monitor stops leading: a deposed leader must not keep changing
	// servers while the new one resumes the decision.
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	lctx := cm.d.leaderContext()
	stop := context.AfterFunc(lctx, cancel)
	defer stop()
	rep := ex.Execute(ectx, snap, plan)
	if lctx.Err() != nil {
		cm.d.log.Error("leadership lost during the failover: stopped at a safe point; the new leader resumes it",
			"cluster", dec.Cluster, "epoch", dec.Epoch, "result", rep.Result, "safe_stop", rep.SafeStop)
		return rep, fmt.Errorf("leadership lost during the failover (%s)", rep.SafeStop)
	}
	if rep.Result == failover.ResultAborted && strings.Contains(rep.Error, "another failover") {
		// A previous leader may still be at work: leave the decision open
		// for the next attempt rather than recording a second outcome.
		// Said every time: an open decision that never moves must show why.
		cm.d.log.Warn("failover waits: another myha holds the cluster's failover lock; the decision stays open and is retried",
			"cluster", dec.Cluster, "epoch", dec.Epoch, "why", rep.Error)
		return rep, fmt.Errorf("%s", rep.Error)
	}
	if err := cm.d.apply(command{Op: "result", Report: rep, At: cm.d.now(), Block: cm.cfg.BlockPeriod, Auto: dec.Auto}); err != nil {
		cm.d.log.Error("could not commit the failover result", "cluster", dec.Cluster, "epoch", dec.Epoch, "err", err)
	}
	cm.d.met.failovers.WithLabelValues(dec.Cluster, string(rep.Result)).Inc()
	cm.d.emit(finishedEvent(rep, dec.Auto))
	cm.d.log.Warn("failover finished", "cluster", dec.Cluster, "epoch", dec.Epoch, "result", rep.Result, "new", rep.NewPrimary,
		"writable_after_ms", msOrNone(rep.WritableAfterMS), "error", rep.Error)
	cm.poke()
	return rep, nil
}

// resume makes one attempt to finish a failover a previous leader (or this
// one) left open: after promotion it only completes the repoints (never a
// second promotion); before, it plans again under the same epoch. The
// caller retries with backoff.
func (cm *clusterMon) resume(ctx context.Context, dec Decision) error {
	if ctx.Err() != nil || !cm.d.isLeader() || !cm.d.caughtUp.Load() {
		return fmt.Errorf("not the leader")
	}
	// The decision as committed now, not as it was when this attempt was
	// scheduled: the promotion may have been recorded since.
	if cur, ok := cm.d.fsm.view(cm.cfg.Spec.Name).Open[dec.Cluster]; ok && cur.Epoch == dec.Epoch {
		dec = *cur
	}
	cm.d.log.Warn("resuming an interrupted failover", "cluster", dec.Cluster, "epoch", dec.Epoch, "promoted", dec.Promoted, "new", dec.NewPrimary)
	if dec.Promoted {
		if !cm.acting.CompareAndSwap(false, true) {
			return fmt.Errorf("a failover of %s is already running on this monitor", dec.Cluster)
		}
		defer cm.acting.Store(false)
		snap := topology.Discover(ctx, cm.cfg.Spec, cm.dialer)
		plan := failover.BuildResume(&snap, cm.cfg.Policy, &failover.InProgress{ID: fmt.Sprint(dec.Epoch), Epoch: dec.Epoch, Kind: dec.Kind,
			OldPrimary: dec.OldPrimary, NewPrimary: dec.NewPrimary, Promoted: true})
		if !plan.OK() {
			return fmt.Errorf("%s", strings.Join(plan.Blockers, "; "))
		}
		_, err := cm.execute(ctx, &snap, &plan, &dec)
		return err
	}
	// The decision's new primary may have been pointed at a catch-up
	// source or a capture before the run stopped: plan it as a replica of
	// the old primary again (as myha failover does from its journal).
	_, err := cm.failover(ctx, failover.Request{Kind: dec.Kind, ReplicasConfirmed: cm.confirmedDead(), PreviousAttempt: dec.NewPrimary}, dec.Epoch, dec.Auto)
	if err != nil && strings.HasPrefix(err.Error(), "blocked") {
		// The old primary answers again, or nothing can be promoted:
		// close the decision with that outcome.
		rep := &failover.Report{Epoch: dec.Epoch, Cluster: dec.Cluster, Kind: dec.Kind, OldPrimary: dec.OldPrimary,
			Result: failover.ResultAborted, Error: "resumed by " + cm.d.self.Name + ": " + err.Error(), Started: dec.Started, Steps: []failover.StepResult{}}
		return cm.d.apply(command{Op: "result", Report: rep, At: cm.d.now()})
	}
	return err
}

// primaryNow is the primary this monitor follows.
func (cm *clusterMon) primaryNow() string {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.primary
}

// confirmedDead reports whether this monitor's detector judges the primary dead.
func (cm *clusterMon) confirmedDead() bool {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.verdict.State == StateDead
}

// rejoin handles old primaries that came back after a failover: never
// writable (ActFenceStray), and with failover.auto_rejoin made replicas of the
// agreed primary when they hold nothing the new primary lacks. One with
// errant transactions (what the old primary committed but no replica
// received) stays read-only and is reported, for a DBA to look at.
func (cm *clusterMon) rejoin(ctx context.Context, snap *topology.Snapshot, agreed string, st fsmState) {
	p, ok := snap.Server(agreed)
	if !ok || !p.Reachable || p.ReadOnly {
		return
	}
	olds := map[string]bool{}
	for _, r := range st.History {
		if r.Cluster == cm.cfg.Spec.Name && r.Promoted && r.OldPrimary != agreed {
			olds[r.OldPrimary] = true
		}
	}
	for i := range snap.Servers {
		v := &snap.Servers[i]
		if !olds[v.Spec.Address] || !v.Reachable || v.Spec.Address == agreed {
			continue
		}
		if _, replicating := v.PrimaryConn(); replicating {
			continue
		}
		errant := failover.ErrantAgainst(v, p)
		cm.mu.Lock()
		reported := cm.rejoinNoted[v.Spec.Address]
		cm.rejoinNoted[v.Spec.Address] = true
		cm.mu.Unlock()
		switch {
		case len(errant) > 0:
			if !reported {
				cm.d.log.Warn("old primary is back with transactions the new primary does not have: left read-only, not rejoined",
					"cluster", cm.cfg.Spec.Name, "server", v.Spec.Address, "errant", errant)
			}
		case !cm.cfg.AutoRejoin:
			if !reported {
				cm.d.log.Warn("old primary is back (read-only); set failover.auto_rejoin to make it a replica automatically",
					"cluster", cm.cfg.Spec.Name, "server", v.Spec.Address)
			}
		default:
			host, port := splitAddr(agreed)
			q, err := cm.dialer.Dial(ctx, v.Spec.Address)
			if err != nil {
				continue
			}
			if cm.changing(ctx, q, v.Dialect, v.Spec.Address) {
				q.Close()
				continue
			}
			stmts := append(v.Dialect.SetReadOnly(true), v.Dialect.Repoint("", topology.Source{Host: host, Port: port,
				User: cm.cfg.Repl.User, Password: cm.cfg.Repl.Password, Demote: true, TLS: cm.cfg.Spec.TLS})...)
			for _, stmt := range stmts {
				if err = q.Exec(ctx, stmt); err != nil {
					break
				}
			}
			q.Close()
			cm.d.log.Warn("old primary rejoined as a replica of the new primary", "cluster", cm.cfg.Spec.Name, "server", v.Spec.Address, "primary", agreed, "err", err)
		}
	}
}

func splitAddr(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 3306
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// renewLease leases the VIP to the agreed primary's agent while that
// primary answers and is writable; a dead primary's lease just lapses.
func (cm *clusterMon) renewLease(snap *topology.Snapshot, agreed string, epoch int64) {
	if cm.cfg.VIPLease <= 0 {
		return
	}
	v, ok := snap.Server(agreed)
	if !ok || !v.Reachable || v.ReadOnly || v.SuperReadOnly {
		return
	}
	cm.sendLease(agreed, epoch)
}

// leaseNow leases the VIP to a server the executor just made writable, if
// it is the agreed primary (the promotion was committed before).
func (cm *clusterMon) leaseNow(server string) {
	if cm.cfg.VIPLease <= 0 {
		return
	}
	st := cm.d.fsm.view(cm.cfg.Spec.Name)
	if st.Primary[cm.cfg.Spec.Name] == server {
		cm.sendLease(server, st.PrimEpoc[cm.cfg.Spec.Name])
	}
}

// sendLease renews the lease of agreed, which the caller saw writable.
func (cm *clusterMon) sendLease(agreed string, epoch int64) {
	g := cm.d.gossip()
	// The acknowledged report is read before leadership is confirmed: the
	// agent trusts the lease from when it sent that report, which is then
	// before this monitor was last known to lead. A successor counts the
	// lease from its own election (leaseExpiry), which is later, whatever
	// pauses or delays come after.
	var ack uint64
	if a, _, ok := g.agent(agreed); ok {
		ack = a.Seq
	}
	r := cm.d.raft()
	if r == nil || !verifyLeader(r, leaseVerifyTimeout) {
		return
	}
	cm.leaseMu.Lock()
	prev := cm.lease.holder
	l := cm.lease.next(cm.cfg.Spec.Name, agreed, epoch, cm.cfg.VIPLease, cm.d.now(), func(server string, since time.Time) bool {
		a, at, ok := g.agent(server)
		return ok && !a.Holding && at.After(since)
	})
	cm.leaseMu.Unlock()
	l.Leader, l.Term, l.Ack = cm.d.self.Name, r.CurrentTerm(), ack
	l.Maint = leaseMaintenance(cm.d.fsm.operatorView(cm.cfg.Spec.Name), cm.cfg.Spec.Name)
	g.publishLease(l)
	if prev != agreed && prev != "" {
		cm.d.emit(Event{Kind: EventLeaseMoved, Cluster: cm.cfg.Spec.Name, From: prev, To: agreed, Epoch: epoch, Primary: agreed,
			Message: fmt.Sprintf("the VIP lease of %s moved from %s to %s (the new holder waits %dms for the old one)", cm.cfg.Spec.Name, prev, agreed, l.WaitMS)})
	}
}

// leaseVerifyTimeout bounds the leadership check before a lease renewal.
const leaseVerifyTimeout = 500 * time.Millisecond

// verifyLeader confirms with a quorum that this monitor still leads
// (hashicorp/raft VerifyLeader), bounded: a leader that was paused or cut
// off must not renew a lease on its stale belief.
func verifyLeader(r *raft.Raft, timeout time.Duration) bool {
	f := r.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(timeout):
		return false
	}
}

// changing reports whether a failover or switchover (a manual one, or
// another monitor's) holds the cluster's failover lock on this server: its
// transient states (two roots, a writable new primary not yet agreed) must
// not be "corrected" while it runs. A lock held by another account than
// myha's is no failover: logged once per holding session, and ignored.
func (cm *clusterMon) changing(ctx context.Context, q topology.Querier, d topology.Dialect, addr string) bool {
	h, err := failover.ReadLockHolder(ctx, q, d, addr, failover.LockName(cm.cfg.Spec.Name))
	switch {
	case err != nil:
		return true // cannot tell: do not touch it
	case h == nil:
		return false
	case !h.Foreign(cm.cfg.Spec.Credentials.User):
		return true
	}
	cm.mu.Lock()
	noted := cm.lockNoted[addr] == h.ConnID
	cm.lockNoted[addr] = h.ConnID
	cm.mu.Unlock()
	if !noted {
		cm.d.log.Warn("the failover lock is held by an account that is not myha's: ignored (a failover ends that session)",
			"cluster", cm.cfg.Spec.Name, "server", addr, "holder", h.User+"@"+h.Host, "connection", h.ConnID, "held_s", h.Seconds)
	}
	return false
}

// msOrNone renders an optional duration in ms for logs (a pointer would
// print as an address).
func msOrNone(p *float64) any {
	if p == nil {
		return "none"
	}
	return *p
}
