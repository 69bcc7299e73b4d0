package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Observation is what one monitor saw of one server at one moment, on its
// own clock.
type Observation struct {
	Cluster    string    `json:"c"`
	Server     string    `json:"s"`
	Reachable  bool      `json:"r"`
	DownForMS  int64     `json:"d,omitempty"`
	ObservedAt time.Time `json:"t"`
}

// gossipMsg is one member's message: a monitor's observations of every
// server, the leader's VIP lease, or an agent's status.
type gossipMsg struct {
	Monitor string        `json:"m"`
	SentAt  time.Time     `json:"at"`
	Kind    string        `json:"k,omitempty"` // "" observations, "lease", "agent"
	Obs     []Observation `json:"o,omitempty"`
	Lease   *LeaseMsg     `json:"l,omitempty"`
	Agent   *AgentMsg     `json:"a,omitempty"`
}

// LeaseMsg lets the agent of Primary hold the cluster's VIP. The agent may
// act only WaitMS after receiving it (the previous holder's lease may still
// run), and trusts it for two thirds of LeaseMS after receipt, while the
// leader counts the full LeaseMS from sending: transit delays can never
// make two holders overlap.
//
// Leader and Term identify the raft leader that granted it: receivers drop
// a lease from a member that is not a configured monitor, one whose Leader
// is not its sender, and one from an older term or epoch than a lease they
// already accepted (a deposed leader that has not noticed yet).
type LeaseMsg struct {
	Cluster string `json:"c"`
	Primary string `json:"p"`
	Epoch   int64  `json:"e"`
	LeaseMS int64  `json:"d"`
	WaitMS  int64  `json:"w"`
	Leader  string `json:"ld,omitempty"`
	Term    uint64 `json:"tm,omitempty"`
	// Ack is the Seq of the holder agent's latest report the leader had
	// heard before it confirmed its leadership and sent this lease: the
	// agent trusts the lease from when it sent that report, so delays
	// and pauses only ever shorten its trust.
	Ack uint64 `json:"ak,omitempty"`
	// Maint lists the cluster's servers in maintenance (address → reason,
	// shortened): their agents take them out of /replica.
	Maint map[string]string `json:"mt,omitempty"`
}

// leaseAcceptable decides whether a lease sent by sender may replace the
// last accepted one (known, if haveKnown). monitors are the configured
// monitor names.
func leaseAcceptable(monitors map[string]bool, sender string, l LeaseMsg, known LeaseMsg, haveKnown bool) (bool, string) {
	switch {
	case !monitors[sender]:
		return false, "sender is not a configured monitor"
	case l.Leader != sender:
		return false, "lease names another leader than its sender"
	case l.Term == 0:
		return false, "lease carries no raft term"
	case !haveKnown:
		return true, ""
	case l.Term < known.Term:
		return false, fmt.Sprintf("older raft term %d than the current leader's %d", l.Term, known.Term)
	case l.Term == known.Term && l.Leader != known.Leader:
		return false, "a second leader in the same term"
	case l.Epoch < known.Epoch:
		return false, fmt.Sprintf("older epoch %d than the accepted %d", l.Epoch, known.Epoch)
	}
	return true, ""
}

// AgentMsg is an agent's report of whether it holds the VIP, and of its
// local server: read-only, or not answering at all on its own host.
type AgentMsg struct {
	Cluster   string `json:"c"`
	Server    string `json:"s"`
	Holding   bool   `json:"h"`
	Epoch     int64  `json:"e"`
	ReadOnly  bool   `json:"ro,omitempty"`
	LocalDown bool   `json:"down,omitempty"`
	// Seq numbers the agent's reports; a lease acknowledges the latest
	// its leader heard (LeaseMsg.Ack).
	Seq uint64 `json:"q,omitempty"`
}

// sameAgentReport: the same report but for its number.
func sameAgentReport(a, b AgentMsg) bool {
	a.Seq, b.Seq = 0, 0
	return a == b
}

type leaseState struct {
	msg      LeaseMsg
	received time.Time
}

type agentState struct {
	msg      AgentMsg
	received time.Time
}

// peerState is the latest message from a peer and when it arrived (on our
// clock). Ages are (sent − observed) on the peer's clock plus (now −
// received) on ours: no two clocks are ever compared.
type peerState struct {
	msg      gossipMsg
	received time.Time
}

// peerClusterObs is a peer's latest observations of one cluster: each
// cluster's entry is replaced only by a newer message about that cluster,
// so a peer's messages about other clusters never hide it.
type peerClusterObs struct {
	sentAt   time.Time // the message's SentAt, on the peer's clock
	received time.Time // on our clock
	obs      []Observation
}

// gossip wraps memberlist: membership, and a delegate that keeps the peers'
// latest observations.
type gossip struct {
	ml    *memberlist.Memberlist
	self  string
	mu    sync.Mutex
	peers map[string]peerState // latest message of each peer (its Obs dropped)
	// obs is every peer's latest observations, per cluster (monitor →
	// cluster); obsN counts the entries.
	obs  map[string]map[string]peerClusterObs
	obsN int
	// latest is our own latest observations per cluster, for push/pull.
	latest   map[string][]Observation
	now      func() time.Time
	inflight sync.Map // peer name → struct{}: a reliable send under way
	role     string
	monitors map[string]bool       // configured monitor names: the only lease senders
	leases   map[string]leaseState // cluster → latest accepted lease
	rejected int                   // leases dropped by leaseAcceptable
	agents   map[string]agentState // server → latest agent status
	onAgent  func(AgentMsg)

	// Outgoing messages wait here for the sender goroutine, so a publish
	// never blocks its caller (the probe loop) on a slow or stuck
	// transport; when the queue is full the oldest message is dropped
	// (a newer one supersedes it).
	outMu sync.Mutex
	out   [][]byte
	// pending holds each cluster's observations not yet sent (the newest
	// replaces an unsent older one), in order of arrival; urgent is set
	// when one reports a server unreachable.
	pending      map[string][]Observation
	pendingOrder []string
	urgent       bool
	urgentWake   chan struct{}
	wake         chan struct{}
	stopped      chan struct{}
	sender       chan struct{} // closed when the sender goroutine exits
	dropped      int
	stopOne      sync.Once
	// sentBytes counts what sendAll handed to memberlist, per peer.
	sentBytes atomic.Int64

	allow   atomic.Pointer[GossipAllow]
	filter  *filterTransport
	log     *slog.Logger
	refused int       // messages refused since the last log line
	lastRej time.Time // when that line was written
}

// sendQueueLen bounds the outgoing queue: observations, leases and agent
// reports are sent every probe, so a stuck transport drops the oldest.
const sendQueueLen = 16

// GossipAllow is who may say what over gossip: observations and leases
// only from configured monitor names, agent reports only about configured
// servers, and only about configured clusters. It also bounds every map
// keyed by network input to the configuration's size.
type GossipAllow struct {
	Monitors map[string]string          // monitor name → configured host
	Servers  map[string]map[string]bool // cluster → server addresses
}

// Bounds on what one forged or buggy message can make us keep.
const (
	// maxClockSkew is how far ahead of our clock a sender's timestamp may
	// be, and how far an observation may postdate its message.
	maxClockSkew = 2 * time.Second
	// maxGossipEntries caps each gossip map when no allowlist is given.
	maxGossipEntries = 256
	// maxObsPerMsg caps the observations one message may carry (a
	// push/pull state carries every server's).
	maxObsPerMsg = 1 << 16
	// staleSender lets a sender whose clock stepped back be heard again.
	staleSender = 5 * time.Second
)

// GossipConfig are memberlist settings as plain values.
type GossipConfig struct {
	Name, BindAddr string
	Port           int
	Key            []byte
	Label          string
	// Transport replaces the network (memberlist's MockNetwork in tests).
	Transport memberlist.Transport
	LogOutput io.Writer
	Role      string         // monitor or agent
	OnAgent   func(AgentMsg) // called (without locks held) when an agent reports
	// Monitors are the configured monitors' names: leases from anyone
	// else are dropped.
	Monitors []string
	// Allow restricts senders and keys (nil: anything, bounded in size;
	// only tests and fuzzing leave it nil).
	Allow *GossipAllow
	Log   *slog.Logger
}

func startGossip(c GossipConfig, now func() time.Time) (*gossip, error) {
	g := &gossip{self: c.Name, peers: map[string]peerState{}, obs: map[string]map[string]peerClusterObs{}, latest: map[string][]Observation{},
		pending: map[string][]Observation{}, urgentWake: make(chan struct{}, 1), now: now, role: c.Role,
		leases: map[string]leaseState{}, agents: map[string]agentState{}, onAgent: c.OnAgent, log: c.Log,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), sender: make(chan struct{}), monitors: map[string]bool{}}
	for _, m := range c.Monitors {
		g.monitors[m] = true
	}
	g.allow.Store(c.Allow)
	if g.role == "" {
		g.role = "monitor"
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr, mc.BindPort = c.BindAddr, c.Port
	mc.AdvertiseAddr, mc.AdvertisePort = c.BindAddr, c.Port
	// Faster than the LAN defaults: monitors are few and close.
	mc.ProbeInterval, mc.ProbeTimeout, mc.GossipInterval = 500*time.Millisecond, 250*time.Millisecond, 100*time.Millisecond
	mc.SuspicionMult = 3
	mc.TCPTimeout = 2 * time.Second
	mc.Delegate = g
	if c.Allow != nil {
		mc.Alive, mc.Merge = g, g
	}
	mc.Label = c.Label
	if len(c.Key) > 0 {
		mc.SecretKey = c.Key
	}
	mc.LogOutput, mc.Logger = nil, log.New(libOutput(c.LogOutput, c.Log, "memberlist"), "", 0)
	if c.Transport != nil {
		mc.Transport = c.Transport
	} else if c.Allow != nil {
		// Packets and connections from hosts that are neither monitors nor
		// database hosts are dropped before memberlist decrypts them.
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{c.BindAddr}, BindPort: c.Port, Logger: mc.Logger})
		if err != nil {
			return nil, fmt.Errorf("gossip on %s:%d: %w", c.BindAddr, c.Port, err)
		}
		g.filter = newFilterTransport(nt, c.Allow.hosts(), g.reject)
		mc.Transport = g.filter
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s:%d: %w", c.BindAddr, c.Port, err)
	}
	g.ml = ml
	go g.sendLoop()
	return g, nil
}

// enqueue hands a message to the sender without ever blocking.
func (g *gossip) enqueue(b []byte) {
	g.outMu.Lock()
	if len(g.out) >= sendQueueLen {
		g.out = g.out[1:]
		g.dropped++
	}
	g.out = append(g.out, b)
	g.outMu.Unlock()
	for _, ch := range []chan struct{}{g.wake, g.urgentWake} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// coalesceDelay is how long routine observations wait so one packet
// carries several clusters' (probes of many clusters are spread across the
// interval); observations of an unreachable server, leases and agent
// reports go at once.
const coalesceDelay = 20 * time.Millisecond

// maxPacket is the size under which a message goes over UDP (best effort);
// batches of observations are packed under it.
const maxPacket = 1000

// sendLoop sends queued messages until the gossip stops. A send that never
// returns (memberlist's mock transport blocks on a peer that has shut
// down) only stalls this goroutine, never the prober or shutdown.
func (g *gossip) sendLoop() {
	defer close(g.sender)
	for {
		select {
		case <-g.stopped:
			return
		case <-g.wake:
		}
		if !g.hasUrgent() {
			select {
			case <-g.stopped:
				return
			case <-g.urgentWake:
			case <-time.After(coalesceDelay):
			}
		}
		for {
			b := g.next()
			if b == nil {
				break
			}
			select {
			case <-g.stopped:
				return
			default:
			}
			g.sendAll(b)
		}
	}
}

func (g *gossip) hasUrgent() bool {
	g.outMu.Lock()
	defer g.outMu.Unlock()
	return g.urgent || len(g.out) > 0
}

// next is the next message to send: a queued lease or agent report, else
// the pending observations of as many clusters as fit in one packet (a
// cluster's observations are never split), else nil.
func (g *gossip) next() []byte {
	g.outMu.Lock()
	defer g.outMu.Unlock()
	if len(g.out) > 0 {
		b := g.out[0]
		g.out = g.out[1:]
		return b
	}
	if len(g.pendingOrder) == 0 {
		g.urgent = false
		return nil
	}
	self, _ := json.Marshal(g.self)
	at, _ := json.Marshal(g.now())
	buf := append(append(append(append([]byte(`{"m":`), self...), `,"at":`...), at...), `,"o":[`...)
	head, n := len(buf), 0
	for n < len(g.pendingOrder) {
		c := g.pendingOrder[n]
		mark := len(buf)
		for _, o := range g.pending[c] {
			if len(buf) > head {
				buf = append(buf, ',')
			}
			ob, _ := json.Marshal(o)
			buf = append(buf, ob...)
		}
		if len(buf)+2 > maxPacket && mark > head {
			buf = buf[:mark] // this cluster goes in the next packet
			break
		}
		delete(g.pending, c)
		n++
	}
	g.pendingOrder = g.pendingOrder[n:]
	return append(buf, "]}"...)
}

// droppedMessages is how many queued messages were dropped for newer ones.
func (g *gossip) droppedMessages() int {
	g.outMu.Lock()
	defer g.outMu.Unlock()
	return g.dropped
}

// join contacts the other monitors; failures are retried by the caller's loop.
func (g *gossip) join(addrs []string) (int, error) { return g.ml.Join(addrs) }

// publish hands one cluster's observations to the sender, and keeps them
// for push/pull. The sender packs several clusters into one packet (see
// next); a newer call for the same cluster replaces an unsent one, so what
// waits is bounded by the number of clusters. It never blocks.
func (g *gossip) publish(obs []Observation) {
	if len(obs) == 0 {
		return
	}
	c := obs[0].Cluster
	g.mu.Lock()
	g.latest[c] = obs
	g.mu.Unlock()
	urgent := false
	for _, o := range obs {
		urgent = urgent || !o.Reachable
	}
	g.outMu.Lock()
	if _, ok := g.pending[c]; !ok {
		g.pendingOrder = append(g.pendingOrder, c)
	}
	g.pending[c] = obs
	g.urgent = g.urgent || urgent
	g.outMu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	if urgent {
		select {
		case g.urgentWake <- struct{}{}:
		default:
		}
	}
}

// publishLease sends the leader's VIP lease to every member.
func (g *gossip) publishLease(l LeaseMsg) {
	b, err := json.Marshal(gossipMsg{Monitor: g.self, SentAt: g.now(), Kind: "lease", Lease: &l})
	if err == nil {
		g.enqueue(b)
	}
}

// publishAgent sends an agent's status to every member.
func (g *gossip) publishAgent(a AgentMsg) {
	b, err := json.Marshal(gossipMsg{Monitor: g.self, SentAt: g.now(), Kind: "agent", Agent: &a})
	if err == nil {
		g.enqueue(b)
	}
}

// lease returns the latest lease for a cluster and when it arrived.
func (g *gossip) lease(cluster string) (LeaseMsg, time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.leases[cluster]
	return l.msg, l.received, ok
}

// agent returns an agent's latest status and when it arrived.
func (g *gossip) agent(server string) (AgentMsg, time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.agents[server]
	return a.msg, a.received, ok
}

func (g *gossip) sendAll(b []byte) {
	for _, m := range g.ml.Members() {
		if m.Name == g.self {
			continue
		}
		g.sentBytes.Add(int64(len(b)))
		if len(b) < 1000 {
			g.ml.SendBestEffort(m, b)
			continue
		}
		if _, busy := g.inflight.LoadOrStore(m.Name, struct{}{}); busy {
			continue
		}
		go func(m *memberlist.Node) {
			defer g.inflight.Delete(m.Name)
			g.ml.SendReliable(m, b)
		}(m)
	}
}

// views returns every peer's observations with their ages now, keyed
// "cluster|server" (tests and fuzzing; the prober asks viewsOf).
func (g *gossip) views() map[string][]PeerObs {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string][]PeerObs{}
	for name, pc := range g.obs {
		for _, e := range pc {
			for _, o := range e.obs {
				k := o.Cluster + "|" + o.Server
				out[k] = append(out[k], PeerObs{Monitor: name, Observation: o, Age: e.sentAt.Sub(o.ObservedAt) + now.Sub(e.received)})
			}
		}
	}
	return out
}

// viewsOf returns the peers' observations of one server with their ages
// now: the work is the peers × that cluster's servers, whatever the number
// of clusters.
func (g *gossip) viewsOf(cluster, server string) []PeerObs {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []PeerObs
	for name, pc := range g.obs {
		e, ok := pc[cluster]
		if !ok {
			continue
		}
		for _, o := range e.obs {
			if o.Server == server {
				out = append(out, PeerObs{Monitor: name, Observation: o, Age: e.sentAt.Sub(o.ObservedAt) + now.Sub(e.received)})
			}
		}
	}
	return out
}

// PeerObs is a peer's observation with its age.
type PeerObs struct {
	Monitor string
	Observation
	Age time.Duration
}

func (g *gossip) members() int {
	if g.ml == nil {
		return 0
	}
	return g.ml.NumMembers()
}

// leave stops the sender, announces the departure and shuts memberlist
// down, each step bounded: a stuck transport never makes a stop hang.
func (g *gossip) leave() {
	g.stopOne.Do(func() { close(g.stopped) })
	select {
	case <-g.sender:
	case <-time.After(time.Second): // stuck in a send: abandoned, it holds nothing
	}
	bounded(3*time.Second, func() { g.ml.Leave(time.Second) })
	bounded(3*time.Second, func() { g.ml.Shutdown() })
}

// bounded runs f and waits for it at most d; it reports whether f finished.
// What f was doing goes on in the background if it did not.
func bounded(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// safeStore is store behind a recover: it runs on memberlist's receive
// goroutines, where a panic would end the process.
func (g *gossip) safeStore(b []byte) {
	defer func() {
		if p := recover(); p != nil && g.log != nil {
			g.log.Error("recovered from a panic handling a gossip message", "panic", fmt.Sprint(p), "bytes", len(b))
		}
	}()
	g.store(b)
}

// reject counts a refused message and logs at most one line per 10 s, so a
// flood of forged messages cannot flood the log either.
func (g *gossip) reject(why string) {
	g.mu.Lock()
	g.refused++
	n, due := g.refused, g.now().Sub(g.lastRej) > 10*time.Second
	if due {
		g.refused, g.lastRej = 0, g.now()
	}
	g.mu.Unlock()
	if due && g.log != nil {
		g.log.Warn("gossip messages refused", "count", n, "last_reason", why)
	}
}

func (a *GossipAllow) monitor(name string) bool {
	if a == nil {
		return true
	}
	_, ok := a.Monitors[name]
	return ok
}

func (a *GossipAllow) server(cluster, server string) bool {
	if a == nil {
		return true
	}
	if server == "" {
		_, ok := a.Servers[cluster]
		return ok
	}
	return a.Servers[cluster][server]
}

// hosts are the addresses gossip may come from: monitors and database hosts.
func (a *GossipAllow) hosts() []string {
	var out []string
	for _, h := range a.Monitors {
		out = append(out, h)
	}
	for _, ss := range a.Servers {
		for s := range ss {
			if h, _, err := net.SplitHostPort(s); err == nil {
				out = append(out, h)
			}
		}
	}
	return out
}

// full reports whether a map keyed by network input may take a new key.
func (g *gossip) full(n int) bool { return g.allow.Load() == nil && n >= maxGossipEntries }

// setAllow replaces the allowlist (after a config reload).
func (g *gossip) setAllow(a *GossipAllow) {
	g.allow.Store(a)
	if a == nil {
		return
	}
	g.prune(a)
	if g.filter != nil {
		g.filter.setHosts(a.hosts())
	}
}

// prune forgets what was kept about clusters and servers a reload removed:
// our own latest observations (push/pull would keep offering them, and
// peers refuse them), the peers' observations, unsent ones, leases and
// agent reports.
func (g *gossip) prune(a *GossipAllow) {
	g.mu.Lock()
	for c := range g.latest {
		if !a.server(c, "") {
			delete(g.latest, c)
		}
	}
	for _, pc := range g.obs {
		for c := range pc {
			if !a.server(c, "") {
				delete(pc, c)
				g.obsN--
			}
		}
	}
	for c := range g.leases {
		if !a.server(c, "") {
			delete(g.leases, c)
		}
	}
	for srv, st := range g.agents {
		if !a.server(st.msg.Cluster, srv) {
			delete(g.agents, srv)
		}
	}
	g.mu.Unlock()
	g.outMu.Lock()
	kept := g.pendingOrder[:0]
	for _, c := range g.pendingOrder {
		if a.server(c, "") {
			kept = append(kept, c)
		} else {
			delete(g.pending, c)
		}
	}
	g.pendingOrder = kept
	g.outMu.Unlock()
}

func (g *gossip) store(b []byte) {
	var m gossipMsg
	if json.Unmarshal(b, &m) != nil || m.Monitor == "" || m.Monitor == g.self {
		g.reject("malformed")
		return
	}
	now, allow := g.now(), g.allow.Load()
	// Timestamps are the sender's; they are never compared with ours,
	// except that one far in our future is refused: it would make a vote
	// that never ages or shut the real sender's next messages out.
	if m.SentAt.After(now.Add(maxClockSkew)) {
		g.reject("timestamp in the future")
		return
	}
	switch m.Kind {
	case "lease":
		if m.Lease == nil || !allow.monitor(m.Monitor) || !allow.server(m.Lease.Cluster, "") || m.Lease.LeaseMS < 0 || m.Lease.WaitMS < 0 || len(m.Lease.Maint) > maxGossipEntries {
			g.reject("lease not from a monitor, or about an unknown cluster")
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		known, have := g.leases[m.Lease.Cluster]
		if ok, _ := leaseAcceptable(g.monitors, m.Monitor, *m.Lease, known.msg, have); !ok {
			g.rejected++
			return
		}
		if have || !g.full(len(g.leases)) {
			g.leases[m.Lease.Cluster] = leaseState{msg: *m.Lease, received: now}
		}
		return
	case "agent":
		if m.Agent == nil || !allow.server(m.Agent.Cluster, m.Agent.Server) || m.Monitor != "agent-"+m.Agent.Server && allow != nil {
			g.reject("agent report about an unknown server")
			return
		}
		g.mu.Lock()
		prev, had := g.agents[m.Agent.Server]
		if had || !g.full(len(g.agents)) {
			g.agents[m.Agent.Server] = agentState{msg: *m.Agent, received: now}
		}
		cb := g.onAgent
		// Agents report every round; only a change is worth waking for.
		if had && sameAgentReport(prev.msg, *m.Agent) {
			cb = nil
		}
		g.mu.Unlock()
		if cb != nil {
			go cb(*m.Agent)
		}
		return
	case "":
	default:
		g.reject("unknown kind")
		return
	}
	if !allow.monitor(m.Monitor) || len(m.Obs) > maxObsPerMsg {
		g.reject("observations not from a configured monitor")
		return
	}
	obs := m.Obs[:0:0]
	for _, o := range m.Obs {
		// An observation made after its message was sent would have a
		// negative age: fresh forever.
		if o.ObservedAt.After(m.SentAt.Add(maxClockSkew)) || o.DownForMS < 0 || !allow.server(o.Cluster, o.Server) {
			continue
		}
		if o.ObservedAt.After(m.SentAt) {
			o.ObservedAt = m.SentAt
		}
		obs = append(obs, o)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.peers[m.Monitor]
	if !ok && g.full(len(g.peers)) {
		return
	}
	if !ok || !old.msg.SentAt.After(m.SentAt) || now.Sub(old.received) >= staleSender {
		m.Obs = nil
		g.peers[m.Monitor] = peerState{msg: m, received: now}
	}
	// Each cluster's observations replace that cluster's entry only, and
	// only with a newer message (a batch sent earlier may arrive later).
	if g.obs == nil {
		g.obs = map[string]map[string]peerClusterObs{}
	}
	pc := g.obs[m.Monitor]
	if pc == nil {
		pc = map[string]peerClusterObs{}
		g.obs[m.Monitor] = pc
	}
	byCluster := map[string][]Observation{}
	for _, o := range obs {
		byCluster[o.Cluster] = append(byCluster[o.Cluster], o)
	}
	for c, group := range byCluster {
		prev, had := pc[c]
		if had && prev.sentAt.After(m.SentAt) && now.Sub(prev.received) < staleSender {
			continue // out of order
		}
		if !had {
			if g.full(g.obsN) {
				continue
			}
			g.obsN++
		}
		pc[c] = peerClusterObs{sentAt: m.SentAt, received: now, obs: group}
	}
}

// NodeMeta implements memberlist.Delegate.
func (g *gossip) NodeMeta(limit int) []byte { return []byte(`{"role":"` + g.role + `"}`) }

// NotifyMsg implements memberlist.Delegate. It must not block and must copy
// the buffer, which memberlist reuses.
func (g *gossip) NotifyMsg(b []byte) { g.safeStore(append([]byte(nil), b...)) }

// GetBroadcasts implements memberlist.Delegate; messages are sent directly.
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate (push/pull).
// It is our latest observations of every cluster in one message.
func (g *gossip) LocalState(join bool) []byte {
	g.mu.Lock()
	var obs []Observation
	for _, o := range g.latest {
		obs = append(obs, o...)
	}
	g.mu.Unlock()
	if len(obs) == 0 {
		return nil
	}
	b, err := json.Marshal(gossipMsg{Monitor: g.self, SentAt: g.now(), Obs: obs})
	if err != nil {
		return nil
	}
	return b
}

// MergeRemoteState implements memberlist.Delegate.
func (g *gossip) MergeRemoteState(buf []byte, join bool) { g.safeStore(append([]byte(nil), buf...)) }

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
