package failover

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/myha/myha/topology"
)

// The switchover's own steps: writes stop on a live primary, replicas move
// below the new one first, and everything before promotion can be rolled
// back.

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
	if err := r.exec(ctx, q, d.Repoint(c, topology.Source{Host: host, Port: port, User: r.e.Repl.User, Password: r.e.Repl.Password, TLS: r.e.ReplTLS})...); err != nil {
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
