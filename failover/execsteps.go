package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

// runStep carries out one step. It returns a short note for the timeline;
// errNotFatal errors are reported and the failover goes on.
func (r *run) runStep(ctx context.Context, s Step) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	switch s.Kind {
	case StepFence:
		return r.fence(ctx, s)
	case StepStopIO:
		return r.stopIO(ctx, s)
	case StepStartSQL:
		return r.simple(ctx, s.Server, func(d topology.Dialect, c string) []string { return []string{d.StartReplicaSQL(c)} })
	case StepWaitApplied:
		return r.waitApplied(ctx, s)
	case StepCatchUp:
		return r.catchUp(ctx, s)
	case StepPromote:
		return r.promote(ctx, s)
	case StepRepoint:
		return r.repoint(ctx, s)
	case StepAttach:
		return r.attach(ctx, s)
	case StepVerify:
		return r.verifyAttached(ctx, s)
	case StepSetReadOnly:
		return r.setReadOnly(ctx, s)
	case StepKillWriters:
		return r.killWriters(ctx, s)
	case StepWaitCaughtUp:
		return r.waitCaughtUp(ctx, s)
	case StepDemote:
		return r.demote(ctx, s)
	case StepKeepPairLink:
		return r.keepPairLink(ctx, s)
	case StepMoveVIP:
		return r.moveVIP(ctx, s)
	}
	return "", fmt.Errorf("unknown step %q", s.Kind)
}

func (r *run) connName(addr string) (topology.Dialect, string) {
	v := r.view(addr)
	if v == nil {
		return r.dialect(addr), ""
	}
	name := ""
	if c, ok := v.PrimaryConn(); ok {
		name = c.Name
	}
	return r.dialect(addr), name
}

func (r *run) simple(ctx context.Context, addr string, stmts func(topology.Dialect, string) []string) (string, error) {
	q, err := r.session(ctx, addr)
	if err != nil {
		return "", err
	}
	d, c := r.connName(addr)
	return "", r.exec(ctx, q, stmts(d, c)...)
}

// fence makes the old primary read-only and ends its client sessions, or,
// when it cannot be reached, runs the STONITH hook if there is one.
func (r *run) fence(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		if sh := r.e.Hooks.ShutdownScript; sh != "" {
			o := r.e.Hooks.run(ctx, sh, mhaShutdownArgs(s.Server), nil)
			if !o.ok {
				return "", fmt.Errorf("unreachable, and the shutdown hook failed: %s", o.msg)
			}
			return "unreachable over SQL; shutdown hook ran: " + o.msg, nil
		}
		if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
			return "its host refuses connections: no server runs there to fence; it restarts with the read_only its configuration gives (myha check requires ON)", nil
		}
		msg := "NOT FENCED: unreachable over SQL and no shutdown_script configured; if it comes back it starts with whatever read_only its my.cnf says (myha check verifies read_only=ON at start; the daemon and agents fence it when it answers)"
		r.mu.Lock()
		r.rep.Warnings = append(r.rep.Warnings, "old primary "+s.Server+" "+msg)
		r.mu.Unlock()
		return msg, nil
	}
	d := r.dialect(s.Server)
	if err := r.exec(ctx, q, append([]string{"SET SESSION lock_wait_timeout=2"}, d.SetReadOnly(true)...)...); err != nil {
		return "", err
	}
	locked := ""
	if apps := r.privilegedApps(s.Server); len(apps) > 0 {
		// read_only does not stop them: a global read lock from this
		// session does, for as long as this failover runs.
		if err := r.exec(ctx, q, "FLUSH TABLES WITH READ LOCK"); err != nil {
			r.warn("old primary %s: FLUSH TABLES WITH READ LOCK failed (%v): accounts %s bypass read_only and may still write there", s.Server, err, strings.Join(apps, ", "))
		} else {
			r.mu.Lock()
			r.globalLock = true
			r.mu.Unlock()
			locked = "; global read lock held (accounts with READ ONLY ADMIN/SUPER bypass read_only)"
			r.warn("old primary %s stays reachable and accounts %s bypass read_only: it was held with a global read lock during the failover, but they can write to it again once this command ends; shut it down or revoke READ ONLY ADMIN/SUPER", s.Server, strings.Join(apps, ", "))
		}
	}
	n, err := r.killSessions(ctx, q, d.ClientSessionsQuery())
	if err != nil {
		return "read_only=1", errNotFatal{fmt.Errorf("read_only=1, but listing sessions to kill failed: %w", err)}
	}
	// Its last position: replicas receive up to it before their IO threads
	// stop, so fencing a live primary (--force) drops nothing it committed.
	final, err := r.position(ctx, q, s.Server, "binlog_pos")
	if err != nil {
		return "read_only=1", errNotFatal{fmt.Errorf("read_only=1, but reading its final position failed: %w", err)}
	}
	r.mu.Lock()
	r.final = final
	r.mu.Unlock()
	return fmt.Sprintf("read_only=1, %d client session(s) killed, final position %s%s", n, orNone(final), locked), nil
}

func (r *run) killSessions(ctx context.Context, q topology.Querier, list string) (int, error) {
	rows, err := r.query(ctx, q, list)
	if err != nil {
		return 0, err
	}
	n := 0
	d := topology.Dialect{}
	for _, row := range rows {
		id, err := strconv.ParseInt(row["ID"], 10, 64)
		if err != nil {
			continue
		}
		if err := r.exec(ctx, q, d.Kill(id)); err == nil {
			n++
		}
	}
	return n, nil
}

// stopIO freezes what a replica received. A replica that cannot be reached
// is left behind, which does not stop the failover.
func (r *run) stopIO(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", errNotFatal{fmt.Errorf("unreachable: it will be left behind: %w", err)}
	}
	d, c := r.connName(s.Server)
	note := ""
	r.mu.Lock()
	final := r.final
	r.mu.Unlock()
	if final != "" && r.plan.Kind == KindFailover {
		if err := r.waitReceived(ctx, q, s.Server, final); err != nil {
			note = "stopped before it received the old primary's final position: " + err.Error()
		} else {
			note = "received the old primary's final position " + final
		}
	}
	if err := r.exec(ctx, q, d.StopReplicaIO(c)); err != nil {
		if s.Server == r.plan.NewPrimary || s.Server == r.plan.CatchUpFrom {
			return "", err
		}
		return "", errNotFatal{err}
	}
	return note, nil
}

// waitReceived waits, bounded, until a replica's IO thread has received
// pos from the fenced old primary.
func (r *run) waitReceived(ctx context.Context, q topology.Querier, addr, pos string) error {
	deadline := time.Now().Add(min(r.e.Policy.CatchupTimeout, 10*time.Second))
	for {
		got, err := r.received(ctx, q, addr)
		if err != nil {
			return err
		}
		if _, short, err := covers(r.dialect(addr), got, pos); err != nil {
			return err
		} else if short == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("received %s within the bound, not %s", orNone(got), pos)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling the IO thread's received position
		}
	}
}

// received reads what a replica's IO thread has received (it is stopped, so
// this no longer moves).
func (r *run) received(ctx context.Context, q topology.Querier, addr string) (string, error) {
	d, name := r.connName(addr)
	rows, err := r.query(ctx, q, d.ReplicaStatusQuery())
	if err != nil {
		return "", err
	}
	for _, row := range rows {
		if row.Get("Connection_name", "Channel_Name") != name {
			continue
		}
		if d.IsMariaDB() {
			return row.Get("Gtid_IO_Pos"), nil
		}
		set, err := binlog.ParseMySQLSet(row.Get("Retrieved_Gtid_Set"))
		if err != nil {
			return "", err
		}
		exec, err := binlog.ParseMySQLSet(row.Get("Executed_Gtid_Set"))
		if err != nil {
			return "", err
		}
		return set.Union(exec).String(), nil
	}
	return "", fmt.Errorf("no replication connection %q", name)
}

// waitGTID waits until addr has applied pos, in slices, so that a SQL
// thread that stops with an error is noticed at once instead of at the
// timeout.
func (r *run) waitGTID(ctx context.Context, q topology.Querier, addr, pos string, timeout time.Duration) error {
	if pos == "" {
		return nil
	}
	d, name := r.connName(addr)
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("did not apply %s within %s (failover.catchup_timeout)", pos, timeout)
		}
		slice := min(left, time.Second)
		stmt, ok := d.WaitForGTID(pos, slice)
		wctx, cancel := context.WithTimeout(ctx, slice+r.timeout())
		rows, err := q.Query(wctx, stmt)
		cancel()
		if err != nil {
			return err
		}
		if len(rows) == 1 && rows[0]["r"] == ok {
			return nil
		}
		st, err := r.query(ctx, q, d.ReplicaStatusQuery())
		if err != nil {
			return err
		}
		for _, row := range st {
			if row.Get("Connection_name", "Channel_Name") == name && row.Get("Slave_SQL_Running", "Replica_SQL_Running") != "Yes" {
				if e := row.Get("Last_SQL_Error"); e != "" {
					return fmt.Errorf("SQL thread stopped with error %s: %s", row.Get("Last_SQL_Errno"), e)
				}
				return errors.New("SQL thread is not running: it cannot apply what it received")
			}
		}
	}
}

// waitApplied waits until a replica has applied its relay log. It waits
// for what the replica holds now, and never for less than the plan promised:
// a relay log that was discarded since discovery (a replication thread
// started while both were stopped) stops the failover before promotion.
func (r *run) waitApplied(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	pos, err := r.received(ctx, q, s.Server)
	if err != nil {
		return "", err
	}
	d := r.dialect(s.Server)
	if s.Target != "" {
		if d.IsMariaDB() && pos == "" {
			// No GTID received position (file/position replication, or
			// the IO thread never connected): what it applied is all it has.
			cur, err := r.position(ctx, q, s.Server, "slave_pos")
			if err != nil {
				return "", err
			}
			pos = cur
		}
		merged, short, err := covers(d, pos, s.Target)
		if err != nil {
			return "", err
		}
		if short != "" {
			return "", fmt.Errorf("it now holds %s, less than the %s the plan counted on (missing %s): its relay log was lost since discovery; run the command again to plan from what is left", orNone(pos), s.Target, short)
		}
		pos = merged
	}
	if err := r.waitGTID(ctx, q, s.Server, pos, r.e.Policy.CatchupTimeout); err != nil {
		return "", err
	}
	return "applied " + orNone(pos), nil
}

// position reads one of the GTIDExecutedQuery columns (pos, binlog_pos,
// slave_pos) from a server.
func (r *run) position(ctx context.Context, q topology.Querier, addr, col string) (string, error) {
	d := r.dialect(addr)
	rows, err := r.query(ctx, q, d.GTIDExecutedQuery())
	if err != nil {
		return "", err
	}
	if len(rows) != 1 {
		return "", fmt.Errorf("reading its GTID position returned %d rows", len(rows))
	}
	if !d.IsMariaDB() {
		col = "pos"
	}
	return rows[0][col], nil
}

// covers checks that have holds everything in want; it returns their merge
// and, when have falls short, what is missing.
func covers(d topology.Dialect, have, want string) (merged, short string, err error) {
	f := binlog.MariaDB
	if !d.IsMariaDB() {
		f = binlog.MySQL
	}
	h, err := binlog.ParsePosition(f, have)
	if err != nil {
		return "", "", err
	}
	w, err := binlog.ParsePosition(f, want)
	if err != nil {
		return "", "", err
	}
	if h.Missing(w) > 0 {
		return h.Merge(w).String(), missingText(h, w), nil
	}
	return h.Merge(w).String(), "", nil
}

// catchUp has the new primary replicate from the most advanced replica until
// it holds everything that one applied.
func (r *run) catchUp(ctx context.Context, s Step) (string, error) {
	src, err := r.session(ctx, s.Source)
	if err != nil {
		return "", fmt.Errorf("catch-up source %s: %w", s.Source, err)
	}
	target, err := r.position(ctx, src, s.Source, "slave_pos")
	if err != nil {
		return "", fmt.Errorf("catch-up source %s: %w", s.Source, err)
	}
	if s.Target != "" {
		// The target is the merge of the new primary's own position and
		// the source's: only the source's part must be on the source.
		merged, _, err := covers(r.dialect(s.Source), target, s.Target)
		if err != nil {
			return "", err
		}
		target = merged
	}
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	d, c := r.connName(s.Server)
	host, port := splitHostPort(s.Source)
	if err := r.exec(ctx, q, d.StopReplica(c), d.ChangeSource(c, topology.Source{Host: host, Port: port, User: r.e.Repl.User, Password: r.e.Repl.Password}), d.StartReplica(c)); err != nil {
		return "", err
	}
	if err := r.waitGTID(ctx, q, s.Server, target, r.e.Policy.CatchupTimeout); err != nil {
		return "", err
	}
	if err := r.exec(ctx, q, d.StopReplica(c)); err != nil {
		return "", err
	}
	return "caught up to " + target, nil
}

// promote makes the chosen server the primary. From here on the cluster
// takes writes again. In a switchover the old primary is fenced and the new
// one has applied its final position, so writes are opened first and
// replication is reset after, which shortens the write-blocked window; a
// failover stops replication first, since its old primary may come back.
func (r *run) promote(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	d, c := r.connName(s.Server)
	old := r.view(r.plan.OldPrimary)
	keep := r.plan.Kind == KindSwitchover && old != nil && old.CoPrimaryOf == s.Server
	if s.Target != "" && r.plan.Kind == KindFailover {
		// Never promote below what the plan promised.
		have, err := r.position(ctx, q, s.Server, "pos")
		if err != nil {
			return "", err
		}
		if _, short, err := covers(d, have, s.Target); err != nil {
			return "", err
		} else if short != "" {
			return "", fmt.Errorf("it holds %s, less than the planned %s (missing %s): not promoted", orNone(have), s.Target, short)
		}
	}
	if r.plan.Kind == KindFailover {
		if err := r.intendPromotion(); err != nil {
			return "", err
		}
	}
	var before, after []string
	if r.semiSyncOn(s.Server) {
		if r.plan.Kind == KindFailover {
			before = append(before, d.SemiSyncLossless()) // a switchover set it before writes stopped
		}
		before = append(before, d.SemiSyncPrimaryOn())
	}
	switch {
	case keep:
	case r.plan.Kind == KindSwitchover:
		after = append(after, d.StopReplica(c), d.ResetReplicaAll(c))
	default:
		before = append([]string{d.StopReplica(c), d.ResetReplicaAll(c)}, before...)
	}
	if err := r.exec(ctx, q, before...); err != nil {
		return "", err
	}
	r.crash("promote:intent@" + s.Server)
	if err := r.exec(ctx, q, d.SetReadOnly(false)...); err != nil {
		return "", err
	}
	r.crash("promote:writable@" + s.Server)
	r.markPromoted()
	if r.plan.Kind == KindSwitchover {
		// A switchover records the promotion after read_only=0, outside
		// the write-blocked window: its old primary is alive and fenced,
		// so no rerun can promote a second server meanwhile.
		if r.e.BeforePromote != nil {
			if err := r.e.BeforePromote(); err != nil {
				r.mu.Lock()
				r.rep.Warnings = append(r.rep.Warnings, "the promotion could not be recorded: "+err.Error())
				r.mu.Unlock()
			}
		}
		r.releaseOldPrimaryLock(ctx)
	}
	if err := r.exec(ctx, q, after...); err != nil {
		return "read_only=0", fmt.Errorf("writable, but resetting its replication failed: %w", err)
	}
	note := "read_only=0"
	if keep {
		note += ", co-primary link kept"
	}
	return note, nil
}

// intendPromotion records, durably and before read_only=0, that this
// failover promotes plan.NewPrimary: a crash from here on leaves a journal that makes
// the rerun finish this promotion rather than plan a second one, and the
// daemon commits the same intent to raft (BeforePromote).
func (r *run) intendPromotion() error {
	if r.e.Store != nil {
		j := &InProgress{ID: r.rep.ID, Epoch: r.rep.Epoch, Kind: r.plan.Kind, OldPrimary: r.plan.OldPrimary, NewPrimary: r.plan.NewPrimary,
			Started: r.rep.Started, Promoted: true, LastStep: "promote (intent recorded before read_only=0)"}
		if err := r.e.Store.SaveJournal(r.plan.Cluster, j); err != nil {
			return fmt.Errorf("cannot record the promotion in the journal before making it writable: %w", err)
		}
	}
	if r.e.BeforePromote != nil {
		if err := r.e.BeforePromote(); err != nil {
			return fmt.Errorf("the promotion could not be recorded: %w", err)
		}
	}
	return nil
}

// semiSyncOn says whether the new primary switches the semi-sync primary
// side on (Policy.SemiSync).
func (r *run) semiSyncOn(addr string) bool {
	switch r.e.Policy.SemiSync {
	case "on":
		return true
	case "off":
		return false
	}
	if old := r.view(r.plan.OldPrimary); old != nil && (old.Reachable || old.Remembered) {
		return old.SemiSync.SourceEnabled
	}
	v := r.view(addr)
	return v != nil && v.SemiSync.ReplicaOn
}

func (r *run) markPromoted() {
	now := time.Now()
	r.mu.Lock()
	r.rep.Promoted = true
	w := msSince(r.start, now)
	r.rep.WritableAfterMS = &w
	if !r.blockT.IsZero() {
		b := msSince(r.blockT, now)
		r.rep.WriteBlockedMS = &b
	}
	r.mu.Unlock()
	if r.e.OnPromoted != nil {
		r.e.OnPromoted()
	}
	if r.e.Store != nil {
		j := &InProgress{ID: r.rep.ID, Epoch: r.rep.Epoch, Kind: r.plan.Kind, OldPrimary: r.plan.OldPrimary, NewPrimary: r.plan.NewPrimary,
			Started: r.rep.Started, Promoted: true, Writable: true, LastStep: string(StepPromote)}
		if err := r.e.Store.SaveJournal(r.plan.Cluster, j); err != nil {
			r.mu.Lock()
			r.rep.Warnings = append(r.rep.Warnings, "could not record the promotion in the journal: "+err.Error())
			r.mu.Unlock()
		}
	}
}

// pointAt repoints a server at the new primary and checks that both threads
// run against it.
func (r *run) pointAt(ctx context.Context, addr, source string, demote bool) error {
	q, err := r.session(ctx, addr)
	if err != nil {
		return err
	}
	d, c := r.connName(addr)
	host, port := splitHostPort(source)
	stmts := d.Repoint(c, topology.Source{Host: host, Port: port, User: r.e.Repl.User, Password: r.e.Repl.Password, Demote: demote})
	if err := r.exec(ctx, q, stmts[:len(stmts)-1]...); err != nil {
		return err
	}
	r.crash("repoint:changed@" + addr)
	if err := r.exec(ctx, q, stmts[len(stmts)-1]); err != nil {
		return err
	}
	return r.verifyReplicating(ctx, q, addr, source)
}

// verifyReplicating waits until both threads run against the expected source.
func (r *run) verifyReplicating(ctx context.Context, q topology.Querier, addr, source string) error {
	d, name := r.connName(addr)
	want := r.view(source)
	deadline := time.Now().Add(min(r.e.Policy.CatchupTimeout, 30*time.Second))
	for {
		rows, err := r.query(ctx, q, d.ReplicaStatusQuery())
		if err != nil {
			return err
		}
		for _, row := range rows {
			if row.Get("Connection_name", "Channel_Name") != name {
				continue
			}
			io, sql := row.Get("Slave_IO_Running", "Replica_IO_Running"), row.Get("Slave_SQL_Running", "Replica_SQL_Running")
			id := row.Get("Master_Server_Id", "Source_Server_Id")
			if io == "Yes" && sql == "Yes" && (want == nil || id == strconv.FormatUint(uint64(want.ServerID), 10)) {
				return nil
			}
			// START SLAVE clears the last errors, so an error now is
			// fresh: a source that refuses or is dead is reported at once
			// rather than after the whole verify bound (the IO thread would
			// only retry after MASTER_CONNECT_RETRY).
			if e := row.Get("Last_IO_Error"); e != "" && io != "Yes" {
				return fmt.Errorf("IO thread (%s) error %s: %s", io, row.Get("Last_IO_Errno"), e)
			}
			if e := row.Get("Last_SQL_Error"); e != "" {
				return fmt.Errorf("SQL thread error %s: %s", row.Get("Last_SQL_Errno"), e)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not replicating from %s with both threads running", source)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling the replica's thread state
		}
	}
}

func (r *run) repoint(ctx context.Context, s Step) (string, error) {
	if r.plan.Kind == KindSwitchover && r.final != "" {
		// It must have everything of the old primary before it moves.
		q, err := r.session(ctx, s.Server)
		if err != nil {
			return "", err
		}
		if err := r.waitGTID(ctx, q, s.Server, r.final, r.e.Policy.CatchupTimeout); err != nil {
			return "", err
		}
	}
	if err := r.pointAt(ctx, s.Server, s.Source, false); err != nil {
		return "", err
	}
	return "replicating from " + s.Source, nil
}

// attach chains a replica below the switchover's new primary while the
// old primary still takes writes: stop it, wait until the new primary has
// applied everything the replica had (so the replica never asks it for a
// position it lacks), then repoint it. Verification comes after promotion.
func (r *run) attach(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	np, err := r.session(ctx, s.Source)
	if err != nil {
		return "", fmt.Errorf("new primary %s: %w", s.Source, err)
	}
	d, c := r.connName(s.Server)
	if err := r.exec(ctx, q, d.StopReplica(c)); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.attached = append(r.attached, s.Server)
	r.mu.Unlock()
	pos, err := r.position(ctx, q, s.Server, "pos")
	if err != nil {
		return "", err
	}
	if err := r.waitGTID(ctx, np, s.Source, pos, r.e.Policy.CatchupTimeout); err != nil {
		return "", fmt.Errorf("the new primary did not reach this replica's position %s: %w", pos, err)
	}
	host, port := splitHostPort(s.Source)
	if err := r.exec(ctx, q, d.Repoint(c, topology.Source{Host: host, Port: port, User: r.e.Repl.User, Password: r.e.Repl.Password})...); err != nil {
		return "", err
	}
	// Proven connected before writes stop: a replica that cannot log in to
	// the new primary rolls the switchover back while nothing is blocked.
	if err := r.verifyReplicating(ctx, q, s.Server, s.Source); err != nil {
		return "", err
	}
	return "chained below " + s.Source + " from " + orNone(pos), nil
}

// verifyAttached checks, after promotion, that a replica attached to the
// new primary received the old primary's final position through it and
// runs both threads against it.
func (r *run) verifyAttached(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	if r.final != "" {
		if err := r.waitGTID(ctx, q, s.Server, r.final, r.e.Policy.CatchupTimeout); err != nil {
			return "", err
		}
	}
	if err := r.verifyReplicating(ctx, q, s.Server, s.Source); err != nil {
		return "", err
	}
	return "replicating from " + s.Source + ", has " + orNone(r.final), nil
}

// warn adds a line to the report's warnings.
func (r *run) warn(format string, a ...any) {
	r.mu.Lock()
	r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

// privilegedApps lists the accounts on a server that read_only does not
// stop, myha's own accounts aside (Executor.Accounts).
func (r *run) privilegedApps(addr string) []string {
	v := r.view(addr)
	if v == nil {
		return nil
	}
	var out []string
	for _, g := range v.PrivilegedAccounts {
		user := strings.Trim(strings.SplitN(g, "@", 2)[0], "'`")
		if user != "root" && user != "mariadb.sys" && !slices.Contains(r.e.Accounts, user) {
			out = append(out, g)
		}
	}
	return out
}

// releaseOldPrimaryLock ends the switchover's global read lock on the old
// primary once the new one takes writes: client sessions still blocked by
// it are killed first, so a write that waited on the lock fails instead of
// committing on what is now a replica.
func (r *run) releaseOldPrimaryLock(ctx context.Context) {
	r.mu.Lock()
	held := r.globalLock
	r.mu.Unlock()
	if !held {
		return
	}
	q, err := r.session(ctx, r.plan.OldPrimary)
	if err != nil {
		return
	}
	if _, err := r.killSessions(ctx, q, r.dialect(r.plan.OldPrimary).ClientSessionsQuery()); err != nil {
		r.mu.Lock()
		r.rep.Warnings = append(r.rep.Warnings, "killing client sessions on the old primary before releasing its global read lock: "+err.Error())
		r.mu.Unlock()
	}
	if err := r.unlockGlobal(ctx, q); err != nil {
		r.mu.Lock()
		r.rep.Warnings = append(r.rep.Warnings, "releasing the old primary's global read lock: "+err.Error())
		r.mu.Unlock()
	}
}

// unlockGlobal releases the switchover's global read lock, if held, on the
// old primary's working session.
func (r *run) unlockGlobal(ctx context.Context, q topology.Querier) error {
	r.mu.Lock()
	held := r.globalLock
	r.globalLock = false
	r.mu.Unlock()
	if !held {
		return nil
	}
	return r.exec(ctx, q, "UNLOCK TABLES")
}

// setReadOnly starts a switchover: writes stop on the old primary.
func (r *run) setReadOnly(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	d := r.dialect(s.Server)
	if err := r.exec(ctx, q, "SET SESSION lock_wait_timeout=2"); err != nil {
		return "", err
	}
	t := time.Now()
	if err := r.exec(ctx, q, d.SetReadOnly(true)...); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.blockT = t
	r.mu.Unlock()
	return "read_only=1", nil
}

// killWriters lets writes still running on the old primary finish (or fail
// on read_only) for up to the grace period, moving on as soon as none are
// left, then kills the rest and reads the old primary's final position.
func (r *run) killWriters(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	d := r.dialect(s.Server)
	deadline := time.Now().Add(r.e.Policy.KillGrace)
	killed, waited := 0, false
	for {
		rows, err := r.query(ctx, q, d.WritingSessionsQuery())
		if err != nil {
			return "", err
		}
		if len(rows) == 0 {
			break
		}
		if time.Now().After(deadline) {
			if killed, err = r.killSessions(ctx, q, d.WritingSessionsQuery()); err != nil {
				return "", err
			}
			break
		}
		waited = true
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(5 * time.Millisecond): // polling for running writes to end
		}
	}
	if apps := r.privilegedApps(s.Server); len(apps) > 0 {
		// read_only does not stop these accounts: a global read lock from
		// this session does, until the old primary is demoted (bounded by
		// lock_wait_timeout; a failure rolls the switchover back).
		if err := r.exec(ctx, q, "FLUSH TABLES WITH READ LOCK"); err != nil {
			return "", fmt.Errorf("FLUSH TABLES WITH READ LOCK (accounts %s bypass read_only): %w", strings.Join(apps, ", "), err)
		}
		r.mu.Lock()
		r.globalLock = true
		r.mu.Unlock()
	}
	final, err := r.position(ctx, q, s.Server, "binlog_pos")
	if err != nil {
		return "", err
	}
	r.final = final
	note := "no write was running"
	if waited {
		note = fmt.Sprintf("waited for running writes; %d session(s) killed after %s", killed, r.e.Policy.KillGrace)
	}
	if r.globalLock {
		note += "; global read lock held (accounts with READ ONLY ADMIN/SUPER bypass read_only)"
	}
	return note + "; final position " + orNone(r.final), nil
}

func (r *run) waitCaughtUp(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	if err := r.waitGTID(ctx, q, s.Server, r.final, r.e.Policy.CatchupTimeout); err != nil {
		return "", err
	}
	return "applied " + orNone(r.final), nil
}

func (r *run) demote(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	if err := r.unlockGlobal(ctx, q); err != nil {
		return "", err
	}
	d := r.dialect(s.Server)
	if v := r.view(s.Server); v.SemiSync.SourceEnabled {
		if err := r.exec(ctx, q, d.SemiSyncPrimaryOff()); err != nil {
			return "", err
		}
	}
	if err := r.pointAt(ctx, s.Server, s.Source, true); err != nil {
		return "", err
	}
	return "read-only replica of " + s.Source, nil
}

func (r *run) keepPairLink(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	if err := r.unlockGlobal(ctx, q); err != nil {
		return "", errNotFatal{err}
	}
	if err := r.verifyReplicating(ctx, q, s.Server, s.Source); err != nil {
		return "", errNotFatal{err}
	}
	return "replicating from " + s.Source, nil
}

// moveVIP moves the address through the MHA-compatible script, or leaves
// it to the agents (vip.method: agent), which follow the monitors' lease.
func (r *run) moveVIP(ctx context.Context, s Step) (string, error) {
	script, args := r.e.Hooks.MasterIPFailoverScript, mhaFailoverArgs("start", r.plan.OldPrimary, s.Server, r.e.Repl.User)
	if r.plan.Kind == KindSwitchover {
		script, args = r.e.Hooks.MasterIPOnlineChangeScript, mhaOnlineChangeArgs("start", r.plan.OldPrimary, s.Server, r.e.Repl.User)
	}
	if script == "" {
		if r.e.Policy.VIPByAgents {
			return "the agents move the VIP once the monitors lease it to the new primary", nil
		}
		return "", errNotFatal{errors.New("no VIP mover: set vip.method: agent and run myha agent, or configure master_ip_failover_script / master_ip_online_change_script")}
	}
	o := r.e.Hooks.run(ctx, script, args, nil)
	switch {
	case !o.ok:
		return "", errNotFatal{errors.New(o.msg)}
	case o.warn:
		return "", errNotFatal{errors.New(o.msg)}
	}
	return "script ran", nil
}

// mhaPre runs the MHA scripts' "stop" phase before any change.
func (r *run) mhaPre(ctx context.Context) error {
	script, args := r.e.Hooks.MasterIPFailoverScript, mhaFailoverArgs("stop", r.plan.OldPrimary, r.plan.NewPrimary, r.e.Repl.User)
	if r.plan.Kind == KindSwitchover {
		script, args = r.e.Hooks.MasterIPOnlineChangeScript, mhaOnlineChangeArgs("stop", r.plan.OldPrimary, r.plan.NewPrimary, r.e.Repl.User)
	}
	if script == "" {
		return nil
	}
	o := r.e.Hooks.run(ctx, script, args, nil)
	if !o.ok {
		return fmt.Errorf("%s --command=stop failed: %s", script, o.msg)
	}
	if o.warn {
		r.rep.Warnings = append(r.rep.Warnings, o.msg)
	}
	return nil
}

// rollbackSwitchover makes the old primary writable again. Nothing else has
// changed before promotion.
func (r *run) rollbackSwitchover(ctx context.Context) error {
	// Replicas already attached to the new primary go back to the old one
	// (they hold nothing it lacks: writes never opened on the new one).
	r.mu.Lock()
	attached := append([]string(nil), r.attached...)
	r.mu.Unlock()
	for _, addr := range attached {
		if err := r.pointAt(context.WithoutCancel(ctx), addr, r.plan.OldPrimary, false); err != nil {
			return fmt.Errorf("could not point %s back at %s: %w", addr, r.plan.OldPrimary, err)
		}
	}
	if r.blockT.IsZero() {
		return nil // writes never stopped on the old primary
	}
	if q, err := r.session(context.WithoutCancel(ctx), r.plan.OldPrimary); err == nil {
		if err := r.unlockGlobal(context.WithoutCancel(ctx), q); err != nil {
			return err
		}
	}
	q, err := r.session(context.WithoutCancel(ctx), r.plan.OldPrimary)
	if err != nil {
		return err
	}
	d := r.dialect(r.plan.OldPrimary)
	return r.exec(context.WithoutCancel(ctx), q, d.SetReadOnly(false)...)
}
