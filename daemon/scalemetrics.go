package daemon

import (
	"context"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// scaleMetrics are the series a sizing run reads (test/bench scale): what
// one probe round of a cluster costs, what gossip sends, and how far the
// raft log has grown. None is labelled by cluster, so they stay a few
// lines whatever the number of clusters.
type scaleMetrics struct {
	round *prometheus.HistogramVec
}

func newScaleMetrics(d *Daemon) *scaleMetrics {
	m := &scaleMetrics{round: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "myha_probe_round_seconds",
		Help:    "Time of one probe round of a cluster: discovery of all its servers, the verdict and the leader's work.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 1.5, 24)}, nil)}
	d.met.reg.MustRegister(m.round,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "myha_gossip_sent_bytes_total", Help: "Bytes of myha messages this member handed to gossip, per peer sent to."},
			func() float64 {
				if g := d.gossp.Load(); g != nil {
					return float64(g.sentBytes.Load())
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "myha_raft_last_index", Help: "The last raft log index this monitor holds (its growth is the log's)."},
			func() float64 {
				if r := d.raftp.Load(); r != nil {
					return float64(r.LastIndex())
				}
				return 0
			}))
	return m
}

// probeSlots bound how many probes run at once on a monitor, so a host
// short of CPU queues probes instead of slowing all of them down to their
// timeouts (see clusterMon.probeTurn).
type probeSlots chan struct{}

// probeSlotsPerCPU: a probe mostly waits on the network, so several per
// core keep the cores busy.
const probeSlotsPerCPU = 16

func newProbeSlots() probeSlots { return make(probeSlots, probeSlotsPerCPU*runtime.GOMAXPROCS(0)) }

func (s probeSlots) acquire(ctx context.Context) bool {
	select {
	case s <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s probeSlots) release() { <-s }
