package failover

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

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
	case StepReplayCapture:
		return r.replayCapture(ctx, s)
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
	if err := r.exec(ctx, q, d.StopReplica(c), d.ChangeSource(c, topology.Source{Host: host, Port: port, User: r.e.Repl.User, Password: r.e.Repl.Password, TLS: r.e.ReplTLS}), d.StartReplica(c)); err != nil {
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
	stmts := d.Repoint(c, topology.Source{Host: host, Port: port, User: r.e.Repl.User, Password: r.e.Repl.Password, TLS: r.e.ReplTLS, Demote: demote})
	if err := r.exec(ctx, q, stmts[:len(stmts)-1]...); err != nil {
		return err
	}
	r.crash("repoint:changed@" + addr)
	if err := r.exec(ctx, q, stmts[len(stmts)-1]); err != nil {
		return err
	}
	return r.verifyReplicating(ctx, q, addr, source)
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

// warn adds a line to the report's warnings.
func (r *run) warn(format string, a ...any) {
	r.mu.Lock()
	r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf(format, a...))
	r.mu.Unlock()
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
