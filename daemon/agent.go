package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/myha/myha/topology"
	"github.com/myha/myha/vip"
)

// AgentConfig is `myha agent` on a database host, as plain values.
type AgentConfig struct {
	Server      string // the local database server, host:port as configured
	Cluster     ClusterConfig
	Monitors    []MonitorAddr
	BindAddr    string // this host's address for gossip and HTTP
	GossipPort  int
	HTTPPort    int
	GossipKey   []byte
	GossipLabel string
	VIP         *vip.Config // nil: health endpoints only (vip.method: hook, or no VIP)
	Lease       time.Duration
	Log         *slog.Logger
	LibLogs     io.Writer
	Transport   memberlist.Transport // tests
	// Watchdog, when set, is told every round until when the agent may
	// keep its server writable, and fences it if the agent stops telling
	// (a pause, a crash). nil: none (tests on fakes).
	Watchdog Watchdog
}

// Agent holds the VIP, keepalived-style, if and only if its local server is
// the agreed primary, writable, and its lease from the monitors' leader is
// fresh. When the lease lapses because no monitor can be heard it keeps a
// writable primary only while it plus the servers following it are a
// strict majority of the cluster's servers (the failsafe; decideAgent);
// otherwise it drops the VIP and fences the server.
type Agent struct {
	cfg    AgentConfig
	log    *slog.Logger
	g      *gossip
	vip    *vip.VIP
	dialer topology.Dialer
	now    func() time.Time

	mu       sync.Mutex
	local    topology.ServerState
	holding  bool
	failsafe bool
	lease    LeaseMsg
	leaseOK  bool
	lastSent time.Time
	// seq numbers this agent's reports; sent remembers when (monotonic)
	// each recent one left, so a lease acknowledging a report is trusted
	// from that moment, never from its own (possibly late) arrival.
	seq  uint64
	sent map[uint64]time.Time
	// marks remember, per other server, its replication progress and
	// when it last changed: silence, measured as the monitors measure it.
	marks map[string]replicaMark
	// lastWhy is the latest decision's reason, logged when it changes.
	lastWhy string
	// followers are the servers the last tracking round counted as
	// following this one (the failsafe's evidence), for the status.
	followers []string
	// holdUntil is when the current decision to hold stops being
	// justified (zero: not holding): renewLoop renews the VIP's lifetime
	// only before it.
	holdUntil time.Time

	// reloads carries SIGHUP's new configuration to Run's loop, which
	// alone applies it between two rounds.
	reloads chan AgentConfig
}

// sentKept is how many recent report numbers the agent remembers.
const sentKept = 256

// NewAgent checks the configuration; Run starts the agent.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	// Report numbers start from the wall clock so that a restarted agent
	// never reuses one its previous run sent (only uniqueness matters).
	a := &Agent{cfg: cfg, log: cfg.Log, now: time.Now, seq: uint64(time.Now().UnixNano()), sent: map[uint64]time.Time{}, marks: map[string]replicaMark{},
		reloads: make(chan AgentConfig, 1)}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.dialer = agentDialer(cfg.Cluster.Spec, a.log)
	if cfg.VIP != nil {
		vc := *cfg.VIP
		vc.Lifetime = vipLifetime
		v, err := vip.New(vc, a.log)
		if err != nil {
			return nil, err
		}
		a.vip = v
	}
	return a, nil
}

func agentDialer(spec topology.ClusterSpec, log *slog.Logger) topology.Dialer {
	return recoverDialer{inner: topology.SQLDialer{Credentials: spec.Credentials, ConnectTimeout: min(spec.ConnectTimeout, time.Second), ReadTimeout: spec.ReadTimeout, TLS: spec.TLS}, log: log}
}

// Run joins the gossip, serves the health endpoints and keeps the VIP right
// until ctx ends; then it releases the VIP (like keepalived on stop).
func (a *Agent) Run(ctx context.Context) error {
	g, err := startGossip(GossipConfig{Name: "agent-" + a.cfg.Server, BindAddr: a.cfg.BindAddr, Port: a.cfg.GossipPort, Key: a.cfg.GossipKey,
		Label: a.cfg.GossipLabel, Transport: a.cfg.Transport, LogOutput: a.cfg.LibLogs, Role: "agent",
		Monitors: monitorNames(a.cfg.Monitors), Allow: gossipAllow(a.cfg.Monitors, []ClusterConfig{a.cfg.Cluster}), Log: a.log}, a.now)
	if err != nil {
		return err
	}
	a.g = g
	defer g.leave()
	srv := newAgentServer(hostPort(a.cfg.BindAddr, a.cfg.HTTPPort), recoverHandler(a.log, a.handler()), a.log)
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("agent health endpoints on %s: %w", srv.Addr, err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	var addrs []string
	for _, m := range a.cfg.Monitors {
		addrs = append(addrs, hostPort(m.Address, m.GossipPort))
	}
	a.log.Info("agent running", "server", a.cfg.Server, "cluster", a.cfg.Cluster.Spec.Name, "gossip", hostPort(a.cfg.BindAddr, a.cfg.GossipPort), "http", srv.Addr, "vip", a.cfg.VIP != nil)
	if a.vip != nil {
		rctx, stopRenew := context.WithCancel(ctx)
		renewDone := make(chan struct{})
		go func() {
			defer close(renewDone)
			supervise(rctx, a.log, "VIP lifetime renewals", time.Second, a.renewLoop)
		}()
		defer func() { stopRenew(); <-renewDone }()
	}
	lastJoin := time.Time{}
	var joining atomic.Bool
	var joins sync.WaitGroup
	defer joins.Wait()
	t := time.NewTicker(agentTick)
	defer t.Stop()
	for {
		if g.members() <= len(a.cfg.Monitors) && time.Since(lastJoin) > time.Second && len(addrs) > 0 && joining.CompareAndSwap(false, true) {
			// In the background: a join waits a TCP timeout for each
			// monitor it cannot reach, and the rounds must stay bounded
			// (agentReaction; the watchdog fences a late agent).
			lastJoin = time.Now()
			joins.Add(1)
			go func() {
				defer joins.Done()
				defer joining.Store(false)
				g.join(addrs)
			}()
		}
		guard(a.log, "agent tick", func() { a.tick(ctx) }, "server", a.cfg.Server)
		select {
		case <-ctx.Done():
			if a.vip != nil {
				a.setHoldUntil(time.Time{})
				if err := a.vip.Release(); err != nil {
					a.log.Error("agent stopping: could not release the VIP", "err", err)
				}
				a.publish(false)
			}
			if w := a.cfg.Watchdog; w != nil {
				// A clean stop: the VIP is released, and the server is left
				// as it is, as before there was a watchdog.
				if err := w.Close(); err != nil {
					a.log.Error("agent stopping: could not disarm the watchdog", "err", err)
				}
			}
			a.log.Info("agent stopped; VIP released", "server", a.cfg.Server)
			return nil
		case nc := <-a.reloads:
			a.applyReload(nc)
		case <-t.C:
		}
	}
}

// renewLoop renews the VIP's address lifetime every vipRenewEvery while
// the latest decision to hold still stands by the clock (holdUntil, less
// vipRenewMargin), and never after: an agent that stops deciding (killed,
// frozen, stuck) stops renewing, and the kernel removes the address within
// vipLifetime + vipKernelSlack, at the latest agentReaction after holdUntil.
func (a *Agent) renewLoop(ctx context.Context) {
	t := time.NewTicker(vipRenewEvery)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		until := a.holdUntil
		a.mu.Unlock()
		if until.IsZero() || !a.now().Before(until.Add(-vipRenewMargin)) {
			continue
		}
		msg := ""
		if err := a.vip.RenewLifetime(); err != nil {
			msg = err.Error()
		}
		if msg != lastErr && msg != "" {
			a.log.Warn("agent: cannot renew the VIP's lifetime", "vip", a.cfg.VIP.Address, "err", msg)
		}
		lastErr = msg
	}
}

func (a *Agent) setHoldUntil(t time.Time) {
	a.mu.Lock()
	a.holdUntil = t
	a.mu.Unlock()
}

// newAgentServer bounds the health endpoints like the API: HAProxy checks
// are small and quick, so a client that holds a connection open or sends
// a large request is cut.
func newAgentServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Addr: addr, Handler: limitBody(h), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: apiIdleTimeout, MaxHeaderBytes: apiMaxHeader,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// tick decides whether to hold the VIP now, and makes it so. One round
// probes the local server and, while this server is the leased primary,
// every other server (concurrently, bounded by agentProbeBound), then
// decides with decideAgent. The decision is taken again, on a fresh
// reading of the monotonic clock, right before acting: after a pause (GC,
// SIGSTOP, a frozen VM) only a lease still fresh by this agent's own clock,
// or evidence gathered after the pause, lets it keep writes.
func (a *Agent) tick(ctx context.Context) {
	name := a.cfg.Cluster.Spec.Name
	l, _, ok := a.g.lease(name)
	named := ok && l.Primary == a.cfg.Server
	// The other servers are probed while this one is named or was
	// writable last round: a replica counts toward the failsafe only once
	// this agent has seen it receive something, so the marks must be warm
	// before the lease ever lapses.
	a.mu.Lock()
	track := named || (a.local.Reachable && !a.local.ReadOnly && !a.local.SuperReadOnly)
	a.mu.Unlock()
	started := a.now()
	pctx, cancel := context.WithTimeout(ctx, agentProbeBound)
	var wg sync.WaitGroup
	var st topology.ServerState
	wg.Add(1)
	go func() {
		defer wg.Done()
		st = topology.Probe(pctx, a.dialer, topology.ServerSpec{Address: a.cfg.Server})
	}()
	var others []topology.ServerState
	if track {
		for _, s := range a.cfg.Cluster.Spec.Servers {
			if s.Address != a.cfg.Server {
				others = append(others, topology.ServerState{})
			}
		}
		i := 0
		for _, s := range a.cfg.Cluster.Spec.Servers {
			if s.Address == a.cfg.Server {
				continue
			}
			wg.Add(1)
			go func(i int, s topology.ServerSpec) {
				defer wg.Done()
				fctx, cancel := context.WithTimeout(pctx, followerProbeBound)
				defer cancel()
				others[i] = topology.Probe(fctx, a.dialer, s)
			}(i, s)
			i++
		}
	}
	wg.Wait()
	cancel()
	if ctx.Err() != nil {
		return
	}
	ev := a.evidence(started, &st, others, a.now())
	in := agentInput{Self: a.cfg.Server, LeaseDur: a.cfg.Lease, Writable: st.Reachable && !st.ReadOnly && !st.SuperReadOnly,
		Evidence: ev, HaveProof: named}
	decide := func() agentDecision {
		// The lease as it is now: one that arrived during the probes counts.
		in.Lease, in.Received, in.HasLease = a.g.lease(name)
		in.Anchor = a.sentAt(in.Lease.Ack)
		in.Now = a.now()
		return decideAgent(in)
	}
	d := decide()
	a.arm(d)
	if d.Fence {
		a.fence(ctx, &st, d.Why)
	}
	a.mu.Lock()
	a.local, a.lease, a.leaseOK, a.failsafe = st, in.Lease, d.Fresh, d.Failsafe
	if track {
		a.followers = ev.Names
	}
	changed := d.Why != a.lastWhy
	a.lastWhy = d.Why
	a.mu.Unlock()
	if changed {
		a.log.Info("agent decision", "server", a.cfg.Server, "hold", d.Hold, "failsafe", d.Failsafe, "fence", d.Fence, "why", d.Why, "followers", ev.Names)
	}
	if !d.Hold {
		a.setHoldUntil(time.Time{}) // no renewal from now on, even before the release
	}
	a.apply(ctx, d.Hold, func() bool {
		// Right before taking the VIP: still justified by the clock now?
		again := decide()
		a.arm(again)
		return again.Hold
	})
	if w := a.cfg.Watchdog; w != nil {
		a.mu.Lock()
		holding := a.holding
		a.mu.Unlock()
		if !holding && !(st.Reachable && !st.ReadOnly && !st.SuperReadOnly) {
			// Nothing held and nothing writable here: nothing to guard.
			// Otherwise the last word stands, and the watchdog acts on it
			// unless a later round renews it.
			if err := w.Disarm(); err != nil {
				a.log.Error("agent: cannot disarm the watchdog", "err", err)
			}
		}
	}
}

// arm tells the watchdog until when this round lets the agent keep its
// server writable, before anything is taken or kept on that ground.
func (a *Agent) arm(d agentDecision) {
	if w := a.cfg.Watchdog; w != nil && !d.Until.IsZero() {
		if err := w.Arm(d.Until); err != nil {
			a.log.Error("agent: cannot arm the watchdog", "err", err)
		}
	}
	a.mu.Lock()
	if a.holding && d.Hold {
		a.holdUntil = d.Until
	} else {
		a.holdUntil = time.Time{}
	}
	a.mu.Unlock()
}

// evidence counts this server plus the servers following it, seen from
// this host: reachable, IO thread connected to this server (by address or
// server_id), and not silent for longer than their heartbeat period
// allows — the monitors' own definition (following), so a server the
// monitors count as free of this primary is not counted here.
func (a *Agent) evidence(started time.Time, local *topology.ServerState, others []topology.ServerState, now time.Time) failsafeEvidence {
	e := failsafeEvidence{Started: started, Following: 1, Servers: len(a.cfg.Cluster.Spec.Servers)}
	ms := minSilence(a.cfg.Cluster.Interval)
	if a.cfg.Cluster.Interval <= 0 {
		ms = minSilence(time.Second)
	}
	for _, st := range others {
		c, ok := st.PrimaryConn()
		if !st.Reachable || !ok {
			continue
		}
		addr := st.Spec.Address
		key := replicationKey(c)
		// Silence counted from a moment surely before the replica last
		// received something: the start of the round that last saw the
		// old value (never seen before: from long ago). The monitors count
		// from after it (when they read the change), so the agent never
		// counts a replica as following after the monitors saw it free.
		m, seen := a.marks[addr]
		if !seen || m.key != key {
			m.key, m.changed = key, m.seen
		}
		m.seen = started
		a.marks[addr] = m
		ours := c.Source() == a.cfg.Server || (c.SourceServerID != 0 && c.SourceServerID == local.ServerID)
		hb := time.Duration(c.HeartbeatSecs * float64(time.Second))
		if ours && following(c.IORunning(), now.Sub(m.changed), hb, ms) {
			e.Following++
			e.Names = append(e.Names, addr)
		}
	}
	return e
}

func (a *Agent) isHolding() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.holding
}

// sentAt is when this agent sent report seq (zero if it does not remember).
func (a *Agent) sentAt(seq uint64) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent[seq]
}

// apply adds or removes the VIP to match hold, and tells the monitors.
func (a *Agent) apply(ctx context.Context, hold bool, stillHold func() bool) {
	if a.vip == nil {
		a.publish(false)
		return
	}
	present, err := a.vip.Present()
	if err != nil {
		a.log.Error("agent: cannot read the VIP state", "err", err)
		return
	}
	switch {
	case hold && (!present || !a.vip.Held()):
		// Missing, or present but left by an earlier run (a restarted
		// agent, or one from before address lifetimes): take it, which
		// gives it the lifetime and announces it.
		if stillHold != nil && !stillHold() {
			return // the clock moved on (a pause?): decide again next round
		}
		if err := a.vip.Acquire(ctx); err != nil {
			a.log.Error("agent: cannot take the VIP", "err", err)
			return
		}
		present = true
		a.log.Warn("VIP taken", "server", a.cfg.Server, "vip", a.cfg.VIP.Address)
	case !hold && (present || a.isHolding()):
		// Also when it is already gone (the watchdog released it while
		// this agent was paused): Release stops scheduled announcements.
		if err := a.vip.Release(); err != nil {
			a.log.Error("agent: cannot release the VIP", "err", err)
			return
		}
		present = false
		a.log.Warn("VIP released", "server", a.cfg.Server, "vip", a.cfg.VIP.Address)
	}
	a.mu.Lock()
	a.holding = present
	a.lastSent = a.now()
	a.mu.Unlock()
	// Every round: each report is numbered, and the leader's next lease
	// acknowledges the latest it heard, which is what the lease is
	// trusted from.
	a.publish(present)
}

func (a *Agent) publish(holding bool) {
	a.mu.Lock()
	epoch, st := a.lease.Epoch, a.local
	a.seq++
	seq := a.seq
	a.sent[seq] = a.now()
	delete(a.sent, seq-sentKept)
	a.mu.Unlock()
	a.g.publishAgent(AgentMsg{Cluster: a.cfg.Cluster.Spec.Name, Server: a.cfg.Server, Holding: holding, Epoch: epoch,
		ReadOnly: st.Reachable && (st.ReadOnly || st.SuperReadOnly), LocalDown: !st.Reachable && !st.Answered, Seq: seq})
}

// fence sets read_only on the local server: its lease lapsed and it cannot
// show that it still leads its replicas, so another primary may exist.
func (a *Agent) fence(ctx context.Context, st *topology.ServerState, why string) {
	fctx, cancel := context.WithTimeout(ctx, agentFenceBound)
	defer cancel()
	q, err := a.dialer.Dial(fctx, a.cfg.Server)
	if err != nil {
		a.log.Error("cannot fence the local server", "server", a.cfg.Server, "why", why, "err", err)
		return
	}
	defer q.Close()
	for _, stmt := range st.Dialect.SetReadOnly(true) {
		if err = q.Exec(fctx, stmt); err != nil {
			break
		}
	}
	if err == nil {
		st.ReadOnly = true
	}
	a.log.Warn("fenced the local server (read_only=1)", "server", a.cfg.Server, "why", why, "err", err)
}

// agentStatus is the health endpoints' JSON body.
type agentStatus struct {
	Server        string `json:"server"`
	Role          string `json:"role"`
	Reachable     bool   `json:"reachable"`
	ReadOnly      bool   `json:"read_only"`
	LagSeconds    *int64 `json:"lag_seconds"`
	GTIDPosition  string `json:"gtid_position"`
	Epoch         int64  `json:"epoch"`
	AgreedPrimary string `json:"agreed_primary"`
	LeaseFresh    bool   `json:"lease_fresh"`
	Failsafe      bool   `json:"failsafe"`
	VIPHeld       bool   `json:"vip_held"`
	Source        string `json:"source,omitempty"`
	Error         string `json:"error,omitempty"`
	IORunning     bool   `json:"io_running"`
	SQLRunning    bool   `json:"sql_running"`
	// Followers are the servers counted as following this one in the
	// last round (the failsafe's evidence; empty on a replica).
	Followers []string `json:"followers"`
	// Maintenance is why an operator put this server in maintenance, as
	// the latest lease said; /replica answers 503 while it is set.
	Maintenance string `json:"maintenance,omitempty"`
}

func (a *Agent) status() agentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.local
	s := agentStatus{Server: a.cfg.Server, Reachable: st.Reachable, ReadOnly: st.ReadOnly || st.SuperReadOnly, Epoch: a.lease.Epoch,
		AgreedPrimary: a.lease.Primary, LeaseFresh: a.leaseOK, Failsafe: a.failsafe, VIPHeld: a.holding, Error: st.Error,
		Followers: append([]string{}, a.followers...), Maintenance: a.lease.Maint[a.cfg.Server]}
	if st.Reachable {
		s.GTIDPosition = st.ExecutedPosition().String()
	}
	if c, ok := st.PrimaryConn(); ok {
		s.Source, s.IORunning, s.SQLRunning, s.LagSeconds = c.Source(), c.IORunning(), c.SQLRunning, c.LagSeconds
	}
	switch {
	case !st.Reachable:
		s.Role = "down"
	case a.isPrimaryLocked():
		s.Role = "primary"
	case s.Source != "":
		s.Role = "replica"
	default:
		s.Role = "unknown"
	}
	return s
}

// isPrimaryLocked: the agreed primary (fresh lease, or failsafe) and writable.
func (a *Agent) isPrimaryLocked() bool {
	st := a.local
	writable := st.Reachable && !st.ReadOnly && !st.SuperReadOnly
	return writable && ((a.leaseOK && a.lease.Primary == a.cfg.Server) || a.failsafe)
}

// handler serves Patroni's health-check convention for HAProxy: GET, HEAD
// or OPTIONS; 200 means "send traffic here".
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	answer := func(ok func(s agentStatus, r *http.Request) bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			s := a.status()
			code := http.StatusServiceUnavailable
			if ok(s, r) {
				code = http.StatusOK
			}
			writeJSON(w, code, s)
		}
	}
	replicaOK := func(s agentStatus, r *http.Request) bool {
		if !s.Reachable || !s.IORunning || !s.SQLRunning || !s.ReadOnly || s.Maintenance != "" {
			return false
		}
		if s.AgreedPrimary != "" && s.Source != s.AgreedPrimary {
			return false
		}
		if q := r.URL.Query().Get("lag"); q != "" {
			max, err := strconv.ParseFloat(q, 64)
			if err != nil || s.LagSeconds == nil || float64(*s.LagSeconds) > max {
				return false
			}
		}
		return true
	}
	mux.HandleFunc("/primary", answer(func(s agentStatus, _ *http.Request) bool { return s.Role == "primary" }))
	mux.HandleFunc("/master", answer(func(s agentStatus, _ *http.Request) bool { return s.Role == "primary" }))
	mux.HandleFunc("/replica", answer(replicaOK))
	mux.HandleFunc("/read-only", answer(func(s agentStatus, r *http.Request) bool { return s.Role == "primary" || replicaOK(s, r) }))
	mux.HandleFunc("/health", answer(func(s agentStatus, _ *http.Request) bool { return s.Reachable }))
	mux.HandleFunc("/readiness", answer(func(s agentStatus, _ *http.Request) bool { return s.Reachable }))
	mux.HandleFunc("/liveness", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"agent": "alive"})
	})
	return mux
}
