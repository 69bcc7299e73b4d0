package daemon

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/myha/myha/topology"
)

// The API's cluster object must say what the report's JSON says: same
// keys, same values once encoded.
func TestReportMapMatchesTheReportsJSON(t *testing.T) {
	p, src := "db1:3306", "db1:3306"
	snap := topology.Snapshot{Cluster: "c", Primary: p, Problems: []string{"x"}, Servers: []topology.ServerView{
		{ServerState: topology.ServerState{Spec: topology.ServerSpec{Address: p}, Reachable: true}},
		{ServerState: topology.ServerState{Spec: topology.ServerSpec{Address: "db2:3306"}, Reachable: true}, Source: src},
	}}
	r := snap.Report()
	want := map[string]any{}
	b, _ := json.Marshal(r)
	json.Unmarshal(b, &want)
	gb, err := json.Marshal(reportMap(r))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	json.Unmarshal(gb, &got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reportMap encodes as\n%s\nthe report as\n%s", gb, b)
	}
}
