package failover

import (
	"fmt"
	"slices"
	"strings"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

// replicaInfo is what the planner derives about one replica of the old primary.
type replicaInfo struct {
	v        *topology.ServerView
	order    int // config order
	received binlog.Position
	applied  binlog.Position
	reasons  []string // why it cannot be promoted
	lostWhy  string   // why it cannot follow the new primary ("" if it can)
	sqlStop  bool     // SQL thread stopped without error: start it first
	// stranded is what a replica with both threads stopped received: its
	// relay log beyond applied is lost when either thread starts.
	stranded binlog.Position
}

// Build plans a failover or switchover from a snapshot. It is pure: the same
// snapshot, policy and request give the same plan.
func Build(snap *topology.Snapshot, pol Policy, req Request) Plan {
	p := Plan{Cluster: snap.Cluster, Kind: req.Kind, Candidates: []Candidate{}, Steps: []Step{},
		LostReplicas: []Lost{}, Blockers: []string{}, Warnings: []string{}}
	if req.Kind != KindFailover && req.Kind != KindSwitchover {
		p.Blockers = append(p.Blockers, fmt.Sprintf("unknown plan kind %q", req.Kind))
		return p
	}
	old, ok := snap.Server(snap.Primary)
	if snap.Primary == "" || !ok {
		p.Blockers = append(p.Blockers, "no primary identified: "+orNone(strings.Join(snap.Problems, "; ")))
		return p
	}
	p.OldPrimary = old.Spec.Address

	// Safety: is this the situation the request claims?
	switch {
	case req.Kind == KindFailover && old.Reachable && !req.Hypothetical && !req.Force:
		p.Blockers = append(p.Blockers, fmt.Sprintf("primary %s answers: it is not dead (use switchover for a planned change, or --force to fence it and fail over)", old.Spec.Address))
	case req.Kind == KindFailover && !old.Reachable && !req.Hypothetical && !req.ReplicasConfirmed:
		if still := stillReplicating(snap, old.Spec.Address); len(still) > 0 && !req.Force {
			p.Blockers = append(p.Blockers, fmt.Sprintf("primary %s is unreachable from here, but %s still replicate from it: a network problem between this host and the primary is likelier than a dead primary (use --force only if you are sure)", old.Spec.Address, strings.Join(still, ", ")))
		}
	case req.Kind == KindSwitchover && !old.Reachable:
		p.Blockers = append(p.Blockers, fmt.Sprintf("primary %s is unreachable: a switchover needs a live primary (use failover)", old.Spec.Address))
	}
	if req.Kind == KindSwitchover {
		for _, v := range snap.Servers {
			if !v.Reachable {
				p.Blockers = append(p.Blockers, fmt.Sprintf("%s is unreachable: a switchover needs every server up", v.Spec.Address))
			}
		}
	}

	reps := replicasOf(snap, old, req.PreviousAttempt)
	if len(reps) == 0 {
		p.Blockers = append(p.Blockers, fmt.Sprintf("primary %s has no replicas to promote", old.Spec.Address))
		return p
	}
	judge(reps, old, pol, req)
	{
		for _, v := range snap.Servers {
			if v.Reachable && v.Spec.Address != old.Spec.Address && !v.ReadOnly && !v.SuperReadOnly {
				p.Blockers = append(p.Blockers, fmt.Sprintf("%s is already writable: promoting another server would make two writers (an interrupted failover may have promoted it: see myha history); make it read-only or finish that failover first", v.Spec.Address))
			}
		}
	}
	judgeBacklog(reps, pol)

	// The most advanced usable replica sets what the new primary must reach.
	ranked := rank(reps)
	var most *replicaInfo
	for _, r := range ranked {
		if usableSource(r) {
			most = r
			break
		}
	}

	chosen, why := choose(reps, ranked, old, req, &p)
	for i, r := range ranked {
		c := Candidate{Address: r.v.Spec.Address, Eligible: len(r.reasons) == 0, Rank: i + 1,
			Received: r.received.String(), Applied: r.applied.String(), Reasons: nonNil(r.reasons)}
		if most != nil {
			c.Behind = r.received.Missing(most.received)
		}
		if r == chosen {
			c.Chosen = true
		} else if c.Eligible && chosen != nil {
			c.Reasons = []string{fmt.Sprintf("%s preferred: %s", chosen.v.Spec.Address, why)}
		}
		p.Candidates = append(p.Candidates, c)
	}
	if chosen == nil {
		return p
	}
	p.NewPrimary, p.Why = chosen.v.Spec.Address, why

	// Catch the chosen replica up from the most advanced one if it is
	// behind; from more than one, in rank order, when no single replica
	// holds everything (GTID domains).
	final := chosen.received
	var sources []*replicaInfo
	var from []string
	for _, r := range ranked {
		if r == chosen || !usableSource(r) || final.Missing(r.received) == 0 {
			continue
		}
		from = append(from, fmt.Sprintf("%d transaction(s) from %s", final.Missing(r.received), r.v.Spec.Address))
		sources = append(sources, r)
		final = final.Merge(r.received)
	}
	if len(sources) > 0 {
		p.CatchUpFrom = sources[0].v.Spec.Address
		p.Why += fmt.Sprintf("; it catches up first (%s), so nothing received is lost", strings.Join(from, ", "))
	}
	var rec captureReplay
	if req.Kind == KindFailover {
		rec = planCaptures(&p, chosen, final, req.Captures, pol.CatchupTimeout.Seconds())
		if rec.recovered > 0 {
			p.Why += fmt.Sprintf("; then it replays what only the monitors' captures hold (%s)", strings.Join(rec.from, ", "))
		}
		final = rec.final
	}
	p.Final = final.String()

	// Who cannot follow, and what is lost.
	var extra int64
	var received []string
	for _, r := range reps {
		if r == chosen {
			continue
		}
		switch {
		case r.lostWhy != "":
		case r.v.Dialect.Flavor == chosen.v.Dialect.Flavor && olderThan(r.v, chosen.v):
			r.lostWhy = fmt.Sprintf("runs %s, older than the new primary's %s: it cannot replicate from a newer version", r.v.Dialect.Version(), chosen.v.Dialect.Version())
		case final.Missing(r.received) > 0:
			n := final.Missing(r.received)
			extra += n
			r.lostWhy = fmt.Sprintf("holds %d transaction(s) the new primary will not have (received %s): it cannot follow without diverging", n, r.received)
			received = append(received, fmt.Sprintf("%s (held by %s: %s)", missingText(final, r.received), r.v.Spec.Address, whyNotSource(r)))
		}
		if r.lostWhy != "" {
			p.LostReplicas = append(p.LostReplicas, Lost{Address: r.v.Spec.Address, Reason: r.lostWhy})
		}
	}
	received = append(received, fileposAhead(reps, chosen, sources)...)
	for _, r := range reps {
		if !r.stranded.IsEmpty() && final.Missing(r.stranded) > 0 {
			received = append(received, fmt.Sprintf("%s (in the relay log of %s, whose SQL and IO threads are both stopped: starting either discards it)", missingText(final, r.stranded), r.v.Spec.Address))
		}
	}
	p.LostTransactions = lossEstimate(old, final, extra, req)
	p.LostTransactions.Received = received
	if !old.Reachable {
		p.LostTransactions = captureLoss(old, rec, p.LostTransactions)
	}
	if len(received) > 0 && req.Kind == KindFailover {
		msg := "transactions that replicas received would be lost: " + strings.Join(received, "; ")
		if req.AcceptLoss {
			p.Warnings = append(p.Warnings, msg+" (accepted with --accept-loss)")
		} else {
			p.Blockers = append(p.Blockers, msg+": fix the cause, or run myha failover --accept-loss to accept the loss (the daemon never does)")
		}
	}
	p.Steps = steps(snap, old, chosen, sources, reps, pol, req, rec.steps)
	return p
}

// judgeBacklog makes replicas ineligible whose backlog, counted in
// transactions against the most advanced usable replica, exceeds the
// policy's limit: applying it could outlast catchup_timeout and leave the
// cluster with no writable server, and Seconds_Behind_Master says nothing
// once the primary is dead.
func judgeBacklog(reps []*replicaInfo, pol Policy) {
	if pol.MaxBacklog <= 0 {
		return
	}
	var max binlog.Position
	first := true
	for _, r := range reps {
		if usableSource(r) {
			if first {
				max, first = r.received, false
			} else {
				max = max.Merge(r.received)
			}
		}
	}
	if first {
		return
	}
	for _, r := range reps {
		if n := r.applied.Missing(max); r.v.Reachable && n > pol.MaxBacklog {
			r.reasons = append(r.reasons, fmt.Sprintf("%d transaction(s) to apply before it could take writes (judged by position): more than failover.max_backlog %d", n, pol.MaxBacklog))
		}
	}
}

// whyNotSource says why a replica holding more than the new primary cannot
// feed it.
func whyNotSource(r *replicaInfo) string {
	v := r.v
	c, _ := v.PrimaryConn()
	switch {
	case !v.LogBin:
		return "log_bin is off"
	case !v.LogReplicaUpd:
		return "log_slave_updates is off, so its binlog lacks them"
	case len(v.Errant) > 0:
		return "it has errant transactions"
	case c != nil && len(c.Filters) > 0:
		return "it is filtered"
	case c != nil && c.SQLDelay > 0:
		return "it is delayed and has not applied them"
	case c != nil && !c.SQLRunning && c.LastSQLErrno != 0:
		return "its SQL thread is broken"
	}
	return "it cannot serve as a catch-up source"
}

// missingText names the transactions held has and final lacks: per GTID
// domain the range (MariaDB), the set difference (MySQL).
func missingText(final, held binlog.Position) string {
	if held.Flavor == binlog.MySQL {
		return held.MySQL.Subtract(final.MySQL).String()
	}
	var parts []string
	for _, g := range held.MariaDB.GTIDs() {
		f, ok := final.MariaDB.Domain(g.Domain)
		switch {
		case !ok:
			parts = append(parts, fmt.Sprintf("domain %d up to %s", g.Domain, g))
		case g.Seq > f.Seq:
			parts = append(parts, fmt.Sprintf("domain %d seq %d..%d (up to %s)", g.Domain, f.Seq+1, g.Seq, g))
		}
	}
	return strings.Join(parts, ", ")
}

// fileposAhead finds MariaDB replicas on file/position replication that
// read further into the old primary's binlog than any replica the failover
// uses: their relay log holds transactions nobody else received, and its
// GTIDs cannot be known before it is applied. All replicas of one primary
// read the same binlog, so coordinates compare across them.
func fileposAhead(reps []*replicaInfo, chosen *replicaInfo, sources []*replicaInfo) []string {
	var best binlog.FilePos
	for _, r := range append([]*replicaInfo{chosen}, sources...) {
		if c, ok := r.v.PrimaryConn(); ok && !c.ReadCoord.IsZero() {
			if rel, err := c.ReadCoord.Compare(best); best.IsZero() || err == nil && rel == binlog.Ahead {
				best = c.ReadCoord
			}
		}
	}
	var out []string
	for _, r := range reps {
		c, ok := r.v.PrimaryConn()
		if !ok || !r.v.Reachable || r.v.Dialect.Flavor != binlog.MariaDB || c.UsingGTID != "No" || c.ReadCoord.IsZero() {
			continue
		}
		rel, err := c.ReadCoord.Compare(best)
		if best.IsZero() || err != nil || rel == binlog.Ahead {
			out = append(out, fmt.Sprintf("an unknown number of transactions up to %s of the old primary's binlog (held by %s, on file/position replication, which read further than the new primary)", c.ReadCoord, r.v.Spec.Address))
		}
	}
	return out
}

// replicasOf lists the old primary's direct replicas, including the passive
// co-primary, in config order.
func replicasOf(snap *topology.Snapshot, old *topology.ServerView, previous string) []*replicaInfo {
	var out []*replicaInfo
	for i := range snap.Servers {
		v := &snap.Servers[i]
		if v.Spec.Address == old.Spec.Address {
			continue
		}
		if v.Source != old.Spec.Address && !(v.Spec.Address == previous && interruptedCatchUp(snap, v, old)) {
			continue
		}
		r := &replicaInfo{v: v, order: i}
		r.applied = v.ExecutedPosition()
		r.received = r.applied
		// A relay log is usable only while the IO thread has not been
		// stopped after the SQL thread: starting either thread when both
		// are stopped discards it (MariaDB, MASTER_USE_GTID=slave_pos). Then
		// what it received is what it applied.
		if c, ok := v.PrimaryConn(); ok && v.Reachable {
			got := r.applied.Merge(binlog.Position{Flavor: binlog.MariaDB, MariaDB: c.GTIDIOPos})
			if v.Dialect.Flavor == binlog.MySQL {
				got = r.applied.Merge(binlog.Position{Flavor: binlog.MySQL, MySQL: c.RetrievedSet})
			}
			if c.IOState == "No" && !c.SQLRunning && v.Dialect.Flavor == binlog.MariaDB {
				// What it received beyond what it applied is stranded: no
				// failover can use it, so it is named as a loss.
				r.stranded = got
			} else {
				r.received = got
			}
		}
		out = append(out, r)
	}
	return out
}

// interruptedCatchUp recognizes the chosen server of an interrupted run: it
// replicates, threads stopped, from another replica of the old primary or
// from a capture.
func interruptedCatchUp(snap *topology.Snapshot, v, old *topology.ServerView) bool {
	src, ok := snap.Server(v.Source)
	c, has := v.PrimaryConn()
	// A source that is no server of the cluster is a monitor's capture
	// (replay_from_capture): the run stopped during or after the replay.
	return has && (!ok || src.Source == old.Spec.Address) && !c.IORunning() && !c.SQLRunning
}

// judge records why each replica cannot be promoted, and why it cannot
// follow a new primary at all.
func judge(reps []*replicaInfo, old *topology.ServerView, pol Policy, req Request) {
	for _, r := range reps {
		v := r.v
		no := func(format string, a ...any) { r.reasons = append(r.reasons, fmt.Sprintf(format, a...)) }
		if !v.Reachable {
			no("unreachable: %s", v.Error)
			r.lostWhy = "unreachable: repoint it to the new primary when it is back"
			continue
		}
		if v.Spec.NoMaster {
			no("no_master is set")
		}
		if why, ok := pol.Maintenance[v.Spec.Address]; ok {
			no("in maintenance (%s): myha maintenance off to make it a candidate again", why)
		}
		if !v.LogBin {
			no("log_bin is off: it cannot serve as a primary")
		}
		if len(v.Errant) > 0 {
			no("errant transactions %s", strings.Join(v.Errant, ","))
			r.lostWhy = "errant transactions " + strings.Join(v.Errant, ",") + ": it has diverged; rebuild it or remove them first"
		}
		if v.Dialect.Flavor == binlog.MySQL && !strings.EqualFold(v.GTIDMode, "ON") {
			no("gtid_mode is %s: failover needs GTID", orNone(v.GTIDMode))
		}
		if v.Dialect.Flavor != old.Dialect.Flavor && old.Reachable {
			no("flavor %s differs from the primary's %s", v.Dialect.Flavor, old.Dialect.Flavor)
		}
		c, ok := v.PrimaryConn()
		if !ok {
			continue
		}
		if !c.SQLRunning {
			if c.LastSQLErrno != 0 {
				no("SQL thread stopped with error %d: %s", c.LastSQLErrno, c.LastSQLError)
				if r.lostWhy == "" {
					r.lostWhy = fmt.Sprintf("SQL thread stopped with error %d: fix replication on it first", c.LastSQLErrno)
				}
			} else {
				r.sqlStop = true
			}
		}
		if c.SQLDelay > 0 {
			no("delayed replica (MASTER_DELAY=%d)", c.SQLDelay)
		}
		if len(c.Filters) > 0 {
			no("replication filters (%s): filtered events still advance its GTID position, so it looks complete and is not", filterList(c.Filters))
		}
		if v.Dialect.Flavor == binlog.MariaDB && c.UsingGTID == "No" {
			no("replicates by binlog file and position (Using_Gtid=No): what it received cannot be waited for by GTID, and promoting it would discard its relay log")
		}
		if !v.LogReplicaUpd && len(reps) > 1 {
			no("log_slave_updates is off: its binlog lacks what it replicated, so replicas behind it could never fetch those transactions")
		}
		if c.LagSeconds != nil && pol.MaxLag > 0 && float64(*c.LagSeconds) > pol.MaxLag.Seconds() {
			no("lag %ds exceeds failover.max_lag %s", *c.LagSeconds, pol.MaxLag)
		}
		if req.Kind == KindSwitchover && !c.IORunning() {
			no("its IO thread is not connected to the primary: it cannot catch up for a switchover")
		}
	}
	// A new primary must not be newer than the replicas that must follow it.
	for _, r := range reps {
		if !r.v.Reachable {
			continue
		}
		for _, o := range reps {
			if o != r && o.v.Reachable && o.lostWhy == "" && o.v.Dialect.Flavor == r.v.Dialect.Flavor && olderThan(o.v, r.v) {
				r.reasons = append(r.reasons, fmt.Sprintf("version %s is newer than %s's %s, which could not replicate from it", r.v.Dialect.Version(), o.v.Spec.Address, o.v.Dialect.Version()))
				break
			}
		}
	}
}

func olderThan(a, b *topology.ServerView) bool {
	if a.Dialect.Major != b.Dialect.Major {
		return a.Dialect.Major < b.Dialect.Major
	}
	return a.Dialect.Minor < b.Dialect.Minor
}

// usableSource reports whether a replica can feed another during catch-up:
// reachable, its binlog holds what it replicated, nothing errant, and its SQL
// thread is not broken.
func usableSource(r *replicaInfo) bool {
	v := r.v
	if !v.Reachable || !v.LogBin || !v.LogReplicaUpd || len(v.Errant) > 0 {
		return false
	}
	if c, ok := v.PrimaryConn(); ok {
		if !c.SQLRunning && c.LastSQLErrno != 0 || c.SQLDelay > 0 || len(c.Filters) > 0 {
			return false
		}
		if v.Dialect.Flavor == binlog.MariaDB && c.UsingGTID == "No" {
			return false
		}
	}
	return true
}

func filterList(f map[string]string) string {
	var out []string
	for k, v := range f {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// rank orders reachable replicas most advanced first: fewest transactions
// missing from the union of what the usable ones received, then applied;
// ties go to candidate, then priority, then config order. Missing-count
// ordering extends the containment order to positions that are
// incomparable across GTID domains. Servers whose position is not a prefix
// of the primary's history (errant, broken SQL thread) rank last: how far
// they got means nothing.
func rank(reps []*replicaInfo) []*replicaInfo {
	var out []*replicaInfo
	var maxRecv, maxApplied binlog.Position
	first := true
	for _, r := range reps {
		if !r.v.Reachable {
			continue
		}
		out = append(out, r)
		if !usableSource(r) {
			continue
		}
		if first {
			maxRecv, maxApplied, first = r.received, r.applied, false
		} else {
			maxRecv, maxApplied = maxRecv.Merge(r.received), maxApplied.Merge(r.applied)
		}
	}
	slices.SortStableFunc(out, func(a, b *replicaInfo) int {
		if ua, ub := usableSource(a), usableSource(b); ua != ub {
			if ua {
				return -1
			}
			return 1
		}
		if d := a.received.Missing(maxRecv) - b.received.Missing(maxRecv); d != 0 {
			return sign(d)
		}
		if d := a.applied.Missing(maxApplied) - b.applied.Missing(maxApplied); d != 0 {
			return sign(d)
		}
		if a.v.Spec.Candidate != b.v.Spec.Candidate {
			if a.v.Spec.Candidate {
				return -1
			}
			return 1
		}
		if a.v.Spec.Priority != b.v.Spec.Priority {
			return b.v.Spec.Priority - a.v.Spec.Priority
		}
		return a.order - b.order
	})
	return out
}

func sign(d int64) int {
	if d < 0 {
		return -1
	}
	return 1
}

// choose picks the new primary: the operator's choice; else the passive
// co-primary; else the most advanced candidate; else the most advanced
// eligible replica (MHA's order, with catch-up making "most advanced" a
// preference rather than a requirement).
func choose(reps, ranked []*replicaInfo, old *topology.ServerView, req Request, p *Plan) (*replicaInfo, string) {
	eligible := func(r *replicaInfo) bool { return r.v.Reachable && len(r.reasons) == 0 }
	if req.NewPrimary != "" {
		for _, r := range reps {
			if r.v.Spec.Address == req.NewPrimary {
				if !eligible(r) {
					p.Blockers = append(p.Blockers, fmt.Sprintf("--new-primary %s cannot be promoted: %s", req.NewPrimary, strings.Join(r.reasons, "; ")))
					return nil, ""
				}
				return r, "chosen by the operator (--new-primary)"
			}
		}
		p.Blockers = append(p.Blockers, fmt.Sprintf("--new-primary %s is not a replica of the primary %s", req.NewPrimary, old.Spec.Address))
		return nil, ""
	}
	if old.CoPrimaryOf != "" {
		for _, r := range ranked {
			if r.v.Spec.Address == old.CoPrimaryOf && eligible(r) {
				return r, "the passive co-primary takes over from its pair"
			}
		}
	}
	for _, r := range ranked {
		if eligible(r) && r.v.Spec.Candidate {
			return r, "the most advanced replica marked candidate"
		}
	}
	for _, r := range ranked {
		if eligible(r) {
			if r == ranked[0] {
				return r, "the most advanced eligible replica"
			}
			return r, "the most advanced eligible replica; more advanced ones cannot be promoted"
		}
	}
	var why []string
	for _, r := range reps {
		why = append(why, fmt.Sprintf("%s: %s", r.v.Spec.Address, strings.Join(r.reasons, "; ")))
	}
	p.Blockers = append(p.Blockers, "no replica can be promoted ("+strings.Join(why, " | ")+")")
	return nil, ""
}

// stillReplicating lists replicas whose IO thread is still connected to the
// old primary: evidence that it is alive.
func stillReplicating(snap *topology.Snapshot, old string) []string {
	var out []string
	for _, v := range snap.Servers {
		if v.Source != old || !v.Reachable {
			continue
		}
		if c, ok := v.PrimaryConn(); ok && c.IORunning() {
			out = append(out, v.Spec.Address)
		}
	}
	return out
}

func lossEstimate(old *topology.ServerView, final binlog.Position, extra int64, req Request) Loss {
	semi := old.SemiSync.SourceActive && old.SemiSync.SourceClients > 0
	switch {
	case req.Kind == KindSwitchover:
		n := extra
		return Loss{Count: &n, Description: "none: writes stop on the old primary and the new one catches up before it is promoted"}
	case old.Reachable:
		n := final.Missing(old.ExecutedPosition()) + extra
		d := fmt.Sprintf("%d transaction(s) the primary has (%s) that no replica has received yet (most advanced received %s)", n-extra, old.ExecutedPosition(), final)
		if semi {
			d += "; semi-sync is active, so none of them was acknowledged to a client"
		}
		if extra > 0 {
			d += fmt.Sprintf("; plus %d held only by replicas that cannot follow", extra)
		}
		return Loss{Count: &n, Description: d}
	}
	d := fmt.Sprintf("unknown: the primary is unreachable; the replicas received up to %s, and whatever the primary committed after that is lost", final)
	if semi {
		d += " (semi-sync was active: no acknowledged transaction is lost)"
	}
	if extra > 0 {
		d += fmt.Sprintf("; plus %d held only by replicas that cannot follow", extra)
	}
	return Loss{Description: d}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
