package failover

import (
	"fmt"
	"slices"
	"strings"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

// need is one thing myha must be able to do on a server, and the global
// privileges any one of which allows it.
type need struct {
	what  string
	anyOf []string
}

// MariaDB 10.11 privileges, as seen on this project's servers: SUPER no
// longer covers read_only (READ_ONLY ADMIN) or SHOW SLAVE HOSTS
// (REPLICATION MASTER ADMIN).
var mariadbNeeds = []need{
	{what: "read replication status (SHOW ALL SLAVES STATUS)", anyOf: []string{"SLAVE MONITOR", "REPLICA MONITOR", "SUPER"}},
	{what: "read binlog positions (SHOW MASTER STATUS)", anyOf: []string{"BINLOG MONITOR", "REPLICATION CLIENT", "SUPER"}},
	{what: "list connected replicas (SHOW SLAVE HOSTS)", anyOf: []string{"REPLICATION MASTER ADMIN"}},
	{what: "fence and promote (SET GLOBAL read_only)", anyOf: []string{"READ_ONLY ADMIN", "READ ONLY ADMIN"}},
	{what: "stop, repoint and reset replication (STOP SLAVE, CHANGE MASTER, RESET SLAVE)", anyOf: []string{"REPLICATION SLAVE ADMIN", "SUPER"}},
	{what: "kill client sessions when fencing (KILL)", anyOf: []string{"CONNECTION ADMIN", "SUPER"}},
	{what: "see every session (PROCESS)", anyOf: []string{"PROCESS"}},
}

var mysqlNeeds = []need{
	{what: "read replication status", anyOf: []string{"REPLICATION CLIENT", "SUPER"}},
	{what: "fence and promote (SET GLOBAL super_read_only)", anyOf: []string{"SYSTEM_VARIABLES_ADMIN", "SUPER"}},
	{what: "stop, repoint and reset replication", anyOf: []string{"REPLICATION_SLAVE_ADMIN", "SUPER"}},
	{what: "kill client sessions when fencing", anyOf: []string{"CONNECTION_ADMIN", "SUPER"}},
	{what: "see every session (PROCESS)", anyOf: []string{"PROCESS"}},
}

// MissingPrivileges lists what myha's account cannot do on a server, given
// its global privileges.
func MissingPrivileges(f binlog.Flavor, have []string) []string {
	if slices.Contains(have, "ALL PRIVILEGES") {
		return nil
	}
	needs := mariadbNeeds
	if f == binlog.MySQL {
		needs = mysqlNeeds
	}
	var missing []string
	for _, n := range needs {
		ok := false
		for _, p := range n.anyOf {
			if slices.Contains(have, p) {
				ok = true
				break
			}
		}
		if !ok {
			missing = append(missing, fmt.Sprintf("%s: needs %s", n.what, strings.Join(n.anyOf, " or ")))
		}
	}
	return missing
}

func privilegeChecks(s *topology.Snapshot, replLogin map[string]error) []Check {
	var out []Check
	for i := range s.Servers {
		v := &s.Servers[i]
		if !v.Reachable {
			continue
		}
		if !v.GrantsRead {
			out = append(out, Check{Name: "privileges", Status: Warn, Server: v.Spec.Address, Message: "could not read myha's own grants (SHOW GRANTS failed)"})
			continue
		}
		missing := MissingPrivileges(v.Dialect.Flavor, v.Privileges)
		if len(missing) == 0 {
			out = append(out, Check{Name: "privileges", Status: OK, Server: v.Spec.Address, Message: "myha's account can run every failover step"})
		} else {
			grant := "GRANT SLAVE MONITOR, BINLOG MONITOR, REPLICATION MASTER ADMIN, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, CONNECTION ADMIN, PROCESS ON *.* TO <myha user>"
			if v.Dialect.Flavor == binlog.MySQL {
				grant = "GRANT REPLICATION CLIENT, SYSTEM_VARIABLES_ADMIN, REPLICATION_SLAVE_ADMIN, CONNECTION_ADMIN, PROCESS ON *.* TO <myha user>"
			}
			out = append(out, Check{Name: "privileges", Status: Fail, Server: v.Spec.Address,
				Message: "myha's account cannot " + strings.Join(missing, "; "), Fix: grant})
		}
	}
	for i := range s.Servers {
		v := &s.Servers[i]
		err, tried := replLogin[v.Spec.Address]
		if !tried {
			continue
		}
		if err == nil {
			out = append(out, Check{Name: "privileges", Status: OK, Server: v.Spec.Address, Message: "the replication account can log in (replicas can connect here after a failover)"})
			continue
		}
		out = append(out, Check{Name: "privileges", Status: Fail, Server: v.Spec.Address,
			Message: "the replication account cannot log in: " + err.Error() + ": after a failover to this server, replicas could not connect",
			Fix:     "CREATE USER / ALTER USER the replication account on this server with the config's replication_password, and GRANT REPLICATION SLAVE ON *.*"})
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "privileges", Status: Warn, Message: "no server reachable: privileges not checked"})
	}
	return out
}
