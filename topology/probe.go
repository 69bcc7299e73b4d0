package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/myha/myha/binlog"
)

// Probe reads one server's full replication state. It never fails as a
// whole: an unreachable server comes back with Reachable false and the
// reason; a statement that fails on a reachable server is noted in Error.
func Probe(ctx context.Context, d Dialer, spec ServerSpec) ServerState {
	return probe(ctx, d, spec, nil)
}

// probe is Probe that may take the slow-changing facts from facts (nil:
// read everything) and records what it read there.
func probe(ctx context.Context, d Dialer, spec ServerSpec, facts *FactsCache) ServerState {
	st := ServerState{Spec: spec}
	start := time.Now()
	q, err := d.Dial(ctx, spec.Address)
	if err != nil {
		facts.Forget(spec.Address)
		st.Error = trimAddr(err.Error(), spec.Address)
		st.Answered = refusedLogin(err)
		return st
	}
	defer q.Close()
	st.Reachable = true
	if err := readState(ctx, q, &st, facts); err != nil {
		facts.Forget(spec.Address)
		st.Error = trimAddr(err.Error(), spec.Address)
		if st.Dialect.Major == 0 {
			st.Reachable = false
			// A kept session found closed is replaced during the first
			// statement: a server refusing that connect answered, as
			// when Dial itself is refused.
			var se *ServerError
			st.Answered = errors.As(err, &se) && se.Op == "connect" && refusedLogin(err)
		}
	}
	st.ProbeRTT = time.Since(start)
	return st
}

// refusedLogin says whether a connect failed because the server refused
// us (too many connections, access denied, host blocked): it is alive.
func refusedLogin(err error) bool {
	switch MySQLErrorNumber(err) {
	case 1040, 1044, 1045, 1129, 1130, 1203, 1226:
		return true
	}
	return false
}

func trimAddr(msg, addr string) string { return strings.TrimPrefix(msg, addr+": ") }

// readVersion reads the server's version and flavor.
func readVersion(ctx context.Context, q Querier, st *ServerState) error {
	rows, err := q.Query(ctx, VersionQuery)
	if err != nil {
		return err
	}
	if len(rows) != 1 {
		return fmt.Errorf("version query returned %d rows", len(rows))
	}
	st.VersionRaw = rows[0]["version"]
	st.Dialect, err = DialectFor(rows[0]["version"], rows[0]["comment"])
	return err
}

// nameValues runs a SHOW ... VARIABLES/STATUS statement into a map keyed
// by the lower-case name.
func nameValues(ctx context.Context, q Querier, stmt string) (map[string]string, error) {
	rows, err := q.Query(ctx, stmt)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[strings.ToLower(r["Variable_name"])] = r["Value"]
	}
	return out, nil
}

// readVarsStatus reads the discovery variables and status, in one round
// trip where the dialect allows it (names lower-cased).
func readVarsStatus(ctx context.Context, q Querier, d Dialect) (vars, status map[string]string, err error) {
	stmt := d.VarsStatusQuery()
	if stmt == "" {
		if vars, err = nameValues(ctx, q, d.VariablesQuery()); err != nil {
			return nil, nil, err
		}
		if status, err = nameValues(ctx, q, d.StatusQuery()); err != nil {
			return nil, nil, err
		}
	} else {
		rows, err := q.Query(ctx, stmt)
		if err != nil {
			return nil, nil, err
		}
		vars, status = make(map[string]string, len(discoveryVariables)), make(map[string]string, len(discoveryStatus))
		for _, r := range rows {
			switch r["k"] {
			case "v":
				vars[strings.ToLower(r["n"])] = r["v"]
			case "s":
				status[strings.ToLower(r["n"])] = r["v"]
			}
		}
	}
	// A GTID position long enough to have been cut is read again whole
	// (one more statement, only for such servers).
	if stmt := d.WholeGTIDQuery(vars); stmt != "" {
		rows, err := q.Query(ctx, stmt)
		if err != nil {
			return nil, nil, err
		}
		if len(rows) != 1 {
			return nil, nil, fmt.Errorf("reading GTID positions whole: %d rows", len(rows))
		}
		for n, v := range rows[0] {
			vars[strings.ToLower(n)] = v
		}
	}
	return vars, status, nil
}

func isReused(q Querier) bool {
	r, ok := q.(ReusedSession)
	return ok && r.Reused()
}

// readState reads a server's state. Every probe reads the variables
// (read_only, GTID positions, server_id), the status (semi-sync state,
// Uptime), every replication connection and the binlog coordinate. The
// version, own grants, privileged accounts and connected replicas change
// rarely: with facts, a reused session to the same, not restarted server
// takes them from a probe at most FactsMaxAge old.
func readState(ctx context.Context, q Querier, st *ServerState, facts *FactsCache) error {
	cached, reuse := facts.lookup(st.Spec.Address, q)
	var err error
	d := cached.dialect
	if !reuse {
		if err := readVersion(ctx, q, st); err != nil {
			return err
		}
		d = st.Dialect
	}
	vars, status, err := readVarsStatus(ctx, q, d)
	if err != nil {
		return err
	}
	// A pooled session found closed by its first statement was replaced
	// by a new one: a reconnect re-reads everything.
	if reuse && !isReused(q) {
		reuse = false
		if err := readVersion(ctx, q, st); err != nil {
			return err
		}
	}
	if reuse {
		st.Dialect = cached.dialect // the server answered: reachable
	}
	if reuse && !cached.sameServer(vars, status, facts.now()) {
		reuse = false
		if err := readVersion(ctx, q, st); err != nil {
			return err
		}
	}
	if reuse {
		cached.apply(st)
	}
	st.Vars = vars
	if err := applyVars(st); err != nil {
		return err
	}
	d = st.Dialect
	st.SemiSync.SourceEnabled = isOn(st.Vars["rpl_semi_sync_master_enabled"]) || isOn(st.Vars["rpl_semi_sync_source_enabled"])
	st.SemiSync.ReplicaOn = isOn(st.Vars["rpl_semi_sync_slave_enabled"]) || isOn(st.Vars["rpl_semi_sync_replica_enabled"])
	st.SemiSync.SourceActive = isOn(status["rpl_semi_sync_master_status"]) || isOn(status["rpl_semi_sync_source_status"])
	st.SemiSync.ReplicaActive = isOn(status["rpl_semi_sync_slave_status"]) || isOn(status["rpl_semi_sync_replica_status"])
	st.SemiSync.SourceClients = atoi(firstNonEmpty(status["rpl_semi_sync_master_clients"], status["rpl_semi_sync_source_clients"]))

	rows, err := q.Query(ctx, d.ReplicaStatusQuery())
	if err != nil {
		return err
	}
	for _, r := range rows {
		c, err := parseReplicaRow(d, r)
		if err != nil {
			return err
		}
		st.Replication = append(st.Replication, c)
	}

	if st.LogBin {
		if rows, err = q.Query(ctx, d.BinlogStatusQuery()); err != nil {
			return err
		}
		if len(rows) == 1 {
			st.BinlogCoord = binlog.FilePos{File: rows[0]["File"], Pos: uint64(atoi64(rows[0]["Position"]))}
		}
	}
	if reuse {
		return nil
	}
	before := len(st.Warnings)
	readSlowFacts(ctx, q, st)
	facts.store(st.Spec.Address, st, status, slices.Clone(st.Warnings[before:]))
	return nil
}

// readSlowFacts reads what is useful but not essential, and changes
// rarely: an account without the privilege still gets a full picture of
// replication, with a note.
func readSlowFacts(ctx context.Context, q Querier, st *ServerState) {
	d := st.Dialect
	rows, err := q.Query(ctx, d.ReplicaHostsQuery())
	if err != nil {
		st.Warnings = append(st.Warnings, "cannot list registered replicas: "+shortErr(err))
	}
	for _, r := range rows {
		st.ConnectedReplicas = append(st.ConnectedReplicas, ConnectedReplica{
			ServerID: uint32(atoi64(r.Get("Server_id", "Server_Id"))),
			Host:     r.Get("Host"),
			Port:     atoi(r.Get("Port")),
		})
	}
	rows = nil
	if rows, err = q.Query(ctx, d.DumpThreadsQuery()); err != nil {
		st.Warnings = append(st.Warnings, "cannot list binlog dump threads: "+shortErr(err))
	}
	for _, r := range rows {
		host, _, err := net.SplitHostPort(r["HOST"])
		if err != nil {
			host = r["HOST"]
		}
		if !hasHost(st.ConnectedReplicas, host) {
			st.ConnectedReplicas = append(st.ConnectedReplicas, ConnectedReplica{Host: host, User: r["USER"]})
		}
	}
	if stmt := st.Dialect.PrivilegedAccountsQuery(); stmt != "" && !st.ReadOnly {
		if rows, err := q.Query(ctx, stmt); err != nil {
			st.Warnings = append(st.Warnings, "cannot list privileged accounts: "+shortErr(err))
		} else {
			for _, r := range rows {
				st.PrivilegedAccounts = append(st.PrivilegedAccounts, r["g"])
			}
		}
	}
	rows = nil
	if rows, err = q.Query(ctx, "SHOW GRANTS"); err != nil {
		st.Warnings = append(st.Warnings, "cannot read own grants: "+shortErr(err))
	} else {
		st.GrantsRead = true
		for _, r := range rows {
			for _, v := range r {
				st.Privileges = append(st.Privileges, GlobalPrivileges(v)...)
			}
		}
	}
}

func hasHost(cs []ConnectedReplica, host string) bool {
	for _, c := range cs {
		if c.Host == host {
			return true
		}
	}
	return false
}

func applyVars(st *ServerState) error {
	v := st.Vars
	st.ServerID = uint32(atoi64(v["server_id"]))
	st.ServerUUID = v["server_uuid"]
	st.Hostname = v["hostname"]
	st.ReadOnly = isOn(v["read_only"])
	st.SuperReadOnly = isOn(v["super_read_only"])
	st.LogBin = isOn(v["log_bin"])
	st.LogReplicaUpd = isOn(firstNonEmpty(v["log_slave_updates"], v["log_replica_updates"]))
	st.BinlogFormat = v["binlog_format"]
	var err error
	if st.Dialect.IsMariaDB() {
		for _, f := range []struct {
			dst  *binlog.MariaDBPos
			name string
		}{{&st.GTIDBinlogPos, "gtid_binlog_pos"}, {&st.GTIDSlavePos, "gtid_slave_pos"}, {&st.GTIDCurrentPos, "gtid_current_pos"}} {
			if *f.dst, err = binlog.ParseMariaDBPos(v[f.name]); err != nil {
				return fmt.Errorf("@@%s: %w", f.name, err)
			}
		}
		if st.GTIDBinlogState, err = binlog.ParseMariaDBState(v["gtid_binlog_state"]); err != nil {
			return fmt.Errorf("@@gtid_binlog_state: %w", err)
		}
		st.GTIDStrictMode = isOn(v["gtid_strict_mode"])
		st.GTIDDomainID = uint32(atoi64(v["gtid_domain_id"]))
		return nil
	}
	st.GTIDMode = v["gtid_mode"]
	if st.GTIDExecuted, err = binlog.ParseMySQLSet(v["gtid_executed"]); err != nil {
		return fmt.Errorf("@@gtid_executed: %w", err)
	}
	return nil
}

var filterColumns = []string{"Replicate_Do_DB", "Replicate_Ignore_DB", "Replicate_Do_Table", "Replicate_Ignore_Table",
	"Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table", "Replicate_Rewrite_DB", "Replicate_Do_Domain_Ids",
	"Replicate_Ignore_Domain_Ids", "Replicate_Ignore_Server_Ids"}

func parseReplicaRow(d Dialect, r Row) (ReplicaConn, error) {
	c := ReplicaConn{
		Name:           r.Get("Connection_name", "Channel_Name"),
		SourceHost:     r.Get("Master_Host", "Source_Host"),
		SourcePort:     atoi(r.Get("Master_Port", "Source_Port")),
		SourceServerID: uint32(atoi64(r.Get("Master_Server_Id", "Source_Server_Id"))),
		SourceUUID:     r.Get("Master_UUID", "Source_UUID"),
		IOState:        r.Get("Slave_IO_Running", "Replica_IO_Running"),
		SQLRunning:     r.Get("Slave_SQL_Running", "Replica_SQL_Running") == "Yes",
		LastIOErrno:    atoi(r.Get("Last_IO_Errno")),
		LastIOError:    r.Get("Last_IO_Error"),
		LastSQLErrno:   atoi(r.Get("Last_SQL_Errno")),
		LastSQLError:   r.Get("Last_SQL_Error"),
		SQLDelay:       atoi64(r.Get("SQL_Delay")),
		SQLState:       r.Get("Slave_SQL_Running_State", "Replica_SQL_Running_State"),
		IOStateText:    r.Get("Slave_IO_State", "Replica_IO_State"),
		ConnectRetry:   atoi(r.Get("Connect_Retry")),
		SSL:            r.Get("Master_SSL_Allowed", "Source_SSL_Allowed") == "Yes",
		SSLVerifyHost:  r.Get("Master_SSL_Verify_Server_Cert", "Source_SSL_Verify_Server_Cert") == "Yes",
		ReadCoord:      binlog.FilePos{File: r.Get("Master_Log_File", "Source_Log_File"), Pos: uint64(atoi64(r.Get("Read_Master_Log_Pos", "Read_Source_Log_Pos")))},
		ExecCoord:      binlog.FilePos{File: r.Get("Relay_Master_Log_File", "Relay_Source_Log_File"), Pos: uint64(atoi64(r.Get("Exec_Master_Log_Pos", "Exec_Source_Log_Pos")))},
	}
	if r.Has("Seconds_Behind_Master", "Seconds_Behind_Source") {
		lag := atoi64(r.Get("Seconds_Behind_Master", "Seconds_Behind_Source"))
		c.LagSeconds = &lag
	}
	c.Heartbeats = atoi64(r.Get("Slave_received_heartbeats"))
	if hb := r.Get("Slave_heartbeat_period"); hb != "" {
		c.HeartbeatSecs, _ = strconv.ParseFloat(hb, 64)
	}
	for _, f := range filterColumns {
		if v := r.Get(f); v != "" {
			if c.Filters == nil {
				c.Filters = map[string]string{}
			}
			c.Filters[f] = v
		}
	}
	var err error
	if d.IsMariaDB() {
		c.UsingGTID = r.Get("Using_Gtid")
		if c.GTIDIOPos, err = binlog.ParseMariaDBPos(r.Get("Gtid_IO_Pos")); err != nil {
			return c, fmt.Errorf("Gtid_IO_Pos of connection %q: %w", c.Name, err)
		}
		return c, nil
	}
	c.UsingGTID = "No"
	if r.Get("Auto_Position") == "1" {
		c.UsingGTID = "Auto_Position"
	}
	if c.RetrievedSet, err = binlog.ParseMySQLSet(r.Get("Retrieved_Gtid_Set")); err != nil {
		return c, fmt.Errorf("Retrieved_Gtid_Set of channel %q: %w", c.Name, err)
	}
	if c.ExecutedSet, err = binlog.ParseMySQLSet(r.Get("Executed_Gtid_Set")); err != nil {
		return c, fmt.Errorf("Executed_Gtid_Set of channel %q: %w", c.Name, err)
	}
	return c, nil
}

func isOn(v string) bool {
	switch strings.ToUpper(v) {
	case "ON", "1", "YES", "TRUE":
		return true
	}
	return false
}

func atoi(s string) int { n, _ := strconv.Atoi(strings.TrimSpace(s)); return n }

func atoi64(s string) int64 { n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64); return n }

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func joinHostPort(h string, p int) string {
	if h == "" {
		return ""
	}
	return net.JoinHostPort(h, strconv.Itoa(p))
}

// shortErr drops the server address prefix, which the caller already names.
func shortErr(err error) string {
	var se *ServerError
	if errors.As(err, &se) {
		return describe(se.Err)
	}
	return err.Error()
}

var grantRE = regexp.MustCompile(`(?i)^GRANT (.+?) ON \*\.\* TO `)

// GlobalPrivileges extracts the global privileges of one SHOW GRANTS line
// ("GRANT SELECT, PROCESS ON *.* TO ..."). Only privilege names are kept:
// the line also carries the password hash, which must go nowhere.
func GlobalPrivileges(grant string) []string {
	m := grantRE.FindStringSubmatch(strings.TrimSpace(grant))
	if m == nil {
		return nil
	}
	var out []string
	for _, p := range strings.Split(m[1], ",") {
		p = strings.ToUpper(strings.Join(strings.Fields(p), " "))
		if p == "ALL" {
			p = "ALL PRIVILEGES"
		}
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
