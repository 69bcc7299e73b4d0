package daemon

import (
	"net/http"
)

// healthLive answers GET /health/live: the process is up and serving
// HTTP. A supervisor restarts a monitor only when this fails.
func (d *Daemon) healthLive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "live", "monitor": d.self.Name})
}

// healthReady answers GET /health/ready: 200 when this monitor has loaded
// its clusters, joined gossip (sees another monitor, when more than one is
// configured) and raft has a leader; 503 with every reason otherwise. A
// load balancer in front of the API sends requests only to ready monitors.
func (d *Daemon) healthReady(w http.ResponseWriter, r *http.Request) {
	reasons := d.notReady()
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "monitor": d.self.Name, "reasons": reasons})
		return
	}
	leader, _ := d.leaderAPI()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "monitor": d.self.Name, "leader": leader, "reasons": []string{}})
}

// notReady lists why this monitor is not ready, empty when it is.
func (d *Daemon) notReady() []string {
	reasons := []string{}
	if !d.loaded.Load() {
		reasons = append(reasons, "the configuration's clusters are not loaded yet")
	}
	if g := d.gossip(); g == nil {
		reasons = append(reasons, "gossip has not started")
	} else if n := g.members(); len(d.cfg.Monitors) > 1 && n < 2 {
		reasons = append(reasons, "gossip: not joined to any other monitor yet (check gossip_port reachability and security.gossip_key_file)")
	}
	if d.raft() == nil {
		reasons = append(reasons, "raft has not started")
	} else if name, _ := d.leaderAPI(); name == "" {
		reasons = append(reasons, "raft has no leader: fewer than a majority of the monitors reach each other")
	}
	return reasons
}
