package topology

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/myha/myha/binlog"
)

// Dialect is the one place that knows how MariaDB and MySQL 8.0/8.4 spell the
// same operation. Everything that sends SQL asks a Dialect for the statement.
type Dialect struct {
	Flavor              binlog.Flavor
	Major, Minor, Patch int
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)`)

// DialectFor identifies the server from @@version and @@version_comment.
func DialectFor(version, comment string) (Dialect, error) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return Dialect{}, fmt.Errorf("cannot parse server version %q", version)
	}
	d := Dialect{Flavor: binlog.MySQL}
	d.Major, _ = strconv.Atoi(m[1])
	d.Minor, _ = strconv.Atoi(m[2])
	d.Patch, _ = strconv.Atoi(m[3])
	if strings.Contains(strings.ToLower(version+" "+comment), "mariadb") {
		d.Flavor = binlog.MariaDB
	}
	return d, nil
}

// AtLeast reports whether the server version is >= major.minor.patch.
func (d Dialect) AtLeast(major, minor, patch int) bool {
	if d.Major != major {
		return d.Major > major
	}
	if d.Minor != minor {
		return d.Minor > minor
	}
	return d.Patch >= patch
}

// Version renders major.minor.patch.
func (d Dialect) Version() string { return fmt.Sprintf("%d.%d.%d", d.Major, d.Minor, d.Patch) }

// IsMariaDB is a shorthand for the flavor test.
func (d Dialect) IsMariaDB() bool { return d.Flavor == binlog.MariaDB }

// VersionQuery is the first statement sent to any server, before its flavor is known.
const VersionQuery = "SELECT @@version AS version, @@version_comment AS comment"

// discoveryVariables are read in one round trip; names a flavor lacks are
// simply absent from the answer.
var discoveryVariables = []string{
	"server_id", "server_uuid", "hostname", "port", "read_only", "super_read_only",
	"log_bin", "log_slave_updates", "log_replica_updates", "binlog_format",
	"gtid_binlog_pos", "gtid_binlog_state", "gtid_slave_pos", "gtid_current_pos", "gtid_strict_mode", "gtid_domain_id",
	"gtid_mode", "gtid_executed", "enforce_gtid_consistency",
	"sync_binlog", "innodb_flush_log_at_trx_commit", "slave_net_timeout", "replica_net_timeout",
	"rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled",
	"rpl_semi_sync_source_enabled", "rpl_semi_sync_replica_enabled",
	"rpl_semi_sync_master_timeout", "rpl_semi_sync_source_timeout",
	"rpl_semi_sync_master_wait_point", "rpl_semi_sync_source_wait_point",
	"binlog_row_image", "report_host",
}

var discoveryStatus = []string{
	"Rpl_semi_sync_master_status", "Rpl_semi_sync_master_clients", "Rpl_semi_sync_slave_status",
	"Rpl_semi_sync_source_status", "Rpl_semi_sync_source_clients", "Rpl_semi_sync_replica_status",
	"Uptime",
}

// The probe's statements are built once: a monitor runs them thousands of
// times a second at scale.
var (
	variablesQuery = "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + literalList(discoveryVariables) + ")"
	statusQuery    = "SHOW GLOBAL STATUS WHERE Variable_name IN (" + literalList(discoveryStatus) + ")"
	// varsStatusQuery reads both in one round trip where the server has
	// them as tables (MariaDB's information_schema; SHOW reads the same
	// tables, with the same value widths). Column k says which: v or s.
	varsStatusQuery = "SELECT 'v' AS k, VARIABLE_NAME AS n, VARIABLE_VALUE AS v FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME IN (" +
		literalList(discoveryVariables) + ") UNION ALL SELECT 's', VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN (" +
		literalList(discoveryStatus) + ")"
)

// MayBeCut is the length from which a variable's value read through SHOW
// GLOBAL VARIABLES or its tables may have been cut: MariaDB cuts at 4,096
// characters, MySQL 5.7+ at 1,024 (performance_schema's VARCHAR(1024)).
// A GTID position that long is read again whole from @@GLOBAL.
const MayBeCut = 1024

// gtidVariables are the positions a probe needs whole, per flavor.
var (
	mariaDBGTIDVariables = []string{"gtid_binlog_pos", "gtid_binlog_state", "gtid_slave_pos", "gtid_current_pos"}
	mySQLGTIDVariables   = []string{"gtid_executed"}
)

// WholeGTIDQuery reads those of the flavor's GTID variables whose value
// read so far (vars) may have been cut, whole from @@GLOBAL in one plain
// SELECT (columns named as the variables), or is "" when none may be.
// Not a UNION: MariaDB carries a UNION's values through a column that
// wraps past 65,535 bytes.
func (d Dialect) WholeGTIDQuery(vars map[string]string) string {
	names := mySQLGTIDVariables
	if d.IsMariaDB() {
		names = mariaDBGTIDVariables
	} else if !d.AtLeast(5, 6, 5) {
		return ""
	}
	var cols []string
	for _, n := range names { // this package's constants, never input
		if len(vars[n]) >= MayBeCut {
			cols = append(cols, "@@GLOBAL."+n+" AS "+n)
		}
	}
	if len(cols) == 0 {
		return ""
	}
	return "SELECT " + strings.Join(cols, ", ")
}

// VariablesQuery reads every global variable discovery needs.
func (d Dialect) VariablesQuery() string { return variablesQuery }

// StatusQuery reads the global status counters discovery needs.
func (d Dialect) StatusQuery() string { return statusQuery }

// VarsStatusQuery reads the variables and the status in one statement
// (rows k, n, v with k "v" or "s"), or is "" where the flavor needs two:
// MySQL keeps them in performance_schema, which may be disabled.
func (d Dialect) VarsStatusQuery() string {
	if d.IsMariaDB() {
		return varsStatusQuery
	}
	return ""
}

// ReplicaStatusQuery lists every replication connection (all named
// connections on MariaDB, all channels on MySQL).
func (d Dialect) ReplicaStatusQuery() string {
	switch {
	case d.IsMariaDB():
		return "SHOW ALL SLAVES STATUS"
	case d.AtLeast(8, 0, 22):
		return "SHOW REPLICA STATUS"
	}
	return "SHOW SLAVE STATUS"
}

// BinlogStatusQuery reads the current binary log coordinate.
func (d Dialect) BinlogStatusQuery() string {
	if !d.IsMariaDB() && d.AtLeast(8, 2, 0) {
		return "SHOW BINARY LOG STATUS"
	}
	return "SHOW MASTER STATUS"
}

// ReplicaHostsQuery lists the replicas registered with this server.
func (d Dialect) ReplicaHostsQuery() string {
	if !d.IsMariaDB() && d.AtLeast(8, 0, 22) {
		return "SHOW REPLICAS"
	}
	return "SHOW SLAVE HOSTS"
}

// DumpThreadsQuery lists binlog dump threads: replicas connected right now,
// including ones that do not register a report_host.
func (d Dialect) DumpThreadsQuery() string {
	return "SELECT ID, USER, HOST FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'"
}

// PrivilegedAccountsQuery lists accounts that read_only does not stop. On
// MariaDB that is READ ONLY ADMIN (10.11) or SUPER (10.5–10.10); MySQL's
// super_read_only stops SUPER too, so the list is empty there.
func (d Dialect) PrivilegedAccountsQuery() string {
	if !d.IsMariaDB() {
		return ""
	}
	return "SELECT DISTINCT GRANTEE AS g FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN ('SUPER', 'READ ONLY ADMIN')"
}

// ReadOnlyOriginQuery says where the server's read_only value comes from
// (column "o"): MariaDB COMPILE-TIME, CONFIG, COMMAND-LINE, AUTO or SQL;
// MySQL COMPILED, GLOBAL, SERVER, EXPLICIT, EXTRA, COMMAND_LINE, PERSISTED,
// DYNAMIC. Anything but a runtime change (SQL, DYNAMIC) is the value the
// server starts with after a crash or restart.
func (d Dialect) ReadOnlyOriginQuery() string {
	if d.IsMariaDB() {
		return "SELECT GLOBAL_VALUE_ORIGIN AS o, GLOBAL_VALUE AS v FROM information_schema.SYSTEM_VARIABLES WHERE VARIABLE_NAME = 'READ_ONLY'"
	}
	return "SELECT i.VARIABLE_SOURCE AS o, g.VARIABLE_VALUE AS v FROM performance_schema.variables_info i JOIN performance_schema.global_variables g ON g.VARIABLE_NAME = i.VARIABLE_NAME WHERE i.VARIABLE_NAME = 'read_only'"
}

// SessionTLSQuery reads the TLS version of the current session (Value is
// empty on a plain-text session); the same in every flavor.
func (d Dialect) SessionTLSQuery() string { return "SHOW SESSION STATUS LIKE 'Ssl_version'" }

// ReadOnlyVariable is the variable that fences a server against all writers.
// On MariaDB 10.11 read_only also blocks SUPER; MySQL needs super_read_only.
func (d Dialect) ReadOnlyVariable() string {
	if d.IsMariaDB() {
		return "read_only"
	}
	return "super_read_only"
}

// QuoteLiteral renders s as a SQL string literal. Every value that reaches SQL
// text (host names from SHOW SLAVE HOSTS are untrusted) goes through it or
// through a bound parameter.
func QuoteLiteral(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// QuoteIdent renders s as a back-quoted identifier.
func QuoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func literalList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = QuoteLiteral(n)
	}
	return strings.Join(q, ",")
}
