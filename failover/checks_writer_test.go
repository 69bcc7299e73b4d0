package failover

import (
	"strings"
	"testing"

	"github.com/myha/myha/topology"
)

// With no writable server the advice depends on why: a server myha cannot
// read may be the writable primary; a dead primary calls for a failover;
// only an all-read-only cluster calls for read_only=0.
func TestNoWriterAdviceByCause(t *testing.T) {
	denied := func(s *topology.ServerState) {
		s.Reachable, s.Answered, s.Error = false, true, "Error 1045: Access denied for user 'myha'"
	}
	r1 := server("db2:3306", 2, "0-1-10", replicaOf("db1:3306", 1, ""))
	r2 := server("db3:3306", 3, "0-1-10", replicaOf("db1:3306", 1, ""))
	for _, tc := range []struct {
		name    string
		snap    *topology.Snapshot
		want    string
		notWant string
	}{
		{"access denied", snapshot(server("db1:3306", 1, "0-1-10", denied), r1, r2), "fix the account or password", "read_only=0"},
		{"primary dead", deadPrimary(r1, r2), "run myha failover (never SET GLOBAL read_only=0 on a replica", ""},
		{"restarted read-only", snapshot(server("db1:3306", 1, "0-1-10"), r1, r2), "SET GLOBAL read_only=0 on db1:3306", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *Check
			for _, c := range RunChecks(CheckInput{Snapshot: tc.snap, Policy: pol}) {
				if c.Name == "single_writer" {
					got = &c
				}
			}
			if got == nil || got.Status != Fail || !strings.Contains(got.Fix, tc.want) || tc.notWant != "" && strings.Contains(got.Fix, tc.notWant) {
				t.Fatalf("single_writer = %+v; want fix with %q", got, tc.want)
			}
		})
	}
}
