package daemon

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/myha/myha/failover"
)

// agentFresh is how recent an agent's report must be for the page to name
// its server as the VIP holder.
const agentFresh = 5 * time.Second

// webKey is cheap to compute and changes whenever the live payloads may
// have. Urgent: a new verdict, a committed raft entry (decisions, results,
// blocks, acknowledgements, the agreed primary), a leader change, an
// event. Routine: a new probe of a cluster (its snapshot time).
func (d *Daemon) webKey() changeKey {
	var u, r strings.Builder
	if rn := d.raft(); rn != nil {
		_, id := rn.LeaderWithID()
		fmt.Fprintf(&u, "%d|%s|%s;", rn.AppliedIndex(), id, rn.State())
	}
	fmt.Fprintf(&u, "e%d;", d.eventsSeq())
	for _, cm := range d.sortedClusters() {
		cm.mu.Lock()
		fmt.Fprintf(&u, "%s|%s|%s;", cm.cfg.Spec.Name, cm.verdict.State, cm.fenceRefusal)
		fmt.Fprintf(&r, "%d;", cm.snapAt.UnixNano())
		cm.mu.Unlock()
	}
	return changeKey{urgent: u.String(), routine: r.String()}
}

func (d *Daemon) sortedClusters() []*clusterMon {
	d.mu.RLock()
	out := make([]*clusterMon, 0, len(d.clusters))
	for _, cm := range d.clusters {
		out = append(out, cm)
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Spec.Name < out[j].cfg.Spec.Name })
	return out
}

// webEvents are the live payloads: "overview" is the GET /api/clusters
// body plus the monitors and each cluster's VIP holder as agents report
// it; "failovers" is the replicated history and the open decisions (GET
// /api/failovers without the corrections journal); "events" the recent
// state changes this monitor notified as leader.
func (d *Daemon) webEvents() []sseEvent {
	leader := ""
	if d.raft() != nil {
		leader, _ = d.leaderAPI()
	}
	var clusters []map[string]any
	for _, cm := range d.sortedClusters() {
		st := cm.status()
		st["vip"] = d.vipView(cm)
		clusters = append(clusters, st)
	}
	if clusters == nil {
		clusters = []map[string]any{}
	}
	heard := d.gossip().heard()
	now := d.now()
	var mons []map[string]any
	for _, m := range d.cfg.Monitors {
		e := map[string]any{"name": m.Name, "address": m.Address, "api_port": m.APIPort, "self": m.Name == d.self.Name, "leader": m.Name == leader}
		if at, ok := heard[m.Name]; ok {
			e["last_heard_ms"] = now.Sub(at).Milliseconds()
		}
		mons = append(mons, e)
	}
	st := d.fsm.snapshot()
	overview, _ := json.Marshal(map[string]any{"monitor": d.self.Name, "leader": leader, "is_leader": d.isLeader(),
		"insecure": d.cfg.Insecure, "clusters": clusters, "monitors": mons, "at": now})
	fos, _ := json.Marshal(map[string]any{"failovers": nonNilReports(st.History), "in_progress": st.Open})
	// "events": the state changes this monitor emitted as leader (the
	// ones notify.webhook receives), newest last.
	recent := d.recentEventsCopy()
	for i := range recent {
		recent[i].Report = nil // in "failovers" already; kept out to keep the stream small
	}
	evs, _ := json.Marshal(map[string]any{"events": recent})
	return []sseEvent{{"overview", overview}, {"failovers", fos}, {"events", evs}}
}

// vipView names the servers whose agent reported holding the cluster's
// VIP within agentFresh. Without agent reports the holder is unknown.
func (d *Daemon) vipView(cm *clusterMon) map[string]any {
	g := d.gossip()
	holders, agents := []string{}, 0
	for _, s := range cm.cfg.Spec.Servers {
		if g == nil {
			break
		}
		a, at, ok := g.agent(s.Address)
		if !ok || a.Cluster != cm.cfg.Spec.Name || d.now().Sub(at) > agentFresh {
			continue
		}
		agents++
		if a.Holding {
			holders = append(holders, s.Address)
		}
	}
	return map[string]any{"agents": agents, "holders": holders}
}

// heard is when each peer's latest gossip message arrived (our clock).
func (g *gossip) heard() map[string]time.Time {
	out := map[string]time.Time{}
	if g == nil {
		return out
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, p := range g.peers {
		out[name] = p.received
	}
	return out
}

// planPreview is the plan a switchover (or failover) would follow now,
// built by the planner the leader runs, from this monitor's latest
// snapshot: the confirmation the page shows before it asks the leader.
func (cm *clusterMon) planPreview(kind failover.Kind, newPrimary string) (failover.Plan, time.Duration, bool) {
	cm.mu.Lock()
	snap, at := cm.snap, cm.snapAt
	cm.mu.Unlock()
	if at.IsZero() {
		return failover.Plan{}, 0, false
	}
	snap = cm.recalled(snap)
	return failover.Build(&snap, cm.cfg.Policy, failover.Request{Kind: kind, NewPrimary: newPrimary}), cm.d.now().Sub(at), true
}
