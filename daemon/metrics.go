package daemon

import (
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
}

func newMetrics() *metrics {
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
	}
	m.reg.MustRegister(m.probe, m.up, m.lag, m.failovers, m.detection, m.members, m.leader,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
