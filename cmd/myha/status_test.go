package main

import (
	"strings"
	"testing"
)

// TestDegraded: status never calls a cluster healthy while a configured
// server is down or a replica's replication is stopped, and says which.
func TestDegraded(t *testing.T) {
	yes, no := true, false
	whole := []serverHealth{
		{Address: "db1:3306", Role: "primary", Reachable: true},
		{Address: "db2:3306", Role: "replica", Reachable: true, IORunning: &yes, SQLRunning: &yes},
	}
	if got := degraded(whole, nil); len(got) != 0 {
		t.Fatalf("a whole cluster is degraded: %v", got)
	}
	broken := []serverHealth{
		{Address: "db1:3306", Role: "unknown", Reachable: false, Errors: []string{"unreachable: connect: connection refused"}},
		{Address: "db2:3306", Role: "primary", Reachable: true},
		{Address: "db3:3306", Role: "replica", Reachable: true, IORunning: &no, SQLRunning: &yes},
	}
	got := degraded(broken, nil)
	if len(got) != 2 || got[0] != "db1:3306 is unreachable: connect: connection refused" ||
		!strings.Contains(got[1], "db3:3306: replication is stopped (io:No sql:Yes)") {
		t.Fatalf("degraded = %q", got)
	}
}

// A server an operator put in maintenance does not make the cluster
// degraded (status shows the maintenance on its own line instead).
func TestDegradedIgnoresMaintenance(t *testing.T) {
	no := false
	servers := []serverHealth{
		{Address: "db1:3306", Role: "primary", Reachable: true},
		{Address: "db2:3306", Role: "unknown", Reachable: false, Errors: []string{"unreachable: connection refused"}},
		{Address: "db3:3306", Role: "replica", Reachable: true, IORunning: &no, SQLRunning: &no},
	}
	got := degraded(servers, map[string]maintenanceJSON{"db2:3306": {Reason: "disk swap"}})
	if len(got) != 1 || !strings.Contains(got[0], "db3:3306") {
		t.Fatalf("degraded = %q, want db3 only (db2 is in maintenance)", got)
	}
}
