package failover

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/myha/myha/topology"
)

// The failover lock (GET_LOCK of LockName(cluster)) keeps two myha
// processes — a CLI and a monitor, or two monitors — from changing a cluster
// at once. GET_LOCK needs no privilege, so any account can take it; a lock
// held by an account that is not myha's is not myha's exclusion and must not
// stop a failover. Every myha process checks who holds it:
//
//   - held by another account (an application's): myha ends that session
//     (KILL CONNECTION, logged with the account and connection id) and takes
//     the lock. Ignoring the squatter instead would not block the failover,
//     but on a server where the lock cannot be taken myha has no exclusion:
//     an account holding it on every server would let a CLI failover and the
//     daemon's run together. The killed session is one that took a lock named
//     for myha's failover of this cluster, which no application has a reason
//     to hold. If the kill fails, myha goes on without the lock there and says
//     so: the lock never blocks a failover it does not belong to.
//   - held by myha's own account (another myha): respected; the failover
//     stops before any change and says who holds it and for how long, every
//     time it is blocked. A myha process that dies releases it with its
//     connection; one whose host vanished holds it until the server ends that
//     session (wait_timeout): `myha check` reports how long it has been held.

// LockHolder is the session holding a cluster's failover lock on one server.
type LockHolder struct {
	Server string `json:"server"`
	ConnID int64  `json:"connection_id"`
	// User and Host are the holder's account and client address; User is
	// empty when its session is not visible (no PROCESS privilege).
	User string `json:"user,omitempty"`
	Host string `json:"host,omitempty"`
	// Seconds is the holder session's PROCESSLIST TIME. myha's lock
	// sessions run nothing after GET_LOCK, so for them it is how long the
	// lock has been held.
	Seconds int64 `json:"seconds"`
}

// Foreign says whether the holder is known not to be myha: its account is
// not the one myha takes the lock with. An unknown holder, or no account to
// compare with, is treated as myha's (respected).
func (h *LockHolder) Foreign(account string) bool {
	return h != nil && account != "" && h.User != "" && h.User != account
}

// String names the holder for logs and reports.
func (h *LockHolder) String() string {
	if h.User == "" {
		return fmt.Sprintf("connection %d (account not visible)", h.ConnID)
	}
	return fmt.Sprintf("'%s'@'%s' (connection %d, %d s)", h.User, h.Host, h.ConnID, h.Seconds)
}

// ReadLockHolder asks a server who holds the lock; nil when it is free.
func ReadLockHolder(ctx context.Context, q topology.Querier, d topology.Dialect, addr, name string) (*LockHolder, error) {
	stmt, args := d.LockHolder(name)
	rows, err := q.Query(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("%s: reading the failover lock's holder: %d rows, want 1", addr, len(rows))
	}
	r := rows[0]
	if !r.Has("id") {
		return nil, nil
	}
	id, err := strconv.ParseInt(r["id"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: the failover lock's holder has connection id %q", addr, r["id"])
	}
	secs, _ := strconv.ParseInt(r["secs"], 10, 64)
	return &LockHolder{Server: addr, ConnID: id, User: r["user"], Host: r["host"], Seconds: secs}, nil
}

// LockResult is the outcome of AcquireLock on one server.
type LockResult struct {
	// Taken: this session holds the lock.
	Taken bool
	// Holder is myha's own (or an unidentified) holder that keeps the lock:
	// another myha is at work. Set only when not taken.
	Holder *LockHolder
	// Killed are sessions of other accounts that held the lock and were
	// ended.
	Killed []*LockHolder
	// Squatter is set when a session of another account still holds the
	// lock (its kill failed): myha goes on without the lock on this server.
	Squatter *LockHolder
}

// lockAttempts bounds how often a lock held by other accounts is fought for.
const lockAttempts = 3

// AcquireLock takes the failover lock on one server for account (the
// account myha connects as), ending sessions of other accounts that hold
// it. Every statement is bounded by ctx.
func AcquireLock(ctx context.Context, q topology.Querier, d topology.Dialect, addr, name, account string, log *slog.Logger) (LockResult, error) {
	var res LockResult
	stmt := d.GetLock(name)
	for range lockAttempts {
		rows, err := q.Query(ctx, stmt)
		if err != nil {
			return res, err
		}
		if len(rows) == 1 && rows[0]["r"] == "1" {
			res.Taken, res.Squatter = true, nil
			return res, nil
		}
		h, err := ReadLockHolder(ctx, q, d, addr, name)
		if err != nil {
			return res, err
		}
		if h == nil {
			continue // released meanwhile: try again
		}
		if !h.Foreign(account) {
			res.Holder, res.Squatter = h, nil
			return res, nil
		}
		log.Warn("the failover lock is held by an account that is not myha's: ending that session so it cannot block or race a failover",
			"server", addr, "lock", topology.LockNameLimit(name), "holder", h.User+"@"+h.Host, "connection", h.ConnID, "held_s", h.Seconds, "myha_account", account)
		res.Squatter = h
		if err := q.Exec(ctx, d.Kill(h.ConnID)); err != nil {
			log.Warn("could not end the session holding the failover lock: going on without the lock on this server",
				"server", addr, "connection", h.ConnID, "err", err)
			return res, nil
		}
		res.Killed = append(res.Killed, h)
		// The killed session releases the lock as it ends: wait for it
		// (briefly) on the next attempt.
		stmt = d.GetLockWait(name, 2)
	}
	if res.Squatter == nil {
		// Released and retaken under us every time: someone is at work;
		// treat it as another myha rather than go on unprotected.
		res.Holder = &LockHolder{Server: addr}
	}
	return res, nil
}

// staleLock is how long myha's own lock may be held before check warns: far
// longer than any failover or switchover takes.
const staleLock = 600

// lockChecks report who holds the failover lock, per server asked.
func lockChecks(s *topology.Snapshot, holders map[string]*LockHolder, account string) []Check {
	var out []Check
	for _, v := range s.Servers {
		h, asked := holders[v.Spec.Address]
		if !asked || h == nil {
			continue
		}
		c := Check{Name: "failover_lock", Server: v.Spec.Address}
		switch {
		case h.User == "":
			c.Status, c.Message = Warn, fmt.Sprintf("held by connection %d, whose account myha cannot see", h.ConnID)
			c.Fix = "GRANT PROCESS ON *.* to myha's account, so it can tell its own lock from an application's"
		case h.Foreign(account):
			c.Status = Warn
			c.Message = fmt.Sprintf("held by %s, an account that is not myha's (GET_LOCK needs no privilege): a failover ends that session and goes on", h)
			c.Fix = fmt.Sprintf("find what runs GET_LOCK('%s', ...) as %s and stop it; KILL %d ends this one", LockNameFor(s.Cluster), h.User, h.ConnID)
		case h.Seconds >= staleLock:
			c.Status = Warn
			c.Message = fmt.Sprintf("held by myha's account %s: longer than a failover takes; a myha whose host vanished may have left it, and it blocks every failover until the server ends that session", h)
			c.Fix = fmt.Sprintf("if no myha failover or switchover is running: KILL %d", h.ConnID)
		default:
			c.Status, c.Message = OK, fmt.Sprintf("held by myha's account %s: a failover or switchover is running", h)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "failover_lock", Status: OK, Message: "free on every server"})
	}
	return out
}

// LockNameFor is the lock name as the server sees it (at most 64 characters).
func LockNameFor(cluster string) string { return topology.LockNameLimit(LockName(cluster)) }
