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
}

// Agent holds the VIP, keepalived-style, if and only if its local server is
// the agreed primary, writable, and its lease from the monitors' leader is
// fresh. When the lease lapses because no monitor can be heard it keeps a
// writable primary only while it can see every replica replicating from it
// (Patroni's failsafe); otherwise it drops the VIP and fences the server.
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
}

// NewAgent checks the configuration; Run starts the agent.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	a := &Agent{cfg: cfg, log: cfg.Log, now: time.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	spec := cfg.Cluster.Spec
	a.dialer = recoverDialer{inner: topology.SQLDialer{Credentials: spec.Credentials, ConnectTimeout: min(spec.ConnectTimeout, time.Second), ReadTimeout: spec.ReadTimeout}, log: a.log}
	if cfg.VIP != nil {
		v, err := vip.New(*cfg.VIP, a.log)
		if err != nil {
			return nil, err
		}
		a.vip = v
	}
	return a, nil
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
	srv := &http.Server{Addr: hostPort(a.cfg.BindAddr, a.cfg.HTTPPort), Handler: recoverHandler(a.log, a.handler()), ReadHeaderTimeout: 5 * time.Second}
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
	lastJoin := time.Time{}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if g.members() <= len(a.cfg.Monitors) && time.Since(lastJoin) > time.Second && len(addrs) > 0 {
			g.join(addrs)
			lastJoin = time.Now()
		}
		guard(a.log, "agent tick", func() { a.tick(ctx) }, "server", a.cfg.Server)
		select {
		case <-ctx.Done():
			if a.vip != nil {
				if err := a.vip.Release(); err != nil {
					a.log.Error("agent stopping: could not release the VIP", "err", err)
				}
				a.publish(false)
			}
			a.log.Info("agent stopped; VIP released", "server", a.cfg.Server)
			return nil
		case <-t.C:
		}
	}
}

// tick decides whether to hold the VIP now, and makes it so.
func (a *Agent) tick(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st := topology.Probe(pctx, a.dialer, topology.ServerSpec{Address: a.cfg.Server})
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := a.now()
	l, recv, ok := a.g.lease(a.cfg.Cluster.Spec.Name)
	lease := a.cfg.Lease
	if l.LeaseMS > 0 {
		lease = time.Duration(l.LeaseMS) * time.Millisecond
	}
	fresh := ok && now.Sub(recv) < lease*2/3
	named := ok && l.Primary == a.cfg.Server
	writable := st.Reachable && !st.ReadOnly && !st.SuperReadOnly

	hold, failsafe := false, false
	switch {
	case fresh && named:
		hold = writable && !now.Before(recv.Add(time.Duration(l.WaitMS)*time.Millisecond))
	case fresh:
		hold = false
	case named && writable:
		// No word from the monitors: keep serving only while this primary
		// demonstrably still leads its replicas.
		if a.replicasFollowUs(ctx, &st) {
			hold, failsafe = true, true
		} else {
			a.fence(ctx, &st)
		}
	}
	a.mu.Lock()
	a.local, a.lease, a.leaseOK, a.failsafe = st, l, fresh, failsafe
	a.mu.Unlock()
	a.apply(ctx, hold)
}

// apply adds or removes the VIP to match hold, and tells the monitors.
func (a *Agent) apply(ctx context.Context, hold bool) {
	if a.vip == nil {
		return
	}
	present, err := a.vip.Present()
	if err != nil {
		a.log.Error("agent: cannot read the VIP state", "err", err)
		return
	}
	switch {
	case hold && !present:
		if err := a.vip.Acquire(ctx); err != nil {
			a.log.Error("agent: cannot take the VIP", "err", err)
			return
		}
		present = true
		a.log.Warn("VIP taken", "server", a.cfg.Server, "vip", a.cfg.VIP.Address)
	case !hold && present:
		if err := a.vip.Release(); err != nil {
			a.log.Error("agent: cannot release the VIP", "err", err)
			return
		}
		present = false
		a.log.Warn("VIP released", "server", a.cfg.Server, "vip", a.cfg.VIP.Address)
	}
	a.mu.Lock()
	changed := a.holding != present
	a.holding = present
	due := changed || a.now().Sub(a.lastSent) > time.Second
	if due {
		a.lastSent = a.now()
	}
	a.mu.Unlock()
	if due {
		a.publish(present)
	}
}

func (a *Agent) publish(holding bool) {
	a.mu.Lock()
	epoch, st := a.lease.Epoch, a.local
	a.mu.Unlock()
	a.g.publishAgent(AgentMsg{Cluster: a.cfg.Cluster.Spec.Name, Server: a.cfg.Server, Holding: holding, Epoch: epoch,
		ReadOnly: st.Reachable && (st.ReadOnly || st.SuperReadOnly), LocalDown: !st.Reachable && !st.Answered})
}

// replicasFollowUs is the failsafe test, made from this host: this server
// plus the servers replicating from it (reachable, IO thread connected,
// source = this server) must be a strict majority of the cluster's servers.
// Servers follow exactly one source, so at most one side of any partition
// can pass; a primary cut off from its replicas fails and is fenced, while
// losing one replica (or all monitors) does not take writes down.
func (a *Agent) replicasFollowUs(ctx context.Context, local *topology.ServerState) bool {
	following := 1
	total := len(a.cfg.Cluster.Spec.Servers)
	for _, s := range a.cfg.Cluster.Spec.Servers {
		if s.Address == a.cfg.Server {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		st := topology.Probe(pctx, a.dialer, s)
		cancel()
		c, ok := st.PrimaryConn()
		if !st.Reachable || !ok || !c.IORunning() {
			continue
		}
		if c.Source() == a.cfg.Server || (c.SourceServerID != 0 && c.SourceServerID == local.ServerID) {
			following++
		}
	}
	return following*2 > total
}

// fence sets read_only on the local server: its lease lapsed and it cannot
// show that it still leads its replicas, so another primary may exist.
func (a *Agent) fence(ctx context.Context, st *topology.ServerState) {
	q, err := a.dialer.Dial(ctx, a.cfg.Server)
	if err != nil {
		return
	}
	defer q.Close()
	for _, stmt := range st.Dialect.SetReadOnly(true) {
		if err = q.Exec(ctx, stmt); err != nil {
			break
		}
	}
	a.log.Warn("lease lapsed and the replicas do not follow this server: fenced it (read_only=1)", "server", a.cfg.Server, "err", err)
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
}

func (a *Agent) status() agentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.local
	s := agentStatus{Server: a.cfg.Server, Reachable: st.Reachable, ReadOnly: st.ReadOnly || st.SuperReadOnly, Epoch: a.lease.Epoch,
		AgreedPrimary: a.lease.Primary, LeaseFresh: a.leaseOK, Failsafe: a.failsafe, VIPHeld: a.holding, Error: st.Error}
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
		if !s.Reachable || !s.IORunning || !s.SQLRunning || !s.ReadOnly {
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
