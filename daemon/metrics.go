package daemon

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the daemon's Prometheus series, on a registry of its own (no
// package-level state).
type metrics struct {
	reg       *prometheus.Registry
	probe     *prometheus.HistogramVec
	up        *prometheus.GaugeVec
	lag       *prometheus.GaugeVec
	failovers *prometheus.CounterVec
	detection *prometheus.HistogramVec
	members   prometheus.Gauge
	leader    prometheus.Gauge
	// state is one-hot per cluster: 1 for the primary's current state as
	// this monitor judges it, 0 for the others (alert on state!="healthy").
	state *prometheus.GaugeVec
	// writable counts the servers this monitor saw accept writes
	// (read_only off) at its last probe: the two-writers alert.
	writable *prometheus.GaugeVec
	// paused is 1 while an operator's pause stops automatic actions;
	// maintenance is 1 for a server an operator put in maintenance.
	paused      *prometheus.GaugeVec
	maintenance *prometheus.GaugeVec
}

// allStates lists every State, so the one-hot series exist from the start.
var allStates = []State{StateHealthy, StateSuspect, StateNoQuorum, StateUnreachable, StateAllDown,
	StateNoServerMajority, StateNoPrimary, StateDead}

func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		probe: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "myha_probe_seconds", Help: "Time to read one server's state.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"cluster"}),
		up:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "myha_server_up", Help: "1 if this monitor reached the server at its last probe."}, []string{"cluster", "server"}),
		lag:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "myha_replication_lag_seconds", Help: "Seconds_Behind_Master of a replica."}, []string{"cluster", "server"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "myha_failovers_total", Help: "Failovers run by this monitor, by result."}, []string{"cluster", "result"}),
		detection: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "myha_detection_seconds", Help: "From the first failed probe of a primary to the dead verdict.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10)}, []string{"cluster"}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "myha_gossip_members", Help: "Members of the monitors' gossip."}),
		leader:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "myha_raft_leader", Help: "1 on the raft leader."}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "myha_primary_state",
			Help: "1 for the primary's state as this monitor judges it (healthy, suspect, dead_primary, ...), 0 for the other states."}, []string{"cluster", "state"}),
		writable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "myha_writable_servers",
			Help: "Servers with read_only off at this monitor's last probe: 1 in service, 0 no writes, 2 or more two writers."}, []string{"cluster"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "myha_cluster_paused",
			Help: "1 while an operator's pause (myha pause) stops the cluster's automatic failover, fencing and corrections."}, []string{"cluster"}),
		maintenance: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "myha_server_maintenance",
			Help: "1 for a server in maintenance (myha maintenance): never promoted, out of replica routing and alerts."}, []string{"cluster", "server"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "myha_build_info", Help: "1, labelled with the running myha's version and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()}})
	build.Set(1)
	m.reg.MustRegister(m.probe, m.up, m.lag, m.failovers, m.detection, m.members, m.leader, m.state, m.writable, m.paused, m.maintenance, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeCluster records a cluster's verdict and writers after a probe.
func (m *metrics) observeCluster(cluster string, st State, writable int) {
	for _, s := range allStates {
		v := 0.0
		if s == st {
			v = 1
		}
		m.state.WithLabelValues(cluster, string(s)).Set(v)
	}
	m.writable.WithLabelValues(cluster).Set(float64(writable))
}
