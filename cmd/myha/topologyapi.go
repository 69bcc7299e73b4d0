package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/myha/myha/topology"
)

// apiClusters is the part of a monitor's GET /api/v1/clusters that
// topology --api reads: each cluster's entry holds the topology report
// (with fields of the monitor's own beside it, ignored here).
type apiClusters struct {
	Monitor  string                   `json:"monitor"`
	Time     time.Time                `json:"time"`
	Clusters []topology.ClusterReport `json:"clusters"`
}

// pickClusters returns the reports of the named clusters, in that order.
// A cluster the monitor does not watch, or has not probed yet, is an
// error: that monitor cannot answer, the next one may.
func pickClusters(ans apiClusters, names []string) ([]topology.ClusterReport, error) {
	out := make([]topology.ClusterReport, 0, len(names))
	for _, n := range names {
		found := false
		for _, r := range ans.Clusters {
			if r.Name != n {
				continue
			}
			if r.TakenAt.IsZero() || len(r.Servers) == 0 {
				return nil, fmt.Errorf("it has no snapshot of cluster %s yet", n)
			}
			out, found = append(out, r), true
			break
		}
		if !found {
			return nil, fmt.Errorf("it does not watch cluster %s (is its config the same?)", n)
		}
	}
	return out, nil
}

// snapshotAge is how old a snapshot was when the monitor answered, on the
// monitor's clock when it sent one (monitorNow), else on ours.
func snapshotAge(takenAt, monitorNow, localNow time.Time) time.Duration {
	now := monitorNow
	if now.IsZero() {
		now = localNow
	}
	if d := now.Sub(takenAt); d > 0 {
		return d
	}
	return 0
}

// topologyThroughMonitors is `myha topology --api`: the tree and JSON of
// the direct command, from the first monitor that answers, with a line
// naming it and the snapshot's age. The config needs no database password.
func (a *app) topologyThroughMonitors(ctx context.Context, cluster, given string) error {
	cfg, err := a.loadConfigThroughMonitors()
	if err != nil {
		return err
	}
	clusters, err := selectClusters(cfg, cluster)
	if err != nil {
		return err
	}
	names := make([]string, len(clusters))
	for i, c := range clusters {
		names[i] = c.Name
	}
	apis, err := monitorAPIs(cfg, given)
	if err != nil {
		return withCode(exitProblem, err)
	}
	var ans apiClusters
	var reports []topology.ClusterReport
	from, err := a.readMonitors(ctx, apis, "/api/v1/clusters", func(body []byte) error {
		ans = apiClusters{}
		if err := json.Unmarshal(body, &ans); err != nil {
			return fmt.Errorf("not the API's clusters answer: %v", err)
		}
		reports, err = pickClusters(ans, names)
		return err
	})
	if err != nil {
		return withCode(exitProblem, fmt.Errorf("topology --api: %v", err))
	}
	if from.Name == "" {
		from.Name = ans.Monitor
	}
	now := time.Now()
	ages := map[string]int64{}
	for _, r := range reports {
		ages[r.Name] = snapshotAge(r.TakenAt, ans.Time, now).Milliseconds()
		if !primaryInService(r) {
			a.code = exitWarn // as the direct command: no primary in service is not healthy
		}
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"clusters": reports,
			"monitor": map[string]any{"name": from.Name, "url": from.URL, "snapshot_age_ms": ages}})
	}
	for i := range reports {
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintf(a.stdout, "read from monitor %s at %s: snapshot %s old\n", from.Name, from.URL,
			(time.Duration(ages[reports[i].Name]) * time.Millisecond).Round(100*time.Millisecond))
		reports[i].WriteTree(a.stdout)
	}
	return nil
}

// primaryInService reports whether the report has a primary it reached.
func primaryInService(r topology.ClusterReport) bool {
	if r.Primary == nil || strings.TrimSpace(*r.Primary) == "" {
		return false
	}
	for _, s := range r.Servers {
		if s.Address == *r.Primary {
			return s.Reachable
		}
	}
	return false
}
