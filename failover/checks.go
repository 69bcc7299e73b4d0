package failover

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

// Status of one check.
type Status string

// Check statuses, in increasing severity.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one named finding of `myha check`: what is wrong, where, and what
// to do about it.
type Check struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Server  string `json:"server,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// CheckInput is everything the checks look at; gathering it is the caller's
// I/O, judging it is pure.
type CheckInput struct {
	Snapshot *topology.Snapshot
	Policy   Policy
	// ReplLogin holds, per server tried, the error of logging in with the
	// replication account (nil = it worked). Servers absent were not tried.
	ReplLogin map[string]error
	// ReadOnlyOrigin holds, per server asked, where its read_only value
	// comes from and the value ("CONFIG ON"); servers absent were not asked.
	ReadOnlyOrigin map[string]string
	// Accounts are myha's own and the replication account's user names,
	// which may hold privileges that read_only does not stop.
	Accounts []string
	// TLS is the cluster's tls.mode; SessionTLS holds, per server asked,
	// the TLS version of myha's own session ("" = plain text).
	TLS        topology.TLSMode
	SessionTLS map[string]string
	// LockHolders holds, per server asked, who holds the cluster's
	// failover lock (nil: free); LockAccount is the account myha takes it
	// with.
	LockHolders map[string]*LockHolder
	LockAccount string
}

// Thresholds for detection settings: above these a dead primary is noticed
// too slowly by the replicas, which must confirm it.
const (
	maxSlaveNetTimeout = 10
	maxConnectRetry    = 10
)

// RunChecks evaluates every check. Each check yields at least one result, so
// an operator sees what was looked at as well as what is wrong.
func RunChecks(in CheckInput) []Check {
	s := in.Snapshot
	var out []Check
	add := func(c Check) { out = append(out, c) }
	each := func(name string, f func(v *topology.ServerView) []Check) {
		n := len(out)
		for i := range s.Servers {
			out = append(out, f(&s.Servers[i])...)
		}
		if len(out) == n {
			add(Check{Name: name, Status: OK, Message: "nothing to check"})
		}
	}
	primary, _ := s.Server(s.Primary)
	isReplica := func(v *topology.ServerView) bool { _, ok := v.PrimaryConn(); return ok && v.Spec.Address != s.Primary }
	canPromote := func(v *topology.ServerView) bool { return isReplica(v) && !v.Spec.NoMaster && v.Source == s.Primary }

	// topology: the picture itself must be consistent.
	if len(s.Problems) == 0 {
		add(Check{Name: "topology", Status: OK, Message: fmt.Sprintf("primary %s with %d other server(s)", s.Primary, len(s.Servers)-1)})
	}
	for _, p := range s.Problems {
		st := Fail
		if strings.Contains(p, "not in the config") {
			st = Warn
		}
		add(Check{Name: "topology", Status: st, Message: p, Fix: "fix replication so there is one tree with one writable primary"})
	}

	each("reachable", func(v *topology.ServerView) []Check {
		if v.Reachable {
			return []Check{{Name: "reachable", Status: OK, Server: v.Spec.Address, Message: fmt.Sprintf("answers in %s", v.ProbeRTT.Round(100_000))}}
		}
		return []Check{{Name: "reachable", Status: Fail, Server: v.Spec.Address, Message: "unreachable: " + v.Error,
			Fix: "start the server or fix the network; check user/password if access is denied"}}
	})

	var writers []string
	for _, v := range s.Servers {
		if v.Reachable && !v.ReadOnly && !v.SuperReadOnly {
			writers = append(writers, v.Spec.Address)
		}
	}
	switch len(writers) {
	case 1:
		add(Check{Name: "single_writer", Status: OK, Server: writers[0], Message: "exactly one writable server"})
	case 0:
		add(Check{Name: "single_writer", Status: Fail, Message: "no writable server: the cluster takes no writes", Fix: noWriterFix(s)})
	default:
		add(Check{Name: "single_writer", Status: Fail, Message: fmt.Sprintf("%d writable servers: %s", len(writers), strings.Join(writers, ", ")),
			Fix: "SET GLOBAL read_only=1 on every server but the primary, then look for writes that reached them (errant_transactions)"})
	}

	each("replica_io_running", func(v *topology.ServerView) []Check {
		c, ok := v.PrimaryConn()
		if !ok || !v.Reachable {
			return nil
		}
		if c.IORunning() {
			return []Check{{Name: "replica_io_running", Status: OK, Server: v.Spec.Address, Message: "IO thread connected to " + c.Source()}}
		}
		msg := fmt.Sprintf("IO thread %s", c.IOState)
		fix := "START SLAVE IO_THREAD; if it fails, check the source's reachability and the replication account"
		if c.LastIOErrno != 0 {
			msg += fmt.Sprintf(": error %d: %s", c.LastIOErrno, c.LastIOError)
			if c.LastIOErrno == 1045 {
				fix = "the replication password is wrong: CHANGE MASTER TO MASTER_PASSWORD=... with the replication_password from the config"
			}
		}
		return []Check{{Name: "replica_io_running", Status: Fail, Server: v.Spec.Address, Message: msg, Fix: fix}}
	})
	each("replica_sql_running", func(v *topology.ServerView) []Check {
		c, ok := v.PrimaryConn()
		if !ok || !v.Reachable {
			return nil
		}
		if c.SQLRunning {
			return []Check{{Name: "replica_sql_running", Status: OK, Server: v.Spec.Address, Message: "SQL thread running"}}
		}
		msg, fix := "SQL thread stopped", "START SLAVE SQL_THREAD"
		if c.LastSQLErrno != 0 {
			msg += fmt.Sprintf(": error %d: %s", c.LastSQLErrno, c.LastSQLError)
			fix = "find why the event failed (data drift, errant writes); do not skip it blindly"
		}
		return []Check{{Name: "replica_sql_running", Status: Fail, Server: v.Spec.Address, Message: msg, Fix: fix}}
	})
	each("replication_lag", func(v *topology.ServerView) []Check {
		c, ok := v.PrimaryConn()
		if !ok || !v.Reachable {
			return nil
		}
		switch {
		case c.LagSeconds == nil:
			return []Check{{Name: "replication_lag", Status: Warn, Server: v.Spec.Address, Message: "lag unknown (Seconds_Behind_Master is NULL: a replication thread is not running)"}}
		case float64(*c.LagSeconds) > in.Policy.MaxLag.Seconds():
			return []Check{{Name: "replication_lag", Status: Fail, Server: v.Spec.Address,
				Message: fmt.Sprintf("%ds behind, more than failover.max_lag %s: it cannot be promoted", *c.LagSeconds, in.Policy.MaxLag),
				Fix:     "find what slows the SQL thread (long transactions, missing primary keys, parallel replication settings)"}}
		case *c.LagSeconds > 0 && float64(*c.LagSeconds) > in.Policy.MaxLag.Seconds()/2:
			return []Check{{Name: "replication_lag", Status: Warn, Server: v.Spec.Address, Message: fmt.Sprintf("%ds behind (failover.max_lag %s)", *c.LagSeconds, in.Policy.MaxLag)}}
		}
		return []Check{{Name: "replication_lag", Status: OK, Server: v.Spec.Address, Message: fmt.Sprintf("%ds behind", *c.LagSeconds)}}
	})

	out = append(out, uniqueness("server_id_unique", s, func(v *topology.ServerView) string {
		if v.ServerID == 0 {
			return ""
		}
		return strconv.FormatUint(uint64(v.ServerID), 10)
	}, "give every server its own server_id in my.cnf and restart it; replicas skip events carrying their own id")...)
	if anyFlavor(s, binlog.MySQL) {
		out = append(out, uniqueness("server_uuid_unique", s, func(v *topology.ServerView) string { return v.ServerUUID },
			"delete auto.cnf on the cloned server and restart it so it gets a new server_uuid")...)
	} else {
		add(Check{Name: "server_uuid_unique", Status: OK, Message: "not applicable: MariaDB has no server_uuid"})
	}

	each("log_bin", func(v *topology.ServerView) []Check {
		if !v.Reachable {
			return nil
		}
		switch {
		case v.LogBin:
			return []Check{{Name: "log_bin", Status: OK, Server: v.Spec.Address, Message: "binary log on"}}
		case v.Spec.Address == s.Primary:
			return []Check{{Name: "log_bin", Status: Fail, Server: v.Spec.Address, Message: "binary log off on the primary: nothing can replicate", Fix: "set log_bin in my.cnf and restart"}}
		case canPromote(v):
			return []Check{{Name: "log_bin", Status: Warn, Server: v.Spec.Address, Message: "binary log off: this replica cannot be promoted", Fix: "set log_bin in my.cnf and restart, or mark it no_master"}}
		}
		return []Check{{Name: "log_bin", Status: OK, Server: v.Spec.Address, Message: "binary log off (not a promotion candidate)"}}
	})
	each("log_slave_updates", func(v *topology.ServerView) []Check {
		if !v.Reachable || !isReplica(v) {
			return nil
		}
		if v.LogReplicaUpd {
			return []Check{{Name: "log_slave_updates", Status: OK, Server: v.Spec.Address, Message: "on"}}
		}
		return []Check{{Name: "log_slave_updates", Status: Warn, Server: v.Spec.Address,
			Message: "off: this replica's binlog lacks what it replicated, so it cannot feed other replicas during a failover catch-up",
			Fix:     "set log_slave_updates=1 in my.cnf and restart"}}
	})

	formats := map[string][]string{}
	for _, v := range s.Servers {
		if v.Reachable && v.LogBin {
			formats[v.BinlogFormat] = append(formats[v.BinlogFormat], v.Spec.Address)
		}
	}
	if len(formats) <= 1 {
		add(Check{Name: "binlog_format_consistent", Status: OK, Message: "binlog_format " + strings.Join(slices.Collect(maps.Keys(formats)), "")})
	} else {
		add(Check{Name: "binlog_format_consistent", Status: Warn, Message: "binlog_format differs: " + describeGroups(formats),
			Fix: "use binlog_format=ROW everywhere"})
	}

	filters := map[string][]string{}
	for _, v := range s.Servers {
		if c, ok := v.PrimaryConn(); ok && v.Reachable {
			filters[filterKey(c.Filters)] = append(filters[filterKey(c.Filters)], v.Spec.Address)
		}
	}
	if len(filters) <= 1 {
		add(Check{Name: "replication_filters_consistent", Status: OK, Message: "every replica has the same replication filters" + map[bool]string{true: " (none)", false: ""}[filters[""] != nil]})
	} else {
		add(Check{Name: "replication_filters_consistent", Status: Fail, Message: "replication filters differ: " + describeGroups(filters),
			Fix: "promoting a filtered replica loses the filtered data for the others: make the filters equal, or mark filtered replicas no_master"})
	}

	out = append(out, gtidChecks(s, isReplica)...)

	each("errant_transactions", func(v *topology.ServerView) []Check {
		if !v.Reachable || !isReplica(v) {
			return nil
		}
		if len(v.Errant) == 0 {
			return []Check{{Name: "errant_transactions", Status: OK, Server: v.Spec.Address, Message: "none"}}
		}
		return []Check{{Name: "errant_transactions", Status: Fail, Server: v.Spec.Address,
			Message: fmt.Sprintf("has transactions its source %s never had: %s", v.Source, strings.Join(v.Errant, ",")),
			Fix:     ErrantRemedy(v.Spec.Address, v.Source)}}
	})
	each("replica_read_only", func(v *topology.ServerView) []Check {
		if !v.Reachable || !isReplica(v) {
			return nil
		}
		if v.ReadOnly || v.SuperReadOnly {
			return []Check{{Name: "replica_read_only", Status: OK, Server: v.Spec.Address, Message: v.Dialect.ReadOnlyVariable() + "=ON"}}
		}
		return []Check{{Name: "replica_read_only", Status: Fail, Server: v.Spec.Address, Message: "writable replica: applications can write here and create errant transactions",
			Fix: fmt.Sprintf("SET GLOBAL %s=1, and set it in my.cnf", v.Dialect.ReadOnlyVariable())}}
	})

	out = append(out, privilegeChecks(s, in.ReplLogin)...)

	each("detection_timeouts", func(v *topology.ServerView) []Check {
		c, ok := v.PrimaryConn()
		if !ok || !v.Reachable || v.Source != s.Primary {
			return nil
		}
		var bad []string
		nt := firstInt(v.Vars["slave_net_timeout"], v.Vars["replica_net_timeout"])
		if nt > maxSlaveNetTimeout {
			bad = append(bad, fmt.Sprintf("slave_net_timeout=%d (a silent primary is noticed only after that many seconds)", nt))
		}
		if c.HeartbeatSecs > 0 && nt > 0 && c.HeartbeatSecs > float64(nt)/2 {
			bad = append(bad, fmt.Sprintf("MASTER_HEARTBEAT_PERIOD=%gs is more than half of slave_net_timeout", c.HeartbeatSecs))
		}
		if c.ConnectRetry > maxConnectRetry {
			bad = append(bad, fmt.Sprintf("MASTER_CONNECT_RETRY=%d", c.ConnectRetry))
		}
		if len(bad) == 0 {
			return []Check{{Name: "detection_timeouts", Status: OK, Server: v.Spec.Address, Message: fmt.Sprintf("slave_net_timeout=%d, heartbeat %gs, connect retry %ds", nt, c.HeartbeatSecs, c.ConnectRetry)}}
		}
		return []Check{{Name: "detection_timeouts", Status: Warn, Server: v.Spec.Address,
			Message: "replicas confirm a dead primary slowly: " + strings.Join(bad, "; "),
			Fix:     fmt.Sprintf("SET GLOBAL slave_net_timeout=%d; CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=1, MASTER_CONNECT_RETRY=1 (and in my.cnf)", maxSlaveNetTimeout/2)}}
	})

	out = append(out, semiSyncChecks(s)...)
	out = append(out, privilegedChecks(s, in.Accounts)...)
	out = append(out, startReadOnlyChecks(s, in.ReadOnlyOrigin)...)
	out = append(out, tlsChecks(s, in.TLS, in.SessionTLS)...)
	out = append(out, lockChecks(s, in.LockHolders, in.LockAccount)...)

	each("durability", func(v *topology.ServerView) []Check {
		if !v.Reachable || !(v.Spec.Address == s.Primary || canPromote(v)) {
			return nil
		}
		var bad []string
		if sb := v.Vars["sync_binlog"]; sb != "" && sb != "1" {
			bad = append(bad, "sync_binlog="+sb)
		}
		if fl := v.Vars["innodb_flush_log_at_trx_commit"]; fl != "" && fl != "1" {
			bad = append(bad, "innodb_flush_log_at_trx_commit="+fl)
		}
		if len(bad) == 0 {
			return []Check{{Name: "durability", Status: OK, Server: v.Spec.Address, Message: "sync_binlog=1, innodb_flush_log_at_trx_commit=1"}}
		}
		return []Check{{Name: "durability", Status: Warn, Server: v.Spec.Address,
			Message: strings.Join(bad, ", ") + ": a crash can lose committed transactions or leave the binlog and InnoDB out of step",
			Fix:     "SET GLOBAL sync_binlog=1, innodb_flush_log_at_trx_commit=1 (and in my.cnf)"}}
	})

	out = append(out, versionChecks(s, primary)...)

	if in.Policy.VIP == "" {
		add(Check{Name: "vip", Status: OK, Message: "no VIP configured (clients find the primary another way)"})
	} else {
		add(Check{Name: "vip", Status: OK, Message: fmt.Sprintf("%s on %s", in.Policy.VIP, in.Policy.VIPInterface)})
	}
	return out
}

// CandidateCheck turns a hypothetical failover plan into the
// candidate_available check.
func CandidateCheck(p *Plan) Check {
	if p.OK() {
		return Check{Name: "candidate_available", Status: OK, Server: p.NewPrimary, Message: "a failover now would promote " + p.NewPrimary + ": " + p.Why}
	}
	return Check{Name: "candidate_available", Status: Fail, Message: "a failover now would not run: " + strings.Join(p.Blockers, "; "),
		Fix: "make at least one replica eligible: reachable, log_bin on, no errant transactions, within max_lag, not no_master"}
}

func uniqueness(name string, s *topology.Snapshot, key func(*topology.ServerView) string, fix string) []Check {
	groups := map[string][]string{}
	for i := range s.Servers {
		v := &s.Servers[i]
		if k := key(v); v.Reachable && k != "" {
			groups[k] = append(groups[k], v.Spec.Address)
		}
	}
	var out []Check
	keys := slices.Sorted(maps.Keys(groups))
	for _, k := range keys {
		if len(groups[k]) > 1 {
			for _, a := range groups[k] {
				out = append(out, Check{Name: name, Status: Fail, Server: a,
					Message: fmt.Sprintf("%s %s is shared by %s", strings.TrimSuffix(name, "_unique"), k, strings.Join(groups[k], ", ")), Fix: fix})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, Check{Name: name, Status: OK, Message: fmt.Sprintf("%d distinct values", len(groups))})
	}
	return out
}

func gtidChecks(s *topology.Snapshot, isReplica func(*topology.ServerView) bool) []Check {
	var out []Check
	for i := range s.Servers {
		v := &s.Servers[i]
		if !v.Reachable {
			continue
		}
		var bad []string
		status := Warn
		if v.Dialect.Flavor == binlog.MySQL {
			if !strings.EqualFold(v.GTIDMode, "ON") {
				bad, status = append(bad, "gtid_mode="+v.GTIDMode), Fail
			}
		} else if !v.GTIDStrictMode {
			bad = append(bad, "gtid_strict_mode=OFF (out-of-order or duplicate GTIDs go unnoticed)")
		}
		if c, ok := v.PrimaryConn(); ok && isReplica(v) && (c.UsingGTID == "No" || c.UsingGTID == "") {
			bad, status = append(bad, "replicates by file/position, not GTID"), Fail
		}
		if len(bad) == 0 {
			out = append(out, Check{Name: "gtid_consistent", Status: OK, Server: v.Spec.Address, Message: "GTID in use"})
			continue
		}
		fix := "SET GLOBAL gtid_strict_mode=1 (and in my.cnf); on replicas: STOP SLAVE; CHANGE MASTER TO MASTER_USE_GTID=slave_pos; START SLAVE"
		if v.Dialect.Flavor == binlog.MySQL {
			fix = "enable gtid_mode=ON with enforce_gtid_consistency=ON, then CHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION=1"
		}
		out = append(out, Check{Name: "gtid_consistent", Status: status, Server: v.Spec.Address, Message: strings.Join(bad, "; "), Fix: fix})
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "gtid_consistent", Status: OK, Message: "nothing to check"})
	}
	return out
}

func semiSyncChecks(s *topology.Snapshot) []Check {
	var out []Check
	used := false
	for i := range s.Servers {
		v := &s.Servers[i]
		if !v.Reachable {
			continue
		}
		if v.SemiSync.SourceEnabled || v.SemiSync.ReplicaOn {
			used = true
		}
		if v.SemiSync.SourceEnabled && v.Spec.Address != s.Primary {
			out = append(out, Check{Name: "semi_sync", Status: Fail, Server: v.Spec.Address,
				Message: "semi-sync primary side is on on a replica: with log_slave_updates it stalls this replica's SQL thread",
				Fix:     "SET GLOBAL rpl_semi_sync_master_enabled=0 here; myha switches it on when it promotes a server"})
		}
		if v.Spec.Address == s.Primary && v.SemiSync.SourceEnabled {
			wp := firstNonEmpty(v.Vars["rpl_semi_sync_master_wait_point"], v.Vars["rpl_semi_sync_source_wait_point"])
			switch {
			case semiSyncTimeoutMS(v) > 0 && semiSyncTimeoutMS(v) < 1000:
				out = append(out, Check{Name: "semi_sync", Status: Warn, Server: v.Spec.Address,
					Message: fmt.Sprintf("rpl_semi_sync_master_timeout is %dms: a replica slower than that turns semi-sync off (asynchronous) and acknowledged writes can be lost", semiSyncTimeoutMS(v)),
					Fix:     "raise rpl_semi_sync_master_timeout (seconds, not milliseconds, for lossless failover)"})
			case !anyReplicaAcks(s, v.Spec.Address):
				out = append(out, Check{Name: "semi_sync", Status: Warn, Server: v.Spec.Address,
					Message: "no replica has the semi-sync replica side on: the primary waits for acknowledgements nobody sends, then falls back to asynchronous",
					Fix:     "SET GLOBAL rpl_semi_sync_slave_enabled=1 on the replicas (and in my.cnf), then restart their IO threads"})
			case wp != "" && !strings.EqualFold(wp, "AFTER_SYNC"):
				out = append(out, Check{Name: "semi_sync", Status: Warn, Server: v.Spec.Address,
					Message: fmt.Sprintf("wait point %s: other sessions see a transaction before a replica has it, so an acknowledged-looking write can be lost", wp),
					Fix:     "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC (and in my.cnf); myha sets it on every server it promotes"})
			case !v.SemiSync.SourceActive:
				out = append(out, Check{Name: "semi_sync", Status: Warn, Server: v.Spec.Address, Message: "semi-sync is enabled but inactive (fell back to asynchronous): acknowledged transactions can be lost",
					Fix: "make sure replicas have rpl_semi_sync_slave_enabled=1 and are connected"})
			case v.SemiSync.SourceClients == 0:
				out = append(out, Check{Name: "semi_sync", Status: Warn, Server: v.Spec.Address, Message: "semi-sync has no acknowledging replica"})
			default:
				out = append(out, Check{Name: "semi_sync", Status: OK, Server: v.Spec.Address, Message: fmt.Sprintf("active with %d acknowledging replica(s)", v.SemiSync.SourceClients)})
			}
		}
	}
	if len(out) == 0 {
		msg := "not used (asynchronous replication: a failover can lose the primary's last transactions)"
		if used {
			msg = "consistent"
		}
		out = append(out, Check{Name: "semi_sync", Status: OK, Message: msg})
	}
	return out
}

func versionChecks(s *topology.Snapshot, primary *topology.ServerView) []Check {
	var out []Check
	if primary == nil || !primary.Reachable {
		return []Check{{Name: "version_compatibility", Status: OK, Message: "primary unreachable: versions not compared"}}
	}
	for i := range s.Servers {
		v := &s.Servers[i]
		if !v.Reachable || v.Spec.Address == primary.Spec.Address {
			continue
		}
		switch {
		case v.Dialect.Flavor != primary.Dialect.Flavor:
			out = append(out, Check{Name: "version_compatibility", Status: Fail, Server: v.Spec.Address,
				Message: fmt.Sprintf("%s %s replicates from %s %s: mixed flavors cannot fail over with GTID", v.Dialect.Flavor, v.Dialect.Version(), primary.Dialect.Flavor, primary.Dialect.Version())})
		case v.Dialect.Major < primary.Dialect.Major || v.Dialect.Major == primary.Dialect.Major && v.Dialect.Minor < primary.Dialect.Minor:
			out = append(out, Check{Name: "version_compatibility", Status: Fail, Server: v.Spec.Address,
				Message: fmt.Sprintf("version %s is older than the primary's %s: replication from a newer version is unsupported", v.Dialect.Version(), primary.Dialect.Version()),
				Fix:     "upgrade replicas before the primary"})
		case v.Dialect.Major != primary.Dialect.Major || v.Dialect.Minor != primary.Dialect.Minor:
			out = append(out, Check{Name: "version_compatibility", Status: Warn, Server: v.Spec.Address,
				Message: fmt.Sprintf("version %s is newer than the primary's %s: promoting it leaves older replicas unable to follow", v.Dialect.Version(), primary.Dialect.Version())})
		}
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "version_compatibility", Status: OK, Message: fmt.Sprintf("every server runs %s %d.%d", primary.Dialect.Flavor, primary.Dialect.Major, primary.Dialect.Minor)})
	}
	return out
}

func anyFlavor(s *topology.Snapshot, f binlog.Flavor) bool {
	for _, v := range s.Servers {
		if v.Reachable && v.Dialect.Flavor == f {
			return true
		}
	}
	return false
}

func filterKey(f map[string]string) string {
	if len(f) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(f))
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+f[k])
	}
	return strings.Join(parts, " ")
}

func describeGroups(g map[string][]string) string {
	var parts []string
	for k, v := range g {
		if k == "" {
			k = "(none)"
		}
		parts = append(parts, fmt.Sprintf("%s on %s", k, strings.Join(v, ", ")))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func firstInt(vals ...string) int {
	for _, v := range vals {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return 0
}

// Summarize returns the worst status among checks.
func Summarize(cs []Check) Status {
	worst := OK
	for _, c := range cs {
		if c.Status == Fail {
			return Fail
		}
		if c.Status == Warn {
			worst = Warn
		}
	}
	return worst
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// privilegedChecks warns about accounts that read_only does not stop on
// the writable server: a fenced or demoted primary still takes their
// writes, which become errant or lost. Internal accounts are not counted.
func privilegedChecks(s *topology.Snapshot, own []string) []Check {
	var out []Check
	for i := range s.Servers {
		v := &s.Servers[i]
		var apps []string
		for _, g := range v.PrivilegedAccounts {
			user := strings.Trim(strings.SplitN(g, "@", 2)[0], "'`")
			if user == "root" || user == "mariadb.sys" || slices.Contains(own, user) {
				continue
			}
			apps = append(apps, g)
		}
		if len(apps) > 0 {
			out = append(out, Check{Name: "privileged_accounts", Status: Warn, Server: v.Spec.Address,
				Message: "accounts that read_only does not stop (READ ONLY ADMIN or SUPER): " + strings.Join(apps, ", ") + "; a fenced or demoted primary still takes their writes",
				Fix:     "REVOKE READ_ONLY ADMIN, SUPER ON *.* FROM each application account (GRANT ALL includes READ ONLY ADMIN on MariaDB 10.11)"})
		}
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "privileged_accounts", Status: OK, Message: "no application account bypasses read_only"})
	}
	return out
}

// startReadOnlyChecks fails servers that start writable: a primary that
// crashes and restarts (or a replica restarted by hand) would take writes
// before anyone fences it, a second writer. myha makes the agreed primary
// writable itself, so every server should start with read_only=ON.
func startReadOnlyChecks(s *topology.Snapshot, origin map[string]string) []Check {
	var out []Check
	for i := range s.Servers {
		v := &s.Servers[i]
		o, ok := origin[v.Spec.Address]
		if !ok {
			continue
		}
		src, val, _ := strings.Cut(o, " ")
		switch {
		case src == "SQL" || src == "DYNAMIC":
			out = append(out, Check{Name: "read_only_at_start", Status: Warn, Server: v.Spec.Address,
				Message: "cannot be verified: read_only was set at runtime, which hides the value the server starts with",
				Fix:     "make sure read_only=ON is under [mysqld] in its my.cnf (myha sets it at runtime on every failover and switchover, so this check cannot see the file)"})
		case strings.EqualFold(val, "ON") || val == "1":
			out = append(out, Check{Name: "read_only_at_start", Status: OK, Server: v.Spec.Address, Message: "starts read-only (" + src + ")"})
		default:
			out = append(out, Check{Name: "read_only_at_start", Status: Fail, Server: v.Spec.Address,
				Message: "starts writable (read_only=OFF from " + src + "): after a crash or restart it takes writes before it can be fenced, a second writer",
				Fix:     "set read_only=ON under [mysqld] in my.cnf (super_read_only too on MySQL); myha makes the primary writable itself"})
		}
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "read_only_at_start", Status: OK, Message: "nothing to check"})
	}
	return out
}

func semiSyncTimeoutMS(v *topology.ServerView) int {
	n, _ := strconv.Atoi(firstNonEmpty(v.Vars["rpl_semi_sync_master_timeout"], v.Vars["rpl_semi_sync_source_timeout"]))
	return n
}

// anyReplicaAcks reports whether some reachable replica of primary has the
// semi-sync replica side on.
func anyReplicaAcks(s *topology.Snapshot, primary string) bool {
	for _, r := range s.Servers {
		if r.Reachable && r.Source == primary && r.SemiSync.ReplicaOn {
			return true
		}
	}
	return false
}

// noWriterFix says what to do about a cluster with no writable server, by
// cause: a server myha cannot read may well be the writable primary (fix
// the access, touch nothing), a dead primary calls for a failover (making a
// replica writable by hand loses what the others have not got), and only
// with every server read and read-only is read_only=0 the answer.
func noWriterFix(s *topology.Snapshot) string {
	var refused, down []string
	for _, v := range s.Servers {
		switch {
		case v.Reachable:
		case v.Answered:
			refused = append(refused, v.Spec.Address+" ("+v.Error+")")
		default:
			down = append(down, v.Spec.Address)
		}
	}
	switch {
	case len(refused) > 0:
		return "myha cannot read " + strings.Join(refused, ", ") + ": fix the account or password in the config first; that server may be the writable primary"
	case len(down) > 0:
		return strings.Join(down, ", ") + " unreachable: if the primary is dead, run myha failover (never SET GLOBAL read_only=0 on a replica by hand); if it is restarting, wait for it"
	}
	p := s.Primary
	if p == "" {
		p = "the primary"
	}
	return "every server answers and is read-only: SET GLOBAL read_only=0 on " + p + " (a primary restarted read-only; the daemon does this itself for the primary it agreed on)"
}
