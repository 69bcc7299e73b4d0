package failover

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
		return topology.Dialect{}, ""
	}
	name := ""
	if c, ok := v.PrimaryConn(); ok {
		name = c.Name
	}
	return v.Dialect, name
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
		return "unreachable: not fenced over SQL (no shutdown_script configured)", nil
	}
	d := r.view(s.Server).Dialect
	if err := r.exec(ctx, q, append([]string{"SET SESSION lock_wait_timeout=2"}, d.SetReadOnly(true)...)...); err != nil {
		return "", err
	}
	n, err := r.killSessions(ctx, q, d.ClientSessionsQuery())
	if err != nil {
		return "read_only=1", errNotFatal{fmt.Errorf("read_only=1, but listing sessions to kill failed: %w", err)}
	}
	return fmt.Sprintf("read_only=1, %d client session(s) killed", n), nil
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
	if err := r.exec(ctx, q, d.StopReplicaIO(c)); err != nil {
		if s.Server == r.plan.NewPrimary || s.Server == r.plan.CatchUpFrom {
			return "", err
		}
		return "", errNotFatal{err}
	}
	return "", nil
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

func (r *run) waitApplied(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	pos, err := r.received(ctx, q, s.Server)
	if err != nil {
		return "", err
	}
	if err := r.waitGTID(ctx, q, s.Server, pos, r.e.Policy.CatchupTimeout); err != nil {
		return "", err
	}
	return "applied " + orNone(pos), nil
}

// catchUp has the new primary replicate from the most advanced replica until
// it holds everything that one applied.
func (r *run) catchUp(ctx context.Context, s Step) (string, error) {
	src, err := r.session(ctx, s.Source)
	if err != nil {
		return "", fmt.Errorf("catch-up source %s: %w", s.Source, err)
	}
	sd := r.view(s.Source).Dialect
	rows, err := r.query(ctx, src, sd.GTIDExecutedQuery())
	if err != nil {
		return "", err
	}
	target := rows[0]["slave_pos"]
	if !sd.IsMariaDB() {
		target = rows[0]["pos"]
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
	var before, after []string
	if old != nil && old.SemiSync.SourceEnabled {
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
	if err := r.exec(ctx, q, d.SetReadOnly(false)...); err != nil {
		return "", err
	}
	r.markPromoted()
	if err := r.exec(ctx, q, after...); err != nil {
		return "read_only=0", fmt.Errorf("writable, but resetting its replication failed: %w", err)
	}
	note := "read_only=0"
	if keep {
		note += ", co-primary link kept"
	}
	return note, nil
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
			Started: r.rep.Started, Promoted: true, LastStep: string(StepPromote)}
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
	stmts := []string{d.StopReplica(c)}
	if demote && d.DemoteNeedsSlavePos() {
		stmts = append(stmts, "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos")
	}
	stmts = append(stmts, d.ChangeSource(c, topology.Source{Host: host, Port: port, User: r.e.Repl.User, Password: r.e.Repl.Password, Demote: demote}), d.StartReplica(c))
	if err := r.exec(ctx, q, stmts...); err != nil {
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
			if e := row.Get("Last_IO_Error"); e != "" && io != "Yes" && io != "Connecting" {
				return fmt.Errorf("IO thread error %s: %s", row.Get("Last_IO_Errno"), e)
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

// setReadOnly starts a switchover: writes stop on the old primary.
func (r *run) setReadOnly(ctx context.Context, s Step) (string, error) {
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	d := r.view(s.Server).Dialect
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
	d := r.view(s.Server).Dialect
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
	rows, err := r.query(ctx, q, d.GTIDExecutedQuery())
	if err != nil {
		return "", err
	}
	r.final = rows[0]["binlog_pos"]
	note := "no write was running"
	if waited {
		note = fmt.Sprintf("waited for running writes; %d session(s) killed after %s", killed, r.e.Policy.KillGrace)
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
	d := r.view(s.Server).Dialect
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
	if r.blockT.IsZero() {
		return nil
	}
	q, err := r.session(context.WithoutCancel(ctx), r.plan.OldPrimary)
	if err != nil {
		return err
	}
	d := r.view(r.plan.OldPrimary).Dialect
	return r.exec(context.WithoutCancel(ctx), q, d.SetReadOnly(false)...)
}
