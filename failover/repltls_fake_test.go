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
