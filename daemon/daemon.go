package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// MonitorAddr is one monitor of the deployment.
type MonitorAddr struct {
	Name       string
	Address    string
	GossipPort int
	RaftPort   int
	APIPort    int
}

// ClusterConfig is one cluster as the daemon needs it, in plain values.
type ClusterConfig struct {
	Spec        topology.ClusterSpec
	Policy      failover.Policy
	Hooks       failover.Hooks
	Repl        topology.Credentials
	Interval    time.Duration
	DownAfter   time.Duration
	BlockPeriod time.Duration
	Auto        bool
	AutoRejoin  bool
	// VIPLease, when set, makes the leader lease the VIP to the agent of the
	// agreed primary (vip.method: agent).
	VIPLease time.Duration
	// WriteProbe also upserts a heartbeat row on the primary each probe.
	WriteProbe bool
	// Fencing is failover.fencing: FencingRequire (default when empty)
	// or FencingBestEffort.
	Fencing string
	// Capture, when set, makes this monitor a durable binlog capture of
	// the cluster's primary (capture.enabled).
	Capture *CaptureConfig
}

// Config is the daemon's whole configuration.
type Config struct {
	Self string
	// Version is the running myha's version, for myha_build_info.
	Version     string
	Monitors    []MonitorAddr
	StateDir    string
	GossipKey   []byte
	GossipLabel string
	// APIToken is the write token; APIReadToken, when set, guards reads.
	APIToken     string
	APIReadToken string
	// TLS makes raft mutual TLS with the deployment's CA (required unless
	// Insecure). APICert, when set, makes the API serve HTTPS (its CA is
	// TLS.CA, which followers use to reach the leader's API).
	TLS     *TLSFiles
	APICert *TLSFiles
	// APIAllow, when set, is who may reach the API (security.api_allow);
	// the monitors' own addresses are added.
	APIAllow []netip.Prefix
	Insecure bool
	Clusters []ClusterConfig
	Log      *slog.Logger
	// Test seams: nil means the real network, disk and servers.
	GossipTransport memberlist.Transport
	RaftTransport   raft.Transport
	RaftStores      *RaftStores
	Dialer          func(topology.ClusterSpec) topology.Dialer
	LibLogs         io.Writer // memberlist and raft output
	// Etcd, when it has endpoints, makes the leader publish each cluster's
	// primary and healthy replicas there.
	Etcd EtcdConfig
	// Notify, when it has a webhook or a report script, receives every
	// event the leader emits.
	Notify NotifyConfig
	// Crash, when set, is handed to the failover executor
	// (failover.Executor.Crash): called at every step boundary, it lets
	// tests stop the leader exactly there. The caller decides (the daemon
	// reads no environment).
	Crash func(point string)
}

// RaftStores are raft's stores, replaced by in-memory ones in tests.
type RaftStores struct {
	Logs   raft.LogStore
	Stable raft.StableStore
	Snaps  raft.SnapshotStore
}

// Daemon is one running monitor.
type Daemon struct {
	cfg   Config
	self  MonitorAddr
	log   *slog.Logger
	fsm   *fsm
	raftp atomic.Pointer[raft.Raft]
	gossp atomic.Pointer[gossip]
	met   *metrics
	now   func() time.Time
	pub   *publisher // nil without etcd endpoints
	// ops are the API's asynchronous operations (failover, switchover).
	ops *opStore
	// loaded is set once the clusters of the config run (readiness).
	loaded atomic.Bool
	// events numbers the leader's state changes; notify (nil when
	// nothing is configured) delivers them.
	events eventLog
	notify *notifier
	smet   *scaleMetrics
	// probeSlots bounds the routine probes running at once, urgentSlots
	// the others (clusterMon.probeTurn).
	probeSlots, urgentSlots probeSlots

	// leadCtx lives while this monitor leads: it is cancelled the moment
	// leadership is lost, which stops an in-flight failover at its next
	// safe point.
	leadMu sync.Mutex
	// caughtUp is set once this leader's post-election barrier has applied
	// every committed entry: before that its FSM may miss what the previous
	// leader committed (a promotion), so it must not act on it.
	caughtUp    atomic.Bool
	leadCtx     context.Context
	leadCancel  context.CancelFunc
	leaderSince time.Time

	mu       sync.RWMutex
	clusters map[string]*clusterMon
	ctx      context.Context
	wg       sync.WaitGroup
}

// New checks the configuration and finds this monitor in it.
func New(cfg Config) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: cfg.Log, fsm: newFSM(), now: time.Now, clusters: map[string]*clusterMon{}, ops: newOpStore(maxOperations),
		probeSlots: newProbeSlots(), urgentSlots: newProbeSlots()}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.fsm.log = d.log
	found := false
	for _, m := range cfg.Monitors {
		if m.Name == cfg.Self {
			d.self, found = m, true
		}
	}
	if !found {
		return nil, fmt.Errorf("monitor %q is not in the monitors list of the config (pass --name)", cfg.Self)
	}
	if !cfg.Insecure {
		if len(cfg.GossipKey) == 0 && cfg.GossipTransport == nil {
			return nil, errors.New("no gossip key: set security.gossip_key_file (or security.insecure: true to run unencrypted)")
		}
		if cfg.TLS == nil && cfg.RaftTransport == nil {
			return nil, errors.New("raft needs TLS: set security.ca_file, cert_file and key_file (myha certs init/issue), or security.insecure: true")
		}
	}
	d.met = newMetrics(cfg.Version)
	d.smet = newScaleMetrics(d)
	if len(cfg.Etcd.Endpoints) > 0 {
		d.pub = newPublisher(cfg.Etcd, d.log, d.now)
	}
	d.met.reg.MustRegister(captureCollector{d})
	if cfg.Notify.Webhook != nil || cfg.Notify.ReportScript != "" {
		d.notify = newNotifier(cfg.Notify, d.log, d.met.reg)
	}
	return d, nil
}

// Run starts gossip, raft, the cluster monitors and the API, and blocks
// until ctx ends; then it leaves gossip and raft cleanly.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.ctx = ctx
	g, err := startGossip(GossipConfig{Name: d.self.Name, BindAddr: d.self.Address, Port: d.self.GossipPort, Key: d.cfg.GossipKey,
		Label: d.cfg.GossipLabel, Transport: d.cfg.GossipTransport, LogOutput: d.cfg.LibLogs, OnAgent: d.onAgent, Monitors: monitorNames(d.cfg.Monitors),
		Allow: gossipAllow(d.cfg.Monitors, d.cfg.Clusters), Log: d.log}, d.now)
	if err != nil {
		return err
	}
	d.gossp.Store(g)
	defer g.leave()

	peers := map[string]string{}
	for _, m := range d.cfg.Monitors {
		peers[m.Name] = hostPort(m.Address, m.RaftPort)
	}
	rc := RaftConfig{Self: d.self.Name, BindAddr: hostPort(d.self.Address, d.self.RaftPort), Peers: peers,
		Dir: filepath.Join(d.cfg.StateDir, "raft"), Transport: d.cfg.RaftTransport, LogOutput: d.cfg.LibLogs,
		TLS: d.cfg.TLS, Monitors: d.cfg.Monitors, Log: d.log}
	if s := d.cfg.RaftStores; s != nil {
		rc.Logs, rc.Stable, rc.Snaps = s.Logs, s.Stable, s.Snaps
	}
	r, stopRaft, err := startRaft(rc, d.fsm)
	if err != nil {
		return err
	}
	d.raftp.Store(r)
	defer func() {
		if !bounded(stopTimeout, stopRaft) {
			d.log.Error("raft did not shut down in time", "waited", stopTimeout)
		}
	}()

	apiAddr := hostPort(d.self.Address, d.self.APIPort)
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil && d.cfg.GossipTransport == nil {
		return fmt.Errorf("API on %s: %w", apiAddr, err)
	}
	if ln != nil {
		api, err := serveAPI(ln, d.apiHandler(ctx), d.cfg.APICert, d.log)
		if err != nil {
			ln.Close()
			return err
		}
		defer api.Close()
	}

	if d.notify != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); supervise(ctx, d.log, "notifier", time.Second, d.notify.run) }()
	}
	if d.pub != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); supervise(ctx, d.log, "etcd publisher", time.Second, d.pub.run) }()
	}
	d.wg.Add(2)
	go func() { defer d.wg.Done(); supervise(ctx, d.log, "gossip join loop", time.Second, d.joinLoop) }()
	go func() { defer d.wg.Done(); supervise(ctx, d.log, "leader loop", time.Second, d.leaderLoop) }()
	// A SIGHUP's Reload may write d.cfg.Clusters at any time (under mu).
	d.mu.RLock()
	clusters := d.cfg.Clusters
	d.mu.RUnlock()
	d.Reload(clusters)
	d.loaded.Store(true)
	if d.cfg.Insecure {
		d.log.Warn("security.insecure is set: gossip may be unencrypted and raft unauthenticated")
	}
	d.log.Info("monitor running", "name", d.self.Name, "gossip", hostPort(d.self.Address, d.self.GossipPort),
		"raft", rc.BindAddr, "api", apiAddr, "api_https", d.cfg.APICert != nil, "api_allow", len(d.cfg.APIAllow), "monitors", monitorNames(d.cfg.Monitors), "clusters", clusterNames(clusters))
	<-ctx.Done()
	d.log.Info("monitor stopping: leaving gossip and raft", "name", d.self.Name)
	d.mu.Lock()
	for _, c := range d.clusters {
		c.stop()
	}
	d.mu.Unlock()
	if !bounded(stopTimeout, d.wg.Wait) {
		d.log.Error("monitor loops did not stop in time", "waited", stopTimeout)
	}
	if r := d.raft(); r != nil && r.State() == raft.Leader && len(d.cfg.Monitors) > 1 {
		// Hand over before leaving; raft bounds the transfer itself, this
		// bounds it again.
		bounded(5*time.Second, func() { d.raft().LeadershipTransfer().Error() })
	}
	return nil
}

// Reload swaps the cluster definitions: new clusters start, removed ones
// stop, changed ones restart with the new settings. An unchanged cluster
// runs on untouched, with its sessions, verdict and failure count: a
// reload at a thousand clusters must not blind every one of them for a
// probe interval, nor reset a primary's failure count mid-detection. (A
// cluster whose settings hold values that cannot be compared, such as a
// TLS configuration with callbacks, counts as changed.) Monitors and ports
// are fixed for the life of the process.
func (d *Daemon) Reload(clusters []ClusterConfig) {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[string]ClusterConfig{}
	for _, c := range clusters {
		want[c.Spec.Name] = c
	}
	for name, cm := range d.clusters {
		if _, ok := want[name]; !ok {
			cm.stop()
			delete(d.clusters, name)
		}
	}
	for name, c := range want {
		if old, ok := d.clusters[name]; ok {
			if reflect.DeepEqual(old.cfg, c) {
				continue
			}
			old.stop()
		}
		cm := newClusterMon(d, c)
		if len(want) > 1 && c.Interval > 0 {
			cm.startDelay = rand.N(c.Interval)
		}
		d.clusters[name] = cm
		cm.start(d.ctx)
	}
	d.cfg.Clusters = clusters
	if g := d.gossp.Load(); g != nil {
		g.setAllow(gossipAllow(d.cfg.Monitors, clusters))
	}
}

// gossipAllow is who may gossip what: the configured monitors, and agents
// of the configured servers.
func gossipAllow(mons []MonitorAddr, clusters []ClusterConfig) *GossipAllow {
	a := &GossipAllow{Monitors: map[string]string{}, Servers: map[string]map[string]bool{}}
	for _, m := range mons {
		a.Monitors[m.Name] = m.Address
	}
	for _, c := range clusters {
		ss := map[string]bool{}
		for _, s := range c.Spec.Servers {
			ss[s.Address] = true
		}
		a.Servers[c.Spec.Name] = ss
	}
	return a
}

// joinLoop keeps trying to join the other monitors until all are members.
func (d *Daemon) joinLoop(ctx context.Context) {
	var addrs []string
	for _, m := range d.cfg.Monitors {
		if m.Name != d.self.Name {
			addrs = append(addrs, hostPort(m.Address, m.GossipPort))
		}
	}
	for {
		if d.gossip().members() < len(d.cfg.Monitors) && len(addrs) > 0 {
			d.gossip().join(addrs)
		}
		d.met.members.Set(float64(d.gossip().members()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// leaderContext returns a context that ends when this monitor stops
// leading (already ended when it does not lead).
func (d *Daemon) leaderContext() context.Context {
	leading := d.isLeader()
	d.leadMu.Lock()
	defer d.leadMu.Unlock()
	if d.leadCtx == nil && leading && d.ctx != nil {
		// Raft says leader before the leader loop has read LeaderCh.
		d.leadCtx, d.leadCancel = context.WithCancel(d.ctx)
		d.leaderSince = d.now()
	}
	if d.leadCtx == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return d.leadCtx
}

// leaderSinceTime is when this monitor's current leadership began (zero
// when it does not lead).
func (d *Daemon) leaderSinceTime() time.Time {
	d.leadMu.Lock()
	defer d.leadMu.Unlock()
	if d.leadCtx == nil {
		return time.Time{}
	}
	return d.leaderSince
}

// setLeading starts or ends the leadership context.
func (d *Daemon) setLeading(ctx context.Context, leading bool) {
	d.leadMu.Lock()
	defer d.leadMu.Unlock()
	switch {
	case leading && d.leadCtx == nil:
		d.leadCtx, d.leadCancel = context.WithCancel(ctx)
		d.leaderSince = d.now()
	case !leading && d.leadCtx != nil:
		d.caughtUp.Store(false)
		d.leadCancel()
		d.leadCtx, d.leadCancel = nil, nil
		d.log.Warn("lost leadership: cancelling anything this monitor runs as leader", "name", d.self.Name)
	}
}

// leaderCheckInterval is how often the leader loop re-reads raft's state:
// LeaderCh may coalesce signals, so losing leadership is also noticed by
// polling.
const leaderCheckInterval = 100 * time.Millisecond

// leaderLoop reacts to leadership: a new leader first makes sure its state
// is current, then finishes or reports failovers a previous leader left open;
// a monitor that stops leading cancels its leadership context at once.
func (d *Daemon) leaderLoop(ctx context.Context) {
	defer d.setLeading(ctx, false)
	tick := time.NewTicker(leaderCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !d.isLeader() {
				d.setLeading(ctx, false)
			} else if !d.caughtUp.Load() && d.leaderSinceTime().Before(d.now().Add(-5*time.Second)) {
				// The barrier after the election failed but this monitor
				// still leads: try again (lead() resumes open decisions).
				if d.raft().Barrier(time.Second).Error() == nil {
					d.caughtUp.Store(true)
				}
			}
		case isLeader := <-d.raft().LeaderCh():
			d.met.leader.Set(b2f(isLeader))
			if !isLeader {
				d.setLeading(ctx, false)
				continue
			}
			d.caughtUp.Store(false)
			d.setLeading(ctx, true)
			d.log.Info("became leader", "name", d.self.Name)
			if err := d.raft().Barrier(5 * time.Second).Error(); err != nil {
				d.log.Warn("barrier after election failed", "err", err)
				continue
			}
			d.caughtUp.Store(true)
			for cluster, dec := range d.fsm.snapshot().Open {
				d.mu.RLock()
				cm := d.clusters[cluster]
				d.mu.RUnlock()
				if cm != nil && dec != nil {
					cm.resumeLater(*dec)
				}
			}
		}
	}
}

// onAgent wakes the leader when an agent reports, so a confirmed release
// hands the VIP over at once.
func (d *Daemon) onAgent(a AgentMsg) {
	if !d.isLeader() {
		return
	}
	if cm := d.cluster(a.Cluster); cm != nil {
		cm.poke()
	}
}

// isLeader reports whether this monitor may act.
func (d *Daemon) isLeader() bool {
	r := d.raftp.Load()
	return r != nil && r.State() == raft.Leader
}

// raft returns the raft node; Run sets it before anything uses it.
func (d *Daemon) raft() *raft.Raft { return d.raftp.Load() }

// gossip returns the gossip member; Run sets it before anything uses it.
func (d *Daemon) gossip() *gossip { return d.gossp.Load() }

// apply commits a command; only the leader can.
func (d *Daemon) apply(c command) error {
	if !d.isLeader() {
		return errors.New("not the leader")
	}
	b, err := jsonMarshal(c)
	if err != nil {
		return err
	}
	f := d.raft().Apply(b, 5*time.Second)
	if err := f.Error(); err != nil {
		return err
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// leaderAPI returns the API address of the current leader, if known.
func (d *Daemon) leaderAPI() (string, string) {
	r := d.raft()
	if r == nil {
		return "", "" // raft not started yet: no leader known
	}
	_, id := r.LeaderWithID()
	for _, m := range d.cfg.Monitors {
		if string(id) == m.Name {
			return m.Name, hostPort(m.Address, m.APIPort)
		}
	}
	return "", ""
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func monitorNames(ms []MonitorAddr) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// clusterNames makes the start-up line say which clusters this monitor
// watches, the first thing to compare across hosts.
func clusterNames(cs []ClusterConfig) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Spec.Name
	}
	return out
}
