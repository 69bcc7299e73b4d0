package failover

// Against topologytest's FAKE dialer: the statements the executor sends.

import (
	"context"
	"slices"
	"testing"

	"github.com/myha/myha/topology"
	"github.com/myha/myha/topology/topologytest"
)

// A cluster with a verified TLS mode has its replicas repointed with TLS:
// the executor passes the cluster's setting to every CHANGE MASTER.
func TestExecutorRepointsWithTheClustersTLS(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-98", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindFailover})
	f := topologytest.New()
	scriptMariaDB(f.Server("db2:3306"), "0-1-100")
	db3 := f.Server("db3:3306")
	followsAfterChange(db3, "2")
	scriptMariaDB(db3, "0-1-98")
	ex := fakeExecutor(f)
	ex.ReplTLS = topology.TLSSpec{Mode: topology.TLSVerifyFull, CAFile: "/etc/myha/ca.pem"}
	rep := ex.Execute(context.Background(), snap, &plan)
	if rep.Result != ResultSuccess {
		t.Fatalf("result %s: %s", rep.Result, rep.Error)
	}
	want := changeToDB2 + ", MASTER_SSL=1, MASTER_SSL_CA='/etc/myha/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1"
	if got := f.Statements("db3:3306"); !slices.Contains(got, want) {
		t.Fatalf("db3 was not repointed with TLS:\n%q\nwant %q", got, want)
	}
}

// The replay from a capture carries the cluster's TLS like every repoint:
// the promoted server connects to the capture with MASTER_SSL=1 and checks
// its certificate against tls.ca_file (and its name under verify-full).
func TestReplayFromCaptureUsesTheClustersTLS(t *testing.T) {
	states := []topology.ServerState{server("db1:3306", 1, "", dead, semiSyncRemembered)}
	for _, r := range []topology.ServerState{
		server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")),
		server("db3:3306", 3, "0-1-97", replicaOf("db1:3306", 1, "")),
	} {
		ioDown(&r)
		states = append(states, r)
	}
	snap := snapshot(states...)
	plan := Build(snap, pol, Request{Kind: KindFailover, Captures: []CaptureHold{{Monitor: "mon1", Source: "198.18.0.101:3310", Position: "0-1-120"}}})
	if !plan.OK() {
		t.Fatalf("blocked: %v", plan.Blockers)
	}
	f := topologytest.New()
	db2 := f.Server("db2:3306")
	followsAfterChange(db2, "4000001")
	scriptMariaDB(db2, "0-1-120")
	db3 := f.Server("db3:3306")
	followsAfterChange(db3, "2")
	scriptMariaDB(db3, "0-1-97")
	ex := fakeExecutor(f)
	ex.ReplTLS = topology.TLSSpec{Mode: topology.TLSVerifyFull, CAFile: "/etc/myha/ca.pem"}
	rep := ex.Execute(context.Background(), snap, &plan)
	want := "CHANGE MASTER TO MASTER_HOST='198.18.0.101', MASTER_PORT=3310, MASTER_USER='repl', MASTER_PASSWORD='rpw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1, MASTER_SSL=1, MASTER_SSL_CA='/etc/myha/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1"
	if got := f.Statements("db2:3306"); !slices.Contains(got, want) {
		t.Fatalf("db2 was not pointed at the capture with TLS (result %s %s):\n%q\nwant %q", rep.Result, rep.Error, got, want)
	}
	if rep.Result != ResultSuccess {
		t.Fatalf("result %s: %s", rep.Result, rep.Error)
	}
}
