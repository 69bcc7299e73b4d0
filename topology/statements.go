package topology

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The statements that change servers, per flavor. Values are quoted with
// QuoteLiteral (CHANGE MASTER takes no placeholders); errors name only the
// statement's first words, never its text, so passwords stay out of logs.

func (d Dialect) mysqlNewSyntax() bool { return !d.IsMariaDB() && d.AtLeast(8, 0, 23) }

func (d Dialect) connName(conn string) string {
	if conn == "" {
		return ""
	}
	return " " + QuoteLiteral(conn)
}

func (d Dialect) channel(conn string) string {
	if conn == "" {
		return ""
	}
	return " FOR CHANNEL " + QuoteLiteral(conn)
}

// StopReplicaIO stops the IO thread of one connection.
func (d Dialect) StopReplicaIO(conn string) string {
	switch {
	case d.IsMariaDB():
		return "STOP SLAVE" + d.connName(conn) + " IO_THREAD"
	case d.AtLeast(8, 0, 22):
		return "STOP REPLICA IO_THREAD" + d.channel(conn)
	}
	return "STOP SLAVE IO_THREAD" + d.channel(conn)
}

// StopReplica stops both threads of one connection.
func (d Dialect) StopReplica(conn string) string {
	switch {
	case d.IsMariaDB():
		return "STOP SLAVE" + d.connName(conn)
	case d.AtLeast(8, 0, 22):
		return "STOP REPLICA" + d.channel(conn)
	}
	return "STOP SLAVE" + d.channel(conn)
}

// StartReplica starts both threads of one connection.
func (d Dialect) StartReplica(conn string) string {
	switch {
	case d.IsMariaDB():
		return "START SLAVE" + d.connName(conn)
	case d.AtLeast(8, 0, 22):
		return "START REPLICA" + d.channel(conn)
	}
	return "START SLAVE" + d.channel(conn)
}

// StartReplicaSQL starts the SQL thread only.
func (d Dialect) StartReplicaSQL(conn string) string {
	switch {
	case d.IsMariaDB():
		return "START SLAVE" + d.connName(conn) + " SQL_THREAD"
	case d.AtLeast(8, 0, 22):
		return "START REPLICA SQL_THREAD" + d.channel(conn)
	}
	return "START SLAVE SQL_THREAD" + d.channel(conn)
}

// ResetReplicaAll forgets a connection entirely (a promoted server must not
// reconnect to its old source after a restart).
func (d Dialect) ResetReplicaAll(conn string) string {
	switch {
	case d.IsMariaDB():
		return "RESET SLAVE" + d.connName(conn) + " ALL"
	case d.AtLeast(8, 0, 22):
		return "RESET REPLICA ALL" + d.channel(conn)
	}
	return "RESET SLAVE ALL" + d.channel(conn)
}

// Source is a CHANGE MASTER target.
type Source struct {
	Host     string
	Port     int
	User     string
	Password string
	// Demote makes a former primary a replica (MariaDB 10.10+
	// MASTER_DEMOTE_TO_SLAVE=1: its own transactions join gtid_slave_pos).
	Demote bool
	// TLS is the cluster's TLS setting: with required and above the
	// replica connects with TLS and verifies its source as the mode says.
	TLS TLSSpec
}

// replicationTLS renders the CHANGE MASTER options for the TLS mode, with
// the option prefix of the flavor ("MASTER" or "SOURCE"). Disabled and
// preferred leave the replica's own settings alone: MariaDB's MASTER_SSL=1
// insists on TLS, which preferred does not. Required and verify-ca verify
// the chain (the server does so whenever a CA is set) but not the host;
// verify-full sets *_SSL_VERIFY_SERVER_CERT=1. Without ca_file the replica
// keeps the CA it was given before.
func replicationTLS(prefix string, t TLSSpec) string {
	m := t.mode()
	if !m.Verified() {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, ", %s_SSL=1", prefix)
	if t.CAFile != "" {
		fmt.Fprintf(&b, ", %s_SSL_CA=%s", prefix, QuoteLiteral(t.CAFile))
	}
	fmt.Fprintf(&b, ", %s_SSL_VERIFY_SERVER_CERT=%d", prefix, b2i(m == TLSVerifyFull))
	return b.String()
}

// ChangeSource points a connection at a new source with GTID positioning,
// with fast reconnects and heartbeats so a dead source is noticed quickly.
func (d Dialect) ChangeSource(conn string, s Source) string {
	if d.IsMariaDB() {
		var b strings.Builder
		fmt.Fprintf(&b, "CHANGE MASTER%s TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
			d.connName(conn), QuoteLiteral(s.Host), s.Port, QuoteLiteral(s.User), QuoteLiteral(s.Password))
		if s.Demote && d.AtLeast(10, 10, 0) {
			b.WriteString(", MASTER_DEMOTE_TO_SLAVE=1")
		}
		b.WriteString(replicationTLS("MASTER", s.TLS))
		return b.String()
	}
	if d.mysqlNewSyntax() {
		// The RSA key exchange is for plain connections; over verified
		// TLS the password travels inside it.
		key := ", GET_SOURCE_PUBLIC_KEY=1"
		if s.TLS.mode().Verified() {
			key = ""
		}
		return fmt.Sprintf("CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%d, SOURCE_USER=%s, SOURCE_PASSWORD=%s, SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1%s%s%s",
			QuoteLiteral(s.Host), s.Port, QuoteLiteral(s.User), QuoteLiteral(s.Password), key, replicationTLS("SOURCE", s.TLS), d.channel(conn))
	}
	return fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_AUTO_POSITION=1, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1%s%s",
		QuoteLiteral(s.Host), s.Port, QuoteLiteral(s.User), QuoteLiteral(s.Password), replicationTLS("MASTER", s.TLS), d.channel(conn))
}

// Repoint is the whole statement list that makes a server replicate from
// a new source: stop, (for a demoted MariaDB before 10.10, whose
// MASTER_DEMOTE_TO_SLAVE does not exist, take its own binlog position as
// its replication position first), change source, start. Every path that
// demotes or repoints a server (the executor, the daemon's rejoin) uses it.
func (d Dialect) Repoint(conn string, s Source) []string {
	stmts := []string{d.StopReplica(conn)}
	if s.Demote && d.DemoteNeedsSlavePos() {
		stmts = append(stmts, "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos")
	}
	return append(stmts, d.ChangeSource(conn, s), d.StartReplica(conn))
}

// DemoteNeedsSlavePos says whether a demoted MariaDB server must get
// gtid_slave_pos set by hand (before 10.10 there is no MASTER_DEMOTE_TO_SLAVE).
func (d Dialect) DemoteNeedsSlavePos() bool { return d.IsMariaDB() && !d.AtLeast(10, 10, 0) }

// SetReadOnly fences (on) or opens (off) a server for writes. On MySQL
// super_read_only is set with read_only, in the order the server accepts.
func (d Dialect) SetReadOnly(on bool) []string {
	if d.IsMariaDB() {
		return []string{fmt.Sprintf("SET GLOBAL read_only=%d", b2i(on))}
	}
	if on {
		return []string{"SET GLOBAL super_read_only=1"}
	}
	return []string{"SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"}
}

// WaitForGTID returns a query that waits until pos is applied, at most
// timeout, and the value it returns on success. MariaDB's MASTER_GTID_WAIT
// watches gtid_slave_pos, so it is only meaningful on a replica.
func (d Dialect) WaitForGTID(pos string, timeout time.Duration) (query, okValue string) {
	secs := strconv.FormatFloat(timeout.Seconds(), 'f', 3, 64)
	if d.IsMariaDB() {
		return fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, %s) AS r", QuoteLiteral(pos), secs), "0"
	}
	return fmt.Sprintf("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS r", QuoteLiteral(pos), secs), "0"
}

// SemiSyncPrimaryOn switches the semi-sync primary side on, on the server
// that becomes primary (and only there: on a replica it stalls the SQL thread).
func (d Dialect) SemiSyncPrimaryOn() string {
	if !d.IsMariaDB() && d.AtLeast(8, 0, 26) {
		return "SET GLOBAL rpl_semi_sync_source_enabled=1"
	}
	return "SET GLOBAL rpl_semi_sync_master_enabled=1"
}

// SemiSyncLossless makes the semi-sync primary wait for a replica's ack
// before committing (AFTER_SYNC): with AFTER_COMMIT, MariaDB's default, a
// transaction other sessions have already seen can be lost.
func (d Dialect) SemiSyncLossless() string {
	if !d.IsMariaDB() && d.AtLeast(8, 0, 26) {
		return "SET GLOBAL rpl_semi_sync_source_wait_point=AFTER_SYNC"
	}
	return "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC"
}

// SemiSyncPrimaryOff is the reverse, for a demoted primary.
func (d Dialect) SemiSyncPrimaryOff() string {
	if !d.IsMariaDB() && d.AtLeast(8, 0, 26) {
		return "SET GLOBAL rpl_semi_sync_source_enabled=0"
	}
	return "SET GLOBAL rpl_semi_sync_master_enabled=0"
}

// ClientSessionsQuery lists client sessions that fencing kills: everything
// but this session, replication threads and server daemons.
func (d Dialect) ClientSessionsQuery() string {
	return "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() " +
		"AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker', 'Killed') " +
		"AND USER NOT IN ('system user', 'event_scheduler')"
}

// WritingSessionsQuery lists sessions with an open write transaction or a
// running statement that is not a read: what a switchover kills after its
// grace period.
func (d Dialect) WritingSessionsQuery() string {
	return "SELECT DISTINCT p.ID FROM information_schema.PROCESSLIST p " +
		"LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID " +
		"WHERE p.ID <> CONNECTION_ID() AND p.COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon') " +
		"AND p.USER NOT IN ('system user', 'event_scheduler') " +
		"AND (t.trx_id IS NOT NULL OR (p.COMMAND = 'Query' AND UPPER(LEFT(LTRIM(p.INFO), 6)) NOT IN ('SELECT', 'SHOW ')))"
}

// Kill ends a session.
func (d Dialect) Kill(id int64) string { return fmt.Sprintf("KILL CONNECTION %d", id) }

// LockNameLimit cuts a lock name to the 64 characters GET_LOCK accepts.
func LockNameLimit(name string) string {
	if len(name) > 64 {
		return name[:64]
	}
	return name
}

// GetLock takes a named advisory lock without waiting; it returns 1 when
// taken. Lock names are limited to 64 characters.
func (d Dialect) GetLock(name string) string {
	return "SELECT GET_LOCK(" + QuoteLiteral(LockNameLimit(name)) + ", 0) AS r"
}

// GetLockWait is GetLock waiting up to secs seconds for the holder to go.
func (d Dialect) GetLockWait(name string, secs int) string {
	return fmt.Sprintf("SELECT GET_LOCK(%s, %d) AS r", QuoteLiteral(LockNameLimit(name)), secs)
}

// LockInUse asks whether someone holds a named advisory lock (NULL = free).
func (d Dialect) LockInUse(name string) string {
	return "SELECT IS_USED_LOCK(" + QuoteLiteral(LockNameLimit(name)) + ") AS r"
}

// LockHolder asks who holds a named advisory lock, with the name as a bound
// parameter: column id is the holder's connection (absent when the lock is
// free), user and host its account and client address, secs how long its
// session has been in its current state (PROCESSLIST TIME). user is absent
// when the holder's session is not visible to this account (no PROCESS).
func (d Dialect) LockHolder(name string) (string, []any) {
	return "SELECT l.id AS id, p.USER AS user, p.HOST AS host, p.TIME AS secs " +
		"FROM (SELECT IS_USED_LOCK(?) AS id) l LEFT JOIN information_schema.PROCESSLIST p ON p.ID = l.id", []any{LockNameLimit(name)}
}

// GTIDExecutedQuery reads what a server has applied, in its flavor's form.
func (d Dialect) GTIDExecutedQuery() string {
	if d.IsMariaDB() {
		return "SELECT @@gtid_current_pos AS pos, @@gtid_binlog_pos AS binlog_pos, @@gtid_slave_pos AS slave_pos"
	}
	return "SELECT @@gtid_executed AS pos, @@gtid_executed AS binlog_pos, '' AS slave_pos"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
