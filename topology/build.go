package topology

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/myha/myha/binlog"
)

// Build derives the cluster view from server states: each server's source
// within the cluster, its role, errant transactions, and the problems a DBA
// should see. It is pure: same states, same snapshot.
func Build(cluster string, states []ServerState, takenAt time.Time) Snapshot {
	snap := Snapshot{Cluster: cluster, TakenAt: takenAt}
	views := make([]ServerView, len(states))
	byAddr := map[string]int{}
	byID := map[uint32][]int{}
	for i, s := range states {
		views[i] = ServerView{ServerState: s}
		byAddr[s.Spec.Address] = i
		if s.Reachable && s.ServerID != 0 {
			byID[s.ServerID] = append(byID[s.ServerID], i)
		}
	}

	// 1. Resolve each server's source inside the cluster.
	src := make([]int, len(views))
	for i := range views {
		src[i] = -1
		v := &views[i]
		c, ok := v.PrimaryConn()
		if !ok {
			continue
		}
		j := resolveSource(*c, byAddr, byID)
		switch {
		case j == i:
			v.Problems = append(v.Problems, "replicates from itself")
		case j >= 0:
			src[i] = j
			v.Source = views[j].Spec.Address
		default:
			v.SourceOutside = c.Source()
			v.Problems = append(v.Problems, fmt.Sprintf("replicates from %s, which is not a server of this cluster", c.Source()))
		}
		for _, other := range v.Replication {
			if other.Name != c.Name {
				v.Problems = append(v.Problems, fmt.Sprintf("also replicates from %s (connection %q); multi-source replicas are repointed on their main connection only", other.Source(), other.Name))
			}
		}
		v.Problems = append(v.Problems, connProblems(*c)...)
	}

	// 2. Cycles: a pair is a co-primary pair; longer cycles are inconsistent.
	inLongCycle := make([]bool, len(views))
	pairOf := make([]int, len(views))
	for i := range pairOf {
		pairOf[i] = -1
	}
	for i := range views {
		seen := map[int]int{}
		for k, step := i, 0; k >= 0; k, step = src[k], step+1 {
			if at, ok := seen[k]; ok {
				length := step - at
				if k == i && length == 2 {
					pairOf[i] = src[i]
				} else if k == i && length > 2 {
					inLongCycle[i] = true
				}
				break
			}
			seen[k] = step
		}
	}

	// 3. Children and roots.
	children := make([][]int, len(views))
	for i, j := range src {
		if j >= 0 && pairOf[i] != j {
			children[j] = append(children[j], i)
		}
	}
	var roots []int // single roots and the writable-or-first side of each pair
	for i := range views {
		switch {
		case inLongCycle[i]:
			views[i].Role = RoleUnknown
			views[i].Problems = append(views[i].Problems, "part of a replication cycle of more than two servers")
		case pairOf[i] >= 0:
			if j := pairOf[i]; i < j {
				roots = append(roots, i)
			}
		case src[i] < 0 && views[i].SourceOutside == "":
			roots = append(roots, i)
		}
	}

	// 4. Which root is the primary: the tree with replicas (or the only
	// server), and writable. Anything else rooted separately is unknown.
	writable := func(i int) bool { return views[i].Reachable && !views[i].ReadOnly && !views[i].SuperReadOnly }
	var treeRoots []int
	for _, r := range roots {
		n := len(children[r])
		if p := pairOf[r]; p >= 0 {
			n += len(children[p]) + 1
		}
		if n > 0 || len(views) == 1 {
			treeRoots = append(treeRoots, r)
		}
	}
	primary := -1
	if len(treeRoots) == 0 {
		// A primary whose replicas are all gone is still the primary: the
		// one writable server that replicates from nobody.
		var lone []int
		for _, r := range roots {
			if pairOf[r] < 0 && writable(r) {
				lone = append(lone, r)
			}
		}
		if len(lone) == 1 {
			treeRoots = lone
		}
	}
	switch len(treeRoots) {
	case 0:
		if len(views) > 0 {
			snap.Problems = append(snap.Problems, "no primary: no server has replicas")
		}
	case 1:
		r := treeRoots[0]
		if p := pairOf[r]; p >= 0 {
			primary = pickPairActive(views, r, p, &snap)
		} else {
			primary = r
			views[r].Role = RolePrimary
			if !views[r].Reachable {
				snap.Problems = append(snap.Problems, fmt.Sprintf("primary %s is unreachable: %s", views[r].Spec.Address, views[r].Error))
			} else if !writable(r) {
				snap.Problems = append(snap.Problems, fmt.Sprintf("primary %s is read-only: no server accepts writes", views[r].Spec.Address))
			}
		}
	default:
		var names []string
		for _, r := range treeRoots {
			names = append(names, views[r].Spec.Address)
		}
		snap.Problems = append(snap.Problems, fmt.Sprintf("%d separate replication trees (roots %s): cannot tell which is the primary", len(treeRoots), strings.Join(names, ", ")))
	}
	for _, r := range roots {
		if views[r].Role == "" && pairOf[r] < 0 {
			views[r].Role = RoleUnknown
			if views[r].Reachable && !slices.Contains(treeRoots, r) {
				views[r].Problems = append(views[r].Problems, "not replicating and has no replicas")
			}
		}
	}

	// 5. Descendants of the primary are replicas or intermediates.
	if primary >= 0 {
		tops := []int{primary}
		if p := pairOf[primary]; p >= 0 {
			tops = append(tops, p)
		}
		var walk func(i int)
		walk = func(i int) {
			for _, c := range children[i] {
				if views[c].Role != "" {
					continue
				}
				views[c].Role = RoleReplica
				if len(children[c]) > 0 {
					views[c].Role = RoleIntermediate
				}
				walk(c)
			}
		}
		for _, t := range tops {
			walk(t)
		}
	}
	for i := range views {
		if views[i].Role == "" {
			views[i].Role = RoleUnknown
			if !views[i].Reachable {
				views[i].Problems = append(views[i].Problems, "unreachable: "+views[i].Error)
			}
		}
	}

	// 6. Writers: exactly one is wanted.
	var writers []string
	for i := range views {
		if writable(i) {
			writers = append(writers, views[i].Spec.Address)
			if i != primary {
				views[i].Problems = append(views[i].Problems, "writable (read_only is OFF) but not the primary")
			}
		}
	}
	if len(writers) > 1 {
		snap.Problems = append(snap.Problems, fmt.Sprintf("%d writable servers (%s): only the primary should accept writes", len(writers), strings.Join(writers, ", ")))
	}
	if primary >= 0 {
		snap.Primary = views[primary].Spec.Address
	}

	// 7. Errant transactions, against each server's own source; when the
	// source is down (the very moment a failover needs to know), against
	// every other reachable server: a local write nobody else holds.
	for i := range views {
		j := src[i]
		switch {
		case j < 0 || !views[i].Reachable:
		case views[j].Reachable:
			views[i].Errant = errantAgainst(&views[i].ServerState, &views[j].ServerState)
			if len(views[i].Errant) > 0 {
				views[i].Problems = append(views[i].Problems, fmt.Sprintf("errant transactions (not on its source %s): %s", views[j].Spec.Address, strings.Join(views[i].Errant, ",")))
			}
		default:
			var others []*ServerState
			for k := range views {
				if k != i && k != j && views[k].Reachable {
					others = append(others, &views[k].ServerState)
				}
			}
			views[i].Errant = localErrant(&views[i].ServerState, others)
			if len(views[i].Errant) > 0 {
				views[i].Problems = append(views[i].Problems, fmt.Sprintf("errant transactions (written locally, held by no other server; its source %s is down): %s", views[j].Spec.Address, strings.Join(views[i].Errant, ",")))
			}
		}
	}

	// 8. Replicas that are connected but not configured.
	snap.Unlisted = unlisted(views, byID)
	for _, u := range snap.Unlisted {
		snap.Problems = append(snap.Problems, fmt.Sprintf("replica %s (server_id %d) of %s is not in the config: a failover would leave it behind", joinHostPort(u.Host, u.Port), u.ServerID, u.Source))
	}
	for i := range views {
		if !views[i].Reachable {
			continue
		}
		if views[i].Error != "" {
			views[i].Problems = append(views[i].Problems, "discovery incomplete: "+views[i].Error)
		}
		views[i].Problems = append(views[i].Problems, views[i].Warnings...)
	}
	snap.Servers = views
	return snap
}

// pickPairActive chooses the active side of a co-primary pair: the writable
// one. Both writable, or neither, is reported.
func pickPairActive(views []ServerView, a, b int, snap *Snapshot) int {
	wa := views[a].Reachable && !views[a].ReadOnly && !views[a].SuperReadOnly
	wb := views[b].Reachable && !views[b].ReadOnly && !views[b].SuperReadOnly
	views[a].CoPrimaryOf, views[b].CoPrimaryOf = views[b].Spec.Address, views[a].Spec.Address
	switch {
	case wa && !wb:
		views[a].Role, views[b].Role = RolePrimary, RoleCoPrimary
		return a
	case wb && !wa:
		views[b].Role, views[a].Role = RolePrimary, RoleCoPrimary
		return b
	case wa && wb:
		views[a].Role, views[b].Role = RoleUnknown, RoleUnknown
		snap.Problems = append(snap.Problems, fmt.Sprintf("co-primaries %s and %s are both writable: risk of conflicting writes", views[a].Spec.Address, views[b].Spec.Address))
		return -1
	}
	views[a].Role, views[b].Role = RoleCoPrimary, RoleCoPrimary
	snap.Problems = append(snap.Problems, fmt.Sprintf("co-primaries %s and %s are both read-only: no server accepts writes", views[a].Spec.Address, views[b].Spec.Address))
	return -1
}

// resolveSource finds the configured server a connection points at: by
// address first, then by the source's server_id (the replica may know the
// source by another name or address).
func resolveSource(c ReplicaConn, byAddr map[string]int, byID map[uint32][]int) int {
	host := c.SourceHost
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	}
	if j, ok := byAddr[net.JoinHostPort(host, strconv.Itoa(c.SourcePort))]; ok {
		return j
	}
	if ids := byID[c.SourceServerID]; c.SourceServerID != 0 && len(ids) == 1 {
		return ids[0]
	}
	return -1
}

func connProblems(c ReplicaConn) []string {
	var p []string
	if !c.IORunning() {
		msg := "IO thread not running (" + c.IOState + ")"
		if c.IOState == "Connecting" {
			msg = "IO thread cannot connect to its source"
		}
		if c.LastIOError != "" {
			msg += fmt.Sprintf(": error %d: %s", c.LastIOErrno, c.LastIOError)
		}
		p = append(p, msg)
	}
	if !c.SQLRunning {
		msg := "SQL thread not running"
		if c.LastSQLError != "" {
			msg += fmt.Sprintf(": error %d: %s", c.LastSQLErrno, c.LastSQLError)
		}
		p = append(p, msg)
	}
	if c.UsingGTID == "No" {
		p = append(p, "replicates by binlog file and position, not GTID: failover needs GTID (MASTER_USE_GTID=slave_pos)")
	}
	return p
}

// errantAgainst lists what r has that its source s lacks.
func errantAgainst(r, s *ServerState) []string {
	if r.Dialect.Flavor != s.Dialect.Flavor {
		return nil
	}
	if r.Dialect.Flavor == binlog.MySQL {
		d := r.GTIDExecuted.Subtract(s.GTIDExecuted)
		if d.IsEmpty() {
			return nil
		}
		return []string{d.String()}
	}
	var out []string
	for _, g := range binlog.MariaDBErrant(r.GTIDBinlogPos, r.GTIDSlavePos, r.ServerID, s.GTIDBinlogPos, s.GTIDSlavePos) {
		out = append(out, g.String())
	}
	return appendNew(out, stateErrant(r, []*ServerState{s}))
}

// stateErrant finds local writes through the binlog state: an own-server_id
// GTID its replication position does not cover and none of others holds.
// With gtid_strict_mode=0 a local write can share its seq_no with a later
// replicated GTID, which hides it from every position; the state keeps it.
func stateErrant(r *ServerState, others []*ServerState) []string {
	var out []string
	for _, g := range r.GTIDBinlogState {
		if g.ServerID != r.ServerID || r.GTIDSlavePos.Holds(g) {
			continue
		}
		held := false
		for _, o := range others {
			if binlog.StateHolds(o.GTIDBinlogState, g) || o.GTIDBinlogPos.Holds(g) || o.GTIDSlavePos.Holds(g) {
				held = true
				break
			}
		}
		if !held {
			out = append(out, g.String())
		}
	}
	return out
}

func appendNew(list, more []string) []string {
	for _, m := range more {
		if !slices.Contains(list, m) {
			list = append(list, m)
		}
	}
	return list
}

// localErrant lists what r wrote itself that no other server holds: its own
// local writes (MariaDB: its server_id beyond gtid_slave_pos; MySQL: its own
// server_uuid) not replicated anywhere. It needs no source, so it works
// while the primary is dead.
func localErrant(r *ServerState, others []*ServerState) []string {
	var out []string
	if r.Dialect.Flavor == binlog.MySQL {
		own := r.GTIDExecuted.OnlyUUID(r.ServerUUID)
		for _, o := range others {
			if o.Dialect.Flavor == binlog.MySQL {
				own = own.Subtract(o.GTIDExecuted)
			}
		}
		if !own.IsEmpty() {
			out = append(out, own.String())
		}
		return out
	}
	for _, g := range binlog.MariaDBLocalWrites(r.GTIDBinlogPos, r.GTIDSlavePos, r.ServerID) {
		held := false
		for _, o := range others {
			if o.Dialect.Flavor != binlog.MySQL && (o.GTIDBinlogPos.Holds(g) || o.GTIDSlavePos.Holds(g)) {
				held = true
				break
			}
		}
		if !held {
			out = append(out, g.String())
		}
	}
	return appendNew(out, stateErrant(r, others))
}

func unlisted(views []ServerView, byID map[uint32][]int) []UnlistedReplica {
	known := func(c ConnectedReplica) bool {
		if c.ServerID != 0 && len(byID[c.ServerID]) > 0 {
			return true
		}
		for _, v := range views {
			host, port, err := net.SplitHostPort(v.Spec.Address)
			if err != nil {
				continue
			}
			if host == c.Host && (c.Port == 0 || strconv.Itoa(c.Port) == port) {
				return true
			}
		}
		return false
	}
	var out []UnlistedReplica
	for _, v := range views {
		for _, c := range v.ConnectedReplicas {
			if !known(c) {
				out = append(out, UnlistedReplica{Source: v.Spec.Address, Host: c.Host, Port: c.Port, ServerID: c.ServerID})
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Source+out[a].Host < out[b].Source+out[b].Host })
	return out
}
