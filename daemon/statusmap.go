package daemon

import "github.com/myha/myha/topology"

// reportMap is a cluster report as the top level of the API's cluster
// object: the report's own fields, each keeping its typed value (encoded
// by its JSON tags when the answer is written). It replaces a JSON
// round trip per cluster per request, which made GET /api/clusters take
// over a second at 300 clusters. TestReportMapMatchesTheReportsJSON fails
// when ClusterReport gains a field this does not copy.
func reportMap(r topology.ClusterReport) map[string]any {
	return map[string]any{"name": r.Name, "primary": r.Primary, "taken_at": r.TakenAt, "took_ms": r.TookMS, "problems": r.Problems,
		"unlisted_replicas": r.Unlisted, "servers": r.Servers}
}
