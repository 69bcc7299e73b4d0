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

// Reading and waiting for replication positions: every step that must not
// proceed below a position goes through these.

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
