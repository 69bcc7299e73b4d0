package failover

import (
	"strings"
	"testing"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

func TestPlanRejoin(t *testing.T) {
	// db2 replicated db1 up to 0-1-10, was promoted, and wrote up to 0-2-15.
	newPrimary := server("db2:3306", 2, "0-2-15", writable, func(s *topology.ServerState) { s.GTIDSlavePos = binlog.MustParseMariaDBPos("0-1-10") })
	replica := server("db3:3306", 3, "0-2-15", replicaOf("db2:3306", 2, ""))
	for _, tc := range []struct {
		name    string
		snap    *topology.Snapshot
		server  string
		blocker string // "" for none
		errant  string
		nothing bool
		primary string
	}{
		{"old primary with nothing extra", snapshot(server("db1:3306", 1, "0-1-10"), newPrimary, replica), "db1:3306", "", "", false, "db2:3306"},
		{"old primary with writes nobody got", snapshot(server("db1:3306", 1, "0-1-20"), newPrimary, replica), "db1:3306", "has transactions db2:3306 never had: 0-1-20", "0-1-20", false, "db2:3306"},
		{"a writable stray is fenced and repointed", snapshot(server("db1:3306", 1, "0-1-10", writable), newPrimary, replica), "db1:3306", "", "", false, "db2:3306"},
		{"already a replica", snapshot(server("db1:3306", 1, "0-1-10", replicaOf("db2:3306", 2, "")), newPrimary, replica), "db1:3306", "", "", true, "db2:3306"},
		{"no primary in service", snapshot(server("db1:3306", 1, "0-1-10"), server("db2:3306", 2, "0-2-15"), replica), "db1:3306", "no writable primary in service", "", false, ""},
		{"unknown server", snapshot(server("db1:3306", 1, "0-1-10"), newPrimary), "db7:3306", "not a server of cluster c", "", false, ""},
		{"unreachable", snapshot(server("db1:3306", 1, "0-1-10", dead), newPrimary), "db1:3306", "cannot reach db1:3306", "", false, "db2:3306"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanRejoin(tc.snap, tc.server)
			got := strings.Join(p.Blockers, "; ")
			if tc.blocker == "" && got != "" || tc.blocker != "" && !strings.Contains(got, tc.blocker) {
				t.Fatalf("blockers %q, want %q", got, tc.blocker)
			}
			if strings.Join(p.Errant, ",") != tc.errant || p.Nothing != tc.nothing || p.Primary != tc.primary {
				t.Fatalf("plan %+v", p)
			}
		})
	}
}
