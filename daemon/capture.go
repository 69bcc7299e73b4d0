package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/capture"
	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// CaptureConfig turns a cluster's capture on (capture.enabled): this
// monitor streams the agreed primary's binlog to Dir, acknowledges
// semi-sync after fsync, and serves what it holds on Port for replays.
type CaptureConfig struct {
	Dir      string
	Port     int
	ServerID uint32
	SemiSync bool
	Store    capture.StoreOptions
	// Endpoints are every monitor's capture server (host:port), this
	// one's included: the leader asks each for its position at a failover.
	Endpoints map[string]string
	// CertFile and KeyFile (capture.cert_file/key_file, this monitor's)
	// make the capture server offer TLS; with a verified tls.mode they are
	// mandatory and plain-text clients are refused.
	CertFile, KeyFile string
}

// CaptureClientTLS is a cluster's TLS for the capture's client side (the
// dump from the primary, position queries to capture servers): the same
// builder and verification as every other connection to the servers, with
// plain text allowed only where tls.mode preferred allows it.
func CaptureClientTLS(t topology.TLSSpec) capture.ClientTLS {
	return capture.ClientTLS{Config: t.ClientConfig, Optional: t.Mode == topology.TLSPreferred, Guard: topology.GuardLogin}
}

func (cm *clusterMon) captureClientTLS() capture.ClientTLS { return CaptureClientTLS(cm.cfg.Spec.TLS) }

// captureRunner is one cluster's capture on this monitor.
type captureRunner struct {
	cm   *clusterMon
	cap  *capture.Capture
	addr string // this monitor's capture endpoint
}

// startCapture opens the capture store and starts streaming and serving.
// A capture that cannot start is logged and reported; the cluster is still
// monitored.
func (cm *clusterMon) startCapture(ctx context.Context) {
	cc := cm.cfg.Capture
	if cc == nil {
		return
	}
	name := cm.cfg.Spec.Name
	log := cm.d.log.With("cluster", name)
	c, err := capture.New(capture.Config{Cluster: name, Dir: cc.Dir, Store: cc.Store,
		Dump: capture.DumpOptions{User: cm.cfg.Repl.User, Password: cm.cfg.Repl.Password, ServerID: cc.ServerID, SemiSync: cc.SemiSync,
			Heartbeat: time.Second, ConnectTimeout: cm.cfg.Spec.ConnectTimeout, TLS: cm.captureClientTLS()},
		StartPosition: cm.primaryBinlogPos,
		// The stream breaking is the earliest sign the primary may be gone:
		// probe it now rather than at the next tick.
		OnBreak: func(addr string, err error) {
			cm.mu.Lock()
			current := cm.primary == addr
			cm.mu.Unlock()
			if current {
				log.Info("capture: the stream from the primary broke; probing it now", "primary", addr, "err", err)
				cm.poke()
			}
		}}, log)
	if err != nil {
		log.Error("capture: cannot open the store; this monitor does not capture", "dir", cc.Dir, "err", err)
		cm.mu.Lock()
		cm.captureErr = err.Error()
		cm.mu.Unlock()
		return
	}
	r := &captureRunner{cm: cm, cap: c, addr: hostPort(cm.d.self.Address, cc.Port)}
	cm.capt = r
	servers := map[string]bool{}
	for _, s := range cm.cfg.Spec.Servers {
		if h, _, err := net.SplitHostPort(s.Address); err == nil {
			for _, ip := range resolve(ctx, h) {
				servers[ip] = true
			}
		}
	}
	so := capture.ServerOptions{ServerID: cc.ServerID, User: cm.cfg.Repl.User, Password: cm.cfg.Repl.Password,
		// Events go only to the cluster's servers; its position is no
		// secret from anyone holding the replication account (myha
		// check asks from an operator's host).
		AllowDump: func(ip string) bool { return servers[ip] }, AllowQuery: func(string) bool { return true },
		RequireTLS: cm.cfg.Spec.TLS.Mode.Verified()}
	if cc.CertFile != "" {
		so.TLS = capture.ServerTLS(cc.CertFile, cc.KeyFile)
	}
	srv := capture.NewServer(c.Store(), so, log)
	cm.done.Add(2)
	go func() {
		defer cm.done.Done()
		supervise(ctx, log, "capture", time.Second, c.Run)
	}()
	go func() {
		defer cm.done.Done()
		supervise(ctx, log, "capture server", time.Second, func(ctx context.Context) {
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", r.addr)
			if err != nil {
				log.Error("capture server: cannot listen; replays from this monitor are not possible", "addr", r.addr, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
				return
			}
			if err := srv.Serve(ctx, ln); err != nil {
				log.Warn("capture server stopped", "err", err)
			}
		})
	}()
}

func resolve(ctx context.Context, host string) []string {
	if ip := net.ParseIP(host); ip != nil {
		return []string{ip.String()}
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(rctx, host)
	if err != nil {
		return nil
	}
	return ips
}

// primaryBinlogPos reads where a fresh capture starts: the primary's
// current gtid_binlog_pos.
func (cm *clusterMon) primaryBinlogPos(ctx context.Context, addr string) (binlog.MariaDBPos, error) {
	q, err := cm.dialer.Dial(ctx, addr)
	if err != nil {
		return binlog.MariaDBPos{}, err
	}
	defer q.Close()
	rows, err := q.Query(ctx, "SELECT @@GLOBAL.gtid_binlog_pos AS pos")
	if err != nil {
		return binlog.MariaDBPos{}, err
	}
	if len(rows) != 1 {
		return binlog.MariaDBPos{}, fmt.Errorf("gtid_binlog_pos: %d rows", len(rows))
	}
	return binlog.ParseMariaDBPos(rows[0]["pos"])
}

// followPrimary points the capture at the agreed primary (the one raft
// recorded), or, before any agreement, at the primary discovery found.
func (cm *clusterMon) followPrimary(snap *topology.Snapshot) {
	if cm.capt == nil {
		return
	}
	p := cm.d.fsm.view(cm.cfg.Spec.Name).Primary[cm.cfg.Spec.Name]
	if p == "" {
		p = snap.Primary
	}
	if p != "" {
		cm.capt.cap.SetPrimary(p)
	}
}

// CaptureView is a capture's state in the cluster status.
type CaptureView struct {
	capture.Status
	Monitor  string `json:"monitor"`
	Endpoint string `json:"endpoint"`
	// LagTransactions is how many transactions the primary has (at this
	// monitor's last probe) that the capture does not, per GTID position.
	LagTransactions *int64 `json:"lag_transactions,omitempty"`
	// LagSeconds is the time since the capture last heard from the primary.
	LagSeconds *float64 `json:"seconds_since_last_event,omitempty"`
}

// captureView is this monitor's capture as the API shows it.
func (cm *clusterMon) captureView(snap *topology.Snapshot) *CaptureView {
	if cm.cfg.Capture == nil {
		return nil
	}
	v := &CaptureView{Monitor: cm.d.self.Name}
	if cm.capt == nil {
		cm.mu.Lock()
		v.LastError = "capture not running: " + cm.captureErr
		cm.mu.Unlock()
		return v
	}
	v.Status, v.Endpoint = cm.capt.cap.Status(), cm.capt.addr
	if p, ok := snap.Server(v.Primary); ok && p.Reachable {
		have, err1 := binlog.ParsePosition(binlog.MariaDB, v.Position)
		prim := p.ExecutedPosition()
		if err1 == nil && prim.Flavor == binlog.MariaDB {
			n := have.Missing(prim)
			v.LagTransactions = &n
		}
	}
	if !v.LastEvent.IsZero() {
		s := cm.d.now().Sub(v.LastEvent).Seconds()
		v.LagSeconds = &s
	}
	return v
}

// capturePositions asks every monitor's capture what it holds (this one's
// directly), in parallel and bounded: the planner's input for replay.
func (cm *clusterMon) capturePositions(ctx context.Context) []failover.CaptureHold {
	cc := cm.cfg.Capture
	if cc == nil {
		return nil
	}
	out := make([]failover.CaptureHold, 0, len(cc.Endpoints))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for mon, ep := range cc.Endpoints {
		if mon == cm.d.self.Name && cm.capt != nil {
			out = append(out, failover.CaptureHold{Monitor: mon, Source: ep, Position: cm.capt.cap.Store().Position().String()})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := failover.CaptureHold{Monitor: mon, Source: ep}
			pos, err := capture.QueryPosition(ctx, ep, cm.cfg.Repl.User, cm.cfg.Repl.Password, cm.captureClientTLS(), 500*time.Millisecond)
			if err != nil {
				h.Error = err.Error()
			} else {
				h.Position = pos.String()
			}
			mu.Lock()
			out = append(out, h)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// captureCollector exports every capture on this monitor at scrape time.
type captureCollector struct{ d *Daemon }

var (
	capConnected = prometheus.NewDesc("myha_capture_connected", "1 while the capture streams from the primary.", []string{"cluster"}, nil)
	capSemi      = prometheus.NewDesc("myha_capture_semi_sync", "1 while the primary asks this capture for semi-sync ACKs.", []string{"cluster"}, nil)
	capAcks      = prometheus.NewDesc("myha_capture_acks_total", "Semi-sync ACKs sent (each after fsync).", []string{"cluster"}, nil)
	capTxns      = prometheus.NewDesc("myha_capture_transactions_total", "Transactions captured.", []string{"cluster"}, nil)
	capGaps      = prometheus.NewDesc("myha_capture_gaps_total", "Restarts from the primary's current position (what lay between is not captured).", []string{"cluster"}, nil)
	capBytes     = prometheus.NewDesc("myha_capture_bytes", "Bytes held on disk.", []string{"cluster"}, nil)
	capSeq       = prometheus.NewDesc("myha_capture_position_seq", "Captured GTID seq_no per domain.", []string{"cluster", "domain"}, nil)
	capLag       = prometheus.NewDesc("myha_capture_lag_transactions", "Transactions the primary has that the capture lacks (at the last probe).", []string{"cluster"}, nil)
	capSilent    = prometheus.NewDesc("myha_capture_seconds_since_last_event", "Seconds since the capture last heard from the primary.", []string{"cluster"}, nil)
)

func (c captureCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{capConnected, capSemi, capAcks, capTxns, capGaps, capBytes, capSeq, capLag, capSilent} {
		ch <- d
	}
}

func (c captureCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cm := range c.d.monitors() {
		cm.mu.Lock()
		snap := cm.snap
		cm.mu.Unlock()
		v := cm.captureView(&snap)
		if v == nil || cm.capt == nil {
			continue
		}
		n := v.Cluster
		b := func(x bool) float64 {
			if x {
				return 1
			}
			return 0
		}
		ch <- prometheus.MustNewConstMetric(capConnected, prometheus.GaugeValue, b(v.Connected), n)
		ch <- prometheus.MustNewConstMetric(capSemi, prometheus.GaugeValue, b(v.SemiSync), n)
		ch <- prometheus.MustNewConstMetric(capAcks, prometheus.CounterValue, float64(v.Acks), n)
		ch <- prometheus.MustNewConstMetric(capTxns, prometheus.CounterValue, float64(v.Transactions), n)
		ch <- prometheus.MustNewConstMetric(capGaps, prometheus.CounterValue, float64(v.Gaps), n)
		ch <- prometheus.MustNewConstMetric(capBytes, prometheus.GaugeValue, float64(v.Bytes), n)
		if p, err := binlog.ParseMariaDBPos(v.Position); err == nil {
			for _, g := range p.GTIDs() {
				ch <- prometheus.MustNewConstMetric(capSeq, prometheus.GaugeValue, float64(g.Seq), n, strconv.FormatUint(uint64(g.Domain), 10))
			}
		}
		if v.LagTransactions != nil {
			ch <- prometheus.MustNewConstMetric(capLag, prometheus.GaugeValue, float64(*v.LagTransactions), n)
		}
		if v.LagSeconds != nil {
			ch <- prometheus.MustNewConstMetric(capSilent, prometheus.GaugeValue, *v.LagSeconds, n)
		}
	}
}

// monitors lists the cluster monitors running now.
func (d *Daemon) monitors() []*clusterMon {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]*clusterMon, 0, len(d.clusters))
	for _, cm := range d.clusters {
		out = append(out, cm)
	}
	return out
}
