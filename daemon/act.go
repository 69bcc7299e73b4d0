package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// lead is what the leader does after each probe of a cluster: keep the
// agreed primary current, keep any other server from being writable, and
// fail over a dead primary.
func (cm *clusterMon) lead(ctx context.Context, snap *topology.Snapshot, v Verdict) {
	st := cm.d.fsm.snapshot()
	name := cm.cfg.Spec.Name
	if _, open := st.Open[name]; open || cm.acting.Load() {
		return
	}
	agreed := st.Primary[name]
	if v.State == StateHealthy && snap.Primary != "" && agreed != snap.Primary && len(snap.Problems) == 0 {
		cm.d.apply(command{Op: "primary", Cluster: name, Primary: snap.Primary, At: cm.d.now()})
		agreed = snap.Primary
	}
	if agreed != "" {
		cm.fenceStrays(ctx, snap, agreed)
		cm.rejoin(ctx, snap, agreed, st)
		cm.renewLease(snap, agreed, st.PrimEpoc[name])
	}
	if v.State != StateDead {
		return
	}
	if !cm.cfg.Auto {
		cm.d.log.Warn("primary is dead; failover.auto is off: not failing over", "cluster", name)
		return
	}
	if until, ok := st.Blocked[name]; ok && cm.d.now().Before(until) {
		cm.d.log.Warn("primary is dead, but automatic failovers are blocked (anti-flapping); run myha ack", "cluster", name, "until", until)
		return
	}
	go guard(cm.d.log, "automatic failover (the decision stays open; a leader change resumes it)", func() {
		cm.failover(ctx, failover.Request{Kind: failover.KindFailover, ReplicasConfirmed: true}, 0)
	}, "cluster", name)
}

// fenceStrays sets read_only on any writable server that is not the agreed
// primary (an old primary back from the dead, a DBA's mistake): never two
// writers. With auto_rejoin a returned old primary also becomes a replica.
func (cm *clusterMon) fenceStrays(ctx context.Context, snap *topology.Snapshot, agreed string) {
	for _, v := range snap.Servers {
		if !v.Reachable || v.Spec.Address == agreed || v.ReadOnly || v.SuperReadOnly {
			continue
		}
		q, err := cm.dialer.Dial(ctx, v.Spec.Address)
		if err != nil {
			continue
		}
		if cm.changing(ctx, q, v.Dialect) {
			q.Close()
			continue
		}
		for _, stmt := range v.Dialect.SetReadOnly(true) {
			if err = q.Exec(ctx, stmt); err != nil {
				break
			}
		}
		q.Close()
		cm.d.log.Warn("fenced a writable server that is not the agreed primary", "cluster", cm.cfg.Spec.Name, "server", v.Spec.Address, "primary", agreed, "err", err)
	}
}

// failover decides (committing to raft before the first change), executes
// with the shared planner and executor, and records the result. epoch > 0
// continues an open decision.
func (cm *clusterMon) failover(ctx context.Context, req failover.Request, epoch int64) (*failover.Report, error) {
	if !cm.acting.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("a failover of %s is already running on this monitor", cm.cfg.Spec.Name)
	}
	defer cm.acting.Store(false)
	name := cm.cfg.Spec.Name
	// The detector's snapshot is fresh (the primary is re-probed every
	// 100 ms while it fails); rediscovering would wait another connect
	// timeout on a cut primary.
	cm.mu.Lock()
	snap, at := cm.snap, cm.snapAt
	cm.mu.Unlock()
	if cm.d.now().Sub(at) > 500*time.Millisecond || req.Kind != failover.KindFailover || !req.ReplicasConfirmed {
		snap = topology.Discover(ctx, cm.cfg.Spec, cm.dialer)
	}
	plan := failover.Build(&snap, cm.cfg.Policy, req)
	if !plan.OK() {
		cm.d.log.Warn("failover not possible", "cluster", name, "blockers", plan.Blockers)
		return nil, fmt.Errorf("blocked: %s", strings.Join(plan.Blockers, "; "))
	}
	if epoch == 0 {
		epoch = cm.d.fsm.snapshot().Epoch + 1
	}
	dec := &Decision{Epoch: epoch, Cluster: name, Kind: req.Kind, OldPrimary: plan.OldPrimary, NewPrimary: plan.NewPrimary, Leader: cm.d.self.Name, Started: cm.d.now()}
	if err := cm.d.apply(command{Op: "decide", Decision: dec, At: cm.d.now()}); err != nil {
		return nil, fmt.Errorf("could not commit the decision: %w", err)
	}
	cm.d.log.Warn("failing over", "cluster", name, "epoch", epoch, "old", plan.OldPrimary, "new", plan.NewPrimary, "why", plan.Why)
	return cm.execute(ctx, &snap, &plan, dec)
}

func (cm *clusterMon) execute(ctx context.Context, snap *topology.Snapshot, plan *failover.Plan, dec *Decision) (*failover.Report, error) {
	ex := &failover.Executor{
		Dialer: cm.dialer, Repl: cm.cfg.Repl, Policy: cm.cfg.Policy, Hooks: cm.cfg.Hooks, Log: cm.d.log, Epoch: dec.Epoch,
		StatementTimeout: max(2*cm.cfg.Spec.ReadTimeout, 5*time.Second),
		Rediscover:       func(ctx context.Context) topology.Snapshot { return topology.Discover(ctx, cm.cfg.Spec, cm.dialer) },
		OnPromoted: func() {
			if err := cm.d.apply(command{Op: "promoted", Cluster: dec.Cluster, Decision: dec, At: cm.d.now()}); err != nil {
				cm.d.log.Error("could not commit the promotion", "cluster", dec.Cluster, "err", err)
			}
		},
	}
	rep := ex.Execute(context.WithoutCancel(ctx), snap, plan)
	if rep.Result == failover.ResultAborted && strings.Contains(rep.Error, "another failover") {
		// A previous leader may still be at work: leave the decision open
		// for the next attempt rather than recording a second outcome.
		return rep, fmt.Errorf("%s", rep.Error)
	}
	if err := cm.d.apply(command{Op: "result", Report: rep, At: cm.d.now(), Block: cm.cfg.BlockPeriod}); err != nil {
		cm.d.log.Error("could not commit the failover result", "cluster", dec.Cluster, "epoch", dec.Epoch, "err", err)
	}
	cm.d.met.failovers.WithLabelValues(dec.Cluster, string(rep.Result)).Inc()
	cm.d.log.Warn("failover finished", "cluster", dec.Cluster, "epoch", dec.Epoch, "result", rep.Result, "new", rep.NewPrimary,
		"writable_after_ms", rep.WritableAfterMS, "error", rep.Error)
	cm.poke()
	return rep, nil
}

// resume finishes a failover a previous leader left open: after promotion
// it only completes the repoints (never a second promotion); before, it
// plans again under the same epoch. It retries while another monitor may
// still hold the failover lock.
func (cm *clusterMon) resume(ctx context.Context, dec Decision) {
	cm.d.log.Warn("resuming an interrupted failover", "cluster", dec.Cluster, "epoch", dec.Epoch, "promoted", dec.Promoted, "new", dec.NewPrimary)
	for attempt := 0; attempt < 30 && ctx.Err() == nil && cm.d.isLeader(); attempt++ {
		var err error
		if dec.Promoted {
			if !cm.acting.CompareAndSwap(false, true) {
				sleepCtx(ctx, time.Second)
				continue
			}
			snap := topology.Discover(ctx, cm.cfg.Spec, cm.dialer)
			plan := failover.BuildResume(&snap, cm.cfg.Policy, &failover.InProgress{ID: fmt.Sprint(dec.Epoch), Epoch: dec.Epoch, Kind: dec.Kind,
				OldPrimary: dec.OldPrimary, NewPrimary: dec.NewPrimary, Promoted: true})
			if plan.OK() {
				_, err = cm.execute(ctx, &snap, &plan, &dec)
			} else {
				err = fmt.Errorf("%s", strings.Join(plan.Blockers, "; "))
			}
			cm.acting.Store(false)
		} else {
			_, err = cm.failover(ctx, failover.Request{Kind: dec.Kind, ReplicasConfirmed: cm.confirmedDead()}, dec.Epoch)
			if err != nil && strings.Contains(err.Error(), "blocked") {
				// The old primary answers again, or nothing can be promoted:
				// close the decision with that outcome.
				rep := &failover.Report{Epoch: dec.Epoch, Cluster: dec.Cluster, Kind: dec.Kind, OldPrimary: dec.OldPrimary,
					Result: failover.ResultAborted, Error: "resumed by " + cm.d.self.Name + ": " + err.Error(), Started: dec.Started, Steps: []failover.StepResult{}}
				cm.d.apply(command{Op: "result", Report: rep, At: cm.d.now()})
				return
			}
		}
		if err == nil {
			return
		}
		cm.d.log.Warn("resume attempt failed; retrying", "cluster", dec.Cluster, "epoch", dec.Epoch, "err", err)
		sleepCtx(ctx, time.Second)
	}
}

// confirmedDead reports whether this monitor's detector judges the primary dead.
func (cm *clusterMon) confirmedDead() bool {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.verdict.State == StateDead
}

// rejoin handles old primaries that came back after a failover: never
// writable (fenceStrays), and with failover.auto_rejoin made replicas of the
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
		errant := errantVs(v, p)
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
			if cm.changing(ctx, q, v.Dialect) {
				q.Close()
				continue
			}
			stmts := append(v.Dialect.SetReadOnly(true), v.Dialect.ChangeSource("", topology.Source{Host: host, Port: port,
				User: cm.cfg.Repl.User, Password: cm.cfg.Repl.Password, Demote: true}), v.Dialect.StartReplica(""))
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

func errantVs(v, p *topology.ServerView) []string {
	if v.Dialect.Flavor != p.Dialect.Flavor {
		return []string{"different flavor"}
	}
	if v.Dialect.IsMariaDB() {
		var out []string
		for _, g := range binlog.MariaDBErrant(v.GTIDBinlogPos, v.GTIDSlavePos, v.ServerID, p.GTIDBinlogPos, p.GTIDSlavePos) {
			out = append(out, g.String())
		}
		return out
	}
	if d := v.GTIDExecuted.Subtract(p.GTIDExecuted); !d.IsEmpty() {
		return []string{d.String()}
	}
	return nil
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
	g := cm.d.gossip()
	l := cm.lease.next(cm.cfg.Spec.Name, agreed, epoch, cm.cfg.VIPLease, cm.d.now(), func(server string, since time.Time) bool {
		a, at, ok := g.agent(server)
		return ok && !a.Holding && at.After(since)
	})
	g.publishLease(l)
}

// changing reports whether a failover or switchover (a manual one, or
// another monitor's) holds the cluster's failover lock on this server: its
// transient states (two roots, a writable new primary not yet agreed) must
// not be "corrected" while it runs.
func (cm *clusterMon) changing(ctx context.Context, q topology.Querier, d topology.Dialect) bool {
	rows, err := q.Query(ctx, d.LockInUse(failover.LockName(cm.cfg.Spec.Name)))
	if err != nil {
		return true // cannot tell: do not touch it
	}
	return len(rows) == 1 && rows[0].Has("r")
}
