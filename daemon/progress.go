package daemon

import (
	"strconv"
	"time"

	"github.com/myha/myha/topology"
)

// progress remembers when each replica last received something from its
// source (a new event or a heartbeat), to tell a replica whose IO thread
// still says "Yes" but hears nothing (the primary's network is cut) from
// one that replicates. It is the faster signal: the IO thread itself only
// gives up after slave_net_timeout.
type progress struct {
	last map[string]replicaMark
}

type replicaMark struct {
	key     string
	changed time.Time
	// seen is when the agent's last round that read key began (the agent
	// counts silence from there; the monitors do not use it).
	seen time.Time
}

func newProgress() *progress { return &progress{last: map[string]replicaMark{}} }

// observe records a snapshot taken at now and returns, per replica address,
// how long it has been silent.
func (p *progress) observe(s *topology.Snapshot, now time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, v := range s.Servers {
		c, ok := v.PrimaryConn()
		if !ok || !v.Reachable {
			continue
		}
		key := replicationKey(c)
		m, seen := p.last[v.Spec.Address]
		if !seen || m.key != key {
			// When this server was read, not when the whole discovery ended
			// (which waits on the slowest, e.g. a cut primary's timeout).
			at := now
			if !s.TakenAt.IsZero() {
				at = s.TakenAt.Add(v.ProbeRTT)
			}
			m = replicaMark{key: key, changed: at}
			p.last[v.Spec.Address] = m
		}
		out[v.Spec.Address] = now.Sub(m.changed)
	}
	return out
}

// replicationKey changes whenever a replica receives something from its
// source: an event (positions move) or a heartbeat (the counter moves).
func replicationKey(c *topology.ReplicaConn) string {
	return c.GTIDIOPos.String() + "|" + c.RetrievedSet.String() + "|" + c.ReadCoord.String() + "|" + strconv.FormatInt(c.Heartbeats, 10)
}
