package failover

import (
	"fmt"
	"slices"
	"strings"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

// RejoinPlan says whether a server (an old primary that came back, or any
// stray) can become a replica of the primary in service, and if not, why
// and what to do. It is decided from a snapshot alone (PlanRejoin is pure);
// `myha rejoin` carries it out and the daemon's auto_rejoin uses the same
// errant test.
type RejoinPlan struct {
	Cluster string `json:"cluster"`
	Server  string `json:"server"`
	Primary string `json:"primary,omitempty"`
	// Errant lists the transactions the server has that the primary never
	// had; any makes the rejoin impossible without losing or moving them.
	Errant   []string `json:"errant,omitempty"`
	Blockers []string `json:"blockers,omitempty"`
	// Nothing is set when the server already replicates from the primary
	// with both threads running.
	Nothing bool `json:"nothing_to_do,omitempty"`
}

// PlanRejoin judges making server a replica of the snapshot's primary.
func PlanRejoin(snap *topology.Snapshot, server string) RejoinPlan {
	p := RejoinPlan{Cluster: snap.Cluster, Server: server}
	v, ok := snap.Server(server)
	if !ok {
		var names []string
		for _, s := range snap.Servers {
			names = append(names, s.Spec.Address)
		}
		p.Blockers = append(p.Blockers, fmt.Sprintf("%s is not a server of cluster %s (servers: %s)", server, snap.Cluster, strings.Join(names, ", ")))
		return p
	}
	if !v.Reachable {
		p.Blockers = append(p.Blockers, fmt.Sprintf("cannot reach %s: %s", server, v.Error))
	}
	var writers []string
	for i := range snap.Servers {
		s := &snap.Servers[i]
		if s.Reachable && !s.ReadOnly && !s.SuperReadOnly && s.Spec.Address != server {
			writers = append(writers, s.Spec.Address)
		}
	}
	switch {
	case len(writers) == 0:
		p.Blockers = append(p.Blockers, "no writable primary in service to follow: fail over first (myha failover)")
		return p
	case len(writers) > 1:
		p.Blockers = append(p.Blockers, fmt.Sprintf("%d writable servers besides %s (%s): fix that first (myha check)", len(writers), server, strings.Join(writers, ", ")))
		return p
	}
	p.Primary = writers[0]
	if !v.Reachable {
		return p
	}
	pv, _ := snap.Server(p.Primary)
	if c, ok := v.PrimaryConn(); ok && v.Source == p.Primary && c.IORunning() && c.SQLRunning && v.ReadOnly {
		p.Nothing = true
		return p
	}
	p.Errant = ErrantAgainst(v, pv)
	if len(p.Errant) > 0 {
		p.Blockers = append(p.Blockers, fmt.Sprintf("%s has transactions %s never had: %s. Replicating would fail or lose them. %s",
			server, p.Primary, strings.Join(p.Errant, ", "), ErrantRemedy(server, p.Primary)))
	}
	return p
}

// ErrantRemedy is what to do about a server holding transactions its
// primary never had: said the same way by check, rejoin and the daemon.
func ErrantRemedy(server, primary string) string {
	return fmt.Sprintf("Look at them first (mariadb-binlog --start-position on %s's binlogs, or SHOW BINLOG EVENTS); then either apply what must be kept on %s by hand, "+
		"or rebuild %s from a backup of %s", server, primary, server, primary)
}

// ErrantAgainst lists the transactions v has that p lacks: by GTID domain
// and server on MariaDB (its own writes p never received), by GTID set
// subtraction on MySQL. Servers of different flavors cannot replicate
// each other at all.
func ErrantAgainst(v, p *topology.ServerView) []string {
	if v.Dialect.Flavor != p.Dialect.Flavor {
		return []string{fmt.Sprintf("(%s is %s, %s is %s)", v.Spec.Address, v.Dialect.Flavor, p.Spec.Address, p.Dialect.Flavor)}
	}
	if v.Dialect.IsMariaDB() {
		var out []string
		for _, g := range binlog.MariaDBErrant(v.GTIDBinlogPos, v.GTIDSlavePos, v.ServerID, p.GTIDBinlogPos, p.GTIDSlavePos) {
			out = append(out, g.String())
		}
		// Writes hidden by gtid_strict_mode=0 (a later GTID of another
		// server in the same domain) stay visible in @@gtid_binlog_state;
		// p's state holds what it received only if it logs it.
		for _, g := range v.GTIDBinlogState {
			if p.LogReplicaUpd && g.ServerID == v.ServerID && !binlog.StateHolds(p.GTIDBinlogState, g) && !slices.Contains(out, g.String()) {
				out = append(out, g.String())
			}
		}
		return out
	}
	if d := v.GTIDExecuted.Subtract(p.GTIDExecuted); !d.IsEmpty() {
		return []string{d.String()}
	}
	return nil
}
