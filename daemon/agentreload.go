package daemon

import (
	"bytes"
	"reflect"
)

// Reload hands the agent a new configuration (SIGHUP, like the daemon's
// reload); Run's loop applies it between two rounds, so nothing else sees
// a half-changed agent. A newer configuration replaces one not yet
// applied. The VIP stays where it is: the next round decides as usual.
func (a *Agent) Reload(nc AgentConfig) {
	for {
		select {
		case a.reloads <- nc:
			return
		default:
			select {
			case <-a.reloads:
			default:
			}
		}
	}
}

// applyReload swaps what an agent can change while it runs: its cluster's
// servers, credentials, timeouts and check interval, and the VIP lease.
// What fixes the agent's identity on the network (addresses, ports, gossip
// key and label, the monitors) or the VIP itself (address, interface,
// announcements) needs a restart: those changes are named in a warning and
// not applied. A server moved to another cluster refuses the whole file.
func (a *Agent) applyReload(nc AgentConfig) {
	cur := a.cfg
	if nc.Server != cur.Server || nc.Cluster.Spec.Name != cur.Cluster.Spec.Name {
		a.log.Error("SIGHUP: config refused, keeping the running one: the server now belongs to another cluster; restart the agent",
			"server", cur.Server, "cluster", cur.Cluster.Spec.Name, "new_cluster", nc.Cluster.Spec.Name)
		return
	}
	var restart []string
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"the server's address (agent bind address)", nc.BindAddr != cur.BindAddr},
		{"agents.gossip_port", nc.GossipPort != cur.GossipPort},
		{"agents.http_port", nc.HTTPPort != cur.HTTPPort},
		{"security.gossip_key_file", !bytes.Equal(nc.GossipKey, cur.GossipKey)},
		{"security.gossip_label", nc.GossipLabel != cur.GossipLabel},
		{"monitors", !reflect.DeepEqual(nc.Monitors, cur.Monitors)},
		{"vip (address, interface, method, garp_*)", !reflect.DeepEqual(nc.VIP, cur.VIP)},
	} {
		if c.changed {
			restart = append(restart, c.key)
		}
	}
	a.cfg.Cluster, a.cfg.Lease = nc.Cluster, nc.Lease
	a.dialer = agentDialer(nc.Cluster.Spec, a.log)
	keep := map[string]bool{}
	for _, s := range nc.Cluster.Spec.Servers {
		keep[s.Address] = true
	}
	for addr := range a.marks {
		if !keep[addr] {
			delete(a.marks, addr)
		}
	}
	if a.g != nil {
		a.g.setAllow(gossipAllow(cur.Monitors, []ClusterConfig{nc.Cluster}))
	}
	a.log.Info("SIGHUP: config reloaded", "server", cur.Server, "cluster", nc.Cluster.Spec.Name, "servers", len(nc.Cluster.Spec.Servers), "lease", nc.Lease)
	if len(restart) > 0 {
		a.log.Warn("SIGHUP: these changes need a restart of the agent and were not applied", "changed", restart)
	}
}
