package daemon

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// clusterMon watches one cluster: it probes every server each interval
// (and every 100 ms while the primary fails), keeps a connection open to
// the primary so a killed server is noticed at once, gossips what it sees,
// and judges the primary's health. On the leader a dead verdict starts a
// failover.
type clusterMon struct {
	d      *Daemon
	cfg    ClusterConfig
	dialer topology.Dialer
	kick   chan struct{}
	cancel context.CancelFunc
	done   sync.WaitGroup
	acting atomic.Bool

	mu        sync.Mutex
	snap      topology.Snapshot
	primary   string
	failures  int
	downSince time.Time
	verdict   Verdict
	prog      *progress
	silent    map[string]time.Duration
	lastDead  time.Time
	snapAt    time.Time
	failing   map[string]bool
	// rejoinNoted remembers returned old primaries already reported.
	rejoinNoted map[string]bool
	// lockNoted (under mu) is, per server, the foreign session last
	// reported holding the failover lock, so it is logged once.
	lockNoted map[string]int64
	// watchCancel (under mu) ends the primary watch's SLEEP when the
	// primary changes, so the watch follows the new one at once.
	watchCancel context.CancelFunc
	// memory is what the primary told while it answered (under mu), kept
	// in state_dir too: a dead primary's dialect, semi-sync, pair.
	memory topology.Memory

	probeDialer topology.Dialer
	// pool keeps the prober's connections between probes (probeDialer).
	pool *poolDialer
	// facts keeps the slow-changing facts of the routine probe's servers
	// between probes (topology.FactsCache).
	facts   *topology.FactsCache
	leaseMu sync.Mutex // lease is used by the probe loop and the fencing gate
	lease   leaseTracker
	// heartbeatReady is set once the write probe's table exists.
	heartbeatReady atomic.Bool
	// resuming is set while an attempt to resume an open decision runs;
	// nextResume (under mu) and resumeBackoff space the attempts.
	resuming      atomic.Bool
	resumeBackoff atomic.Int64
	nextResume    time.Time
	// fenceRefusal (under mu) is why failover.fencing: require refused
	// the last failover, shown with the verdict.
	fenceRefusal string
	// gateOpens (under mu) is when the last refusal's time-bound
	// conditions hold (zero: not by time alone).
	gateOpens time.Time
	// capt is this monitor's capture of the cluster (nil when
	// capture.enabled is off or it could not start: captureErr says why).
	capt       *captureRunner
	captureErr string
	// startDelay postpones the first probe (set by Reload when there are
	// several clusters; read only by the probe loop).
	startDelay time.Duration
	// pauseNoted (under mu) is the verdict last reported while paused.
	pauseNoted State
}

func newClusterMon(d *Daemon, c ClusterConfig) *clusterMon {
	cm := &clusterMon{d: d, cfg: c, kick: make(chan struct{}, 1), prog: newProgress(), failing: map[string]bool{}, rejoinNoted: map[string]bool{}, lockNoted: map[string]int64{}}
	if d.cfg.Dialer != nil {
		cm.dialer = d.cfg.Dialer(c.Spec)
	} else {
		cm.dialer = topology.SQLDialer{Credentials: c.Spec.Credentials, ConnectTimeout: c.Spec.ConnectTimeout, ReadTimeout: c.Spec.ReadTimeout, TLS: c.Spec.TLS}
	}
	cm.dialer = recoverDialer{inner: cm.dialer, log: d.log}
	cm.pool = newPoolDialer(fastFailDialer{inner: cm.dialer, failing: cm.isFailing}, cm.isFailing, c.Spec.ConnectTimeout, d.now)
	cm.probeDialer = cm.pool
	cm.facts = topology.NewFactsCache(topology.FactsMaxAge, d.now)
	return cm
}

// fastFailDialer bounds connects to servers that just failed a probe: a cut
// server would otherwise cost a full connect timeout on every re-probe and
// slow detection down to one probe per timeout.
type fastFailDialer struct {
	inner   topology.Dialer
	failing func(string) bool
}

const failingConnectTimeout = 300 * time.Millisecond

func (f fastFailDialer) Dial(ctx context.Context, addr string) (topology.Querier, error) {
	if f.failing(addr) {
		dctx, cancel := context.WithTimeout(ctx, failingConnectTimeout)
		defer cancel()
		q, err := f.inner.Dial(dctx, addr)
		if err != nil {
			return nil, err
		}
		return q, nil
	}
	return f.inner.Dial(ctx, addr)
}

func (cm *clusterMon) isFailing(addr string) bool {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.failing[addr]
}

func (cm *clusterMon) start(ctx context.Context) {
	ctx, cm.cancel = context.WithCancel(ctx)
	cm.done.Add(2)
	// A panic on one cluster's input restarts that cluster's loop only.
	name := cm.cfg.Spec.Name
	go func() {
		defer cm.done.Done()
		supervise(ctx, cm.d.log, "probe loop", 100*time.Millisecond, cm.loop, "cluster", name)
	}()
	go func() {
		defer cm.done.Done()
		supervise(ctx, cm.d.log, "primary watch", time.Second, cm.watch, "cluster", name)
	}()
	cm.startCapture(ctx)
}

// stopTimeout bounds how long stopping a cluster monitor waits for its
// goroutines: every call they make is itself bounded by the context or a
// timeout, so this only trips on a bug, which is logged, not hung on.
const stopTimeout = 10 * time.Second

func (cm *clusterMon) stop() {
	if cm.cancel != nil {
		cm.cancel()
	}
	if !bounded(stopTimeout, cm.done.Wait) {
		cm.d.log.Error("cluster monitor did not stop in time; leaving it behind", "cluster", cm.cfg.Spec.Name, "waited", stopTimeout)
	}
	cm.pool.closeAll()
}

func (cm *clusterMon) poke() {
	select {
	case cm.kick <- struct{}{}:
	default:
	}
}

func (cm *clusterMon) loop(ctx context.Context) {
	if d := cm.startDelay; d > 0 {
		// Clusters start at random points of the interval, so their
		// probes (and the leader's work after each) spread across it
		// rather than all landing at once every interval.
		cm.startDelay = 0
		select {
		case <-ctx.Done():
			return
		case <-cm.kick:
		case <-time.After(d):
		}
	}
	urgent := false
	for {
		cm.probeOnce(ctx, urgent)
		wait := cm.cfg.Interval
		cm.mu.Lock()
		if cm.failures > 0 {
			wait = min(wait, 100*time.Millisecond) // re-probe fast once a probe fails
		}
		cm.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-cm.kick:
			urgent = true
		case <-time.After(wait):
			urgent = false
		}
	}
}

// probeOnce runs one probe, in its turn.
func (cm *clusterMon) probeOnce(ctx context.Context, urgent bool) {
	if slots := cm.probeTurn(ctx, urgent); slots != nil {
		defer slots.release() // also when the probe panics
	}
	if ctx.Err() == nil {
		cm.probe(ctx)
	}
}

// probeTurn waits for a probe slot and returns the pool to give it back
// to (nil when the context ended). Routine probes (the cluster looks
// healthy and nothing woke it) share one pool; a probe of a primary that
// is failing or not judged healthy, or one woken by the primary watch or
// an agent, takes a slot of a second pool, so with thousands of clusters
// on a busy host detection never queues behind healthy clusters, and a
// storm of failing clusters (a host starved of CPU, where every probe
// times out) stays bounded too. A routine probe woken while it waits
// becomes urgent.
func (cm *clusterMon) probeTurn(ctx context.Context, urgent bool) probeSlots {
	cm.mu.Lock()
	routine := cm.failures == 0 && (cm.verdict.State == StateHealthy || cm.verdict.State == "")
	cm.mu.Unlock()
	if !urgent && routine {
		select {
		case cm.d.probeSlots <- struct{}{}:
			return cm.d.probeSlots
		case <-cm.kick:
		case <-ctx.Done():
			return nil
		}
	}
	if cm.d.urgentSlots.acquire(ctx) {
		return cm.d.urgentSlots
	}
	return nil
}

// routineFacts is the facts cache while the cluster is healthy, nil (read
// everything) while its primary fails or a failover runs or resumes here:
// those snapshots may feed a failover plan, which needs fresh facts.
func (cm *clusterMon) routineFacts() *topology.FactsCache {
	if cm.acting.Load() || cm.resuming.Load() {
		return nil
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.failures > 0 {
		return nil
	}
	return cm.facts
}

// probe discovers the cluster, updates what this monitor believes, gossips
// it, and judges the primary.
func (cm *clusterMon) probe(ctx context.Context) {
	started := cm.d.now()
	pctx, cancel := context.WithTimeout(ctx, cm.cfg.Spec.ConnectTimeout+2*cm.cfg.Spec.ReadTimeout)
	snap := topology.DiscoverRoutine(pctx, cm.cfg.Spec, cm.probeDialer, cm.routineFacts())
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := cm.d.now()
	silent := cm.prog.observe(&snap, now)

	cm.mu.Lock()
	if snap.Primary != "" {
		if cm.primary != snap.Primary && cm.watchCancel != nil {
			cm.watchCancel()
		}
		cm.primary = snap.Primary
	}
	primary := cm.primary
	cm.mu.Unlock()
	// Judged without the lock held: the write probe dials, and the dialer
	// asks (under the lock) whether the server is failing.
	reachable := false
	if v, ok := snap.Server(primary); ok && (v.Reachable || v.Answered) {
		// A primary that refuses us (too many connections, access denied)
		// is alive: not a reason to fail over.
		reachable = true
		if v.Reachable && cm.cfg.WriteProbe && !v.ReadOnly && !v.SuperReadOnly {
			if err := cm.writeProbe(ctx, primary); err != nil {
				reachable = false
				cm.d.log.Warn("write probe failed: the primary accepts connections but cannot write", "cluster", cm.cfg.Spec.Name, "primary", primary, "err", err)
			}
		}
	}
	cm.mu.Lock()
	switch {
	case reachable:
		cm.failures, cm.downSince = 0, time.Time{}
	case cm.failures == 0:
		// Down since the failing attempt began: a cut server spends the
		// whole connect timeout failing.
		cm.failures, cm.downSince = 1, started
	default:
		cm.failures++
	}
	cm.snap, cm.silent, cm.snapAt = snap, silent, now
	cm.remember(&snap)
	for _, v := range snap.Servers {
		cm.failing[v.Spec.Address] = !v.Reachable
	}
	failures, downSince := cm.failures, cm.downSince
	cm.mu.Unlock()
	cm.followPrimary(&snap)

	var obs []Observation
	for _, v := range snap.Servers {
		o := Observation{Cluster: cm.cfg.Spec.Name, Server: v.Spec.Address, Reachable: v.Reachable || v.Answered, ObservedAt: now}
		if v.Spec.Address == primary {
			o.Reachable = reachable
		}
		if v.Spec.Address == primary && !reachable {
			o.DownForMS = now.Sub(downSince).Milliseconds()
		}
		obs = append(obs, o)
		cm.d.met.up.WithLabelValues(cm.cfg.Spec.Name, v.Spec.Address).Set(b2f(v.Reachable))
		cm.d.met.probe.WithLabelValues(cm.cfg.Spec.Name).Observe(v.ProbeRTT.Seconds())
		if c, ok := v.PrimaryConn(); ok && c.LagSeconds != nil {
			cm.d.met.lag.WithLabelValues(cm.cfg.Spec.Name, v.Spec.Address).Set(float64(*c.LagSeconds))
		}
	}
	cm.d.gossip().publish(obs)

	in := DetectInput{Primary: primary, Monitors: len(cm.d.cfg.Monitors), OwnReachable: reachable, OwnFailures: failures,
		DownAfter: cm.cfg.DownAfter, Freshness: 3*cm.cfg.Interval + time.Second, MinSilence: minSilence(cm.cfg.Interval)}
	if !reachable {
		in.OwnDownFor = now.Sub(downSince)
	}
	for _, p := range cm.d.gossip().viewsOf(cm.cfg.Spec.Name, primary) {
		in.Peers = append(in.Peers, PeerView{Monitor: p.Monitor, Reachable: p.Reachable, DownFor: time.Duration(p.DownForMS) * time.Millisecond, Age: p.Age})
	}
	// Every other configured server counts for the server-majority rule;
	// those replicating from another source (or none) are free of the
	// primary whatever their threads say.
	in.Servers = len(snap.Servers)
	for _, v := range snap.Servers {
		if v.Spec.Address == primary {
			continue
		}
		rv := ReplicaView{Address: v.Spec.Address, Reachable: v.Reachable, SilentFor: silent[v.Spec.Address], NotReplica: v.Source != primary}
		if c, ok := v.PrimaryConn(); ok && !rv.NotReplica {
			rv.IORunning = c.IORunning()
			rv.HeartbeatPeriod = time.Duration(c.HeartbeatSecs * float64(time.Second))
		}
		in.Replicas = append(in.Replicas, rv)
	}
	verdict := Detect(in)
	writers := 0
	for i := range snap.Servers {
		if writable(&snap.Servers[i]) {
			writers++
		}
	}
	cm.d.met.observeCluster(cm.cfg.Spec.Name, verdict.State, writers)
	cm.observeOperator(cm.d.fsm.operatorView(cm.cfg.Spec.Name))
	cm.mu.Lock()
	changed := verdict.State != cm.verdict.State
	first := cm.verdict.State == ""
	cm.verdict = verdict
	if verdict.State == StateDead && cm.lastDead.IsZero() {
		cm.lastDead = now
		cm.d.met.detection.WithLabelValues(cm.cfg.Spec.Name).Observe(now.Sub(downSince).Seconds())
	}
	if verdict.State != StateDead {
		cm.lastDead = time.Time{}
	}
	cm.mu.Unlock()
	if changed {
		lvl := cm.d.log.Info
		if verdict.State != StateHealthy {
			lvl = cm.d.log.Warn
		}
		lvl("primary state", "cluster", cm.cfg.Spec.Name, "primary", primary, "state", verdict.State, "reasons", verdict.Reasons)
		if !first && cm.d.isLeader() {
			cm.d.emit(verdictEvent(cm.cfg.Spec.Name, primary, verdict))
		}
		if verdict.State == StateHealthy {
			cm.d.resetOnce(cm.cfg.Spec.Name, "blocked")
		}
	}
	if cm.d.isLeader() {
		cm.lead(ctx, &snap, verdict)
	}
	cm.d.smet.round.WithLabelValues().Observe(cm.d.now().Sub(started).Seconds())
}

// watch keeps a session open on the primary running a long SLEEP: when the
// server dies the session breaks at once and the prober is woken, instead of
// noticing at its next tick.
func (cm *clusterMon) watch(ctx context.Context) {
	wd := recoverDialer{inner: topology.SQLDialer{Credentials: cm.cfg.Spec.Credentials, ConnectTimeout: cm.cfg.Spec.ConnectTimeout, ReadTimeout: 40 * time.Second, TLS: cm.cfg.Spec.TLS}, log: cm.d.log}
	for ctx.Err() == nil {
		cm.mu.Lock()
		primary := cm.primary
		cm.mu.Unlock()
		if primary == "" {
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		q, err := wd.Dial(ctx, primary)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			qctx, cancel := context.WithTimeout(ctx, 35*time.Second)
			cm.mu.Lock()
			moved := cm.primary != primary
			cm.watchCancel = cancel
			cm.mu.Unlock()
			if moved {
				cancel()
				break
			}
			_, err := q.Query(qctx, "SELECT SLEEP(30)")
			cancel()
			cm.mu.Lock()
			moved = cm.primary != primary
			cm.watchCancel = nil
			cm.mu.Unlock()
			if moved {
				break // woken by the change, not by a failure
			}
			if err != nil && ctx.Err() == nil {
				cm.poke()
				break
			}
		}
		q.Close()
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// status is the cluster as the API shows it.
func (cm *clusterMon) status() map[string]any {
	cm.mu.Lock()
	snap, verdict := cm.snap, cm.verdict
	cm.mu.Unlock()
	st := cm.d.fsm.view(cm.cfg.Spec.Name)
	snap.Servers = append([]topology.ServerView(nil), snap.Servers...) // marked on a copy
	snap.MarkMaintenance(maintenanceOf(&st, cm.cfg.Spec.Name))
	out := reportMap(snap.Report())
	cm.mu.Lock()
	if cm.fenceRefusal != "" && verdict.State == StateDead {
		verdict.Reasons = append(append([]string{}, verdict.Reasons...), "failover refused: "+cm.fenceRefusal)
	}
	cm.mu.Unlock()
	out["state"] = verdict.State
	out["verdict"] = verdict
	out["epoch"] = st.PrimEpoc[cm.cfg.Spec.Name]
	out["agreed_primary"] = st.Primary[cm.cfg.Spec.Name]
	if open, ok := st.Open[cm.cfg.Spec.Name]; ok {
		out["failover_in_progress"] = open
	}
	if until, ok := st.Blocked[cm.cfg.Spec.Name]; ok && cm.d.now().Before(until) {
		if why, ok := st.BlockedWhy[cm.cfg.Spec.Name]; ok {
			out["automatic_failover_blocked"] = why
		} else {
			out["automatic_failover_blocked_until"] = until
		}
	}
	out["auto_failover"] = cm.cfg.Auto
	cm.operatorStatus(out, &st)
	if v := cm.captureView(&snap); v != nil {
		out["capture"] = v
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		out["captures"] = cm.capturePositions(ctx)
		cancel()
	}
	return out
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// minSilence is the shortest silence that counts as a replica losing its
// primary, whatever its heartbeat period: one and a half probe intervals
// (SilenceLimit adds the replica's own heartbeat period).
func minSilence(interval time.Duration) time.Duration {
	return interval * 3 / 2
}

// writeProbe upserts this monitor's heartbeat row on the primary (MHA's
// ping_type INSERT): a primary that accepts connections but cannot commit
// (full disk, hung storage) fails it. Only the primary is written to, so
// replicas never get local GTIDs (gtid_strict_mode would stop them).
func (cm *clusterMon) writeProbe(ctx context.Context, primary string) error {
	pctx, cancel := context.WithTimeout(ctx, cm.cfg.Spec.ReadTimeout)
	defer cancel()
	q, err := cm.probeDialer.Dial(pctx, primary)
	if err != nil {
		return err
	}
	defer q.Close()
	if !cm.heartbeatReady.Load() {
		for _, stmt := range []string{"CREATE DATABASE IF NOT EXISTS myha",
			"CREATE TABLE IF NOT EXISTS myha.heartbeat (monitor VARCHAR(64) NOT NULL PRIMARY KEY, ts DATETIME(6) NOT NULL) ENGINE=InnoDB"} {
			if err := q.Exec(pctx, stmt); err != nil {
				return err
			}
		}
		cm.heartbeatReady.Store(true)
	}
	return q.Exec(pctx, "REPLACE INTO myha.heartbeat (monitor, ts) VALUES ("+topology.QuoteLiteral(cm.d.self.Name)+", NOW(6))")
}

// remember keeps what a snapshot whose primary answers teaches (called
// under mu), writing it to the state directory when it changed.
func (cm *clusterMon) remember(snap *topology.Snapshot) {
	m, ok := topology.Remember(snap)
	if !ok || m.Same(cm.memory) {
		return
	}
	cm.memory = m
	if cm.d.cfg.StateDir == "" {
		return
	}
	if _, err := (failover.Store{Dir: cm.d.cfg.StateDir}).Recall(*snap); err != nil {
		cm.d.log.Info("cannot keep the cluster's memory in the state directory", "cluster", cm.cfg.Spec.Name, "err", err)
	}
}

// recalled completes a snapshot whose primary is dead with what was
// remembered: in this run's probes, else in the state directory.
func (cm *clusterMon) recalled(snap topology.Snapshot) topology.Snapshot {
	cm.mu.Lock()
	m := cm.memory
	cm.mu.Unlock()
	if m.Primary != "" {
		return snap.WithMemory(m)
	}
	if cm.d.cfg.StateDir == "" {
		return snap
	}
	out, _ := (failover.Store{Dir: cm.d.cfg.StateDir}).Recall(snap)
	return out
}
