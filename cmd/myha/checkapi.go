package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/myha/myha/failover"
)

// checkThroughMonitors is `myha check --api`: each cluster's checks as
// the first monitor that answers runs them on its own snapshot (GET
// /api/v1/clusters/{name}/check), printed and exited as the direct check.
// The config needs no database password.
func (a *app) checkThroughMonitors(ctx context.Context, cluster, given string) error {
	cfg, err := a.loadConfigThroughMonitors()
	if err != nil {
		return withCode(exitCannot, err)
	}
	clusters, err := selectClusters(cfg, cluster)
	if err != nil {
		return withCode(exitCannot, err)
	}
	apis, err := monitorAPIs(cfg, given)
	if err != nil {
		return withCode(exitCannot, err)
	}
	var reports []checkReport
	worst := failover.OK
	for i, c := range clusters {
		var r checkReport
		from, err := a.readMonitors(ctx, apis, "/api/v1/clusters/"+url.PathEscape(c.Name)+"/check", func(body []byte) error {
			r = checkReport{}
			if err := json.Unmarshal(body, &r); err != nil || r.Name != c.Name || len(r.Checks) == 0 {
				return fmt.Errorf("not the API's check of cluster %s (%v)", c.Name, err)
			}
			return nil
		})
		if err != nil {
			return withCode(exitCannot, fmt.Errorf("check --api: %v", err))
		}
		r.Monitor = &from
		reports = append(reports, r)
		worst = failover.Summarize(append(r.Checks, failover.Check{Status: worst}))
		if !a.jsonOut {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			fmt.Fprintf(a.stdout, "checked by monitor %s on its own snapshot\n", from)
			writeCheckText(a, r)
		}
	}
	if a.jsonOut {
		if err := a.printJSON(map[string]any{"clusters": reports}); err != nil {
			return err
		}
	}
	a.code = map[failover.Status]int{failover.OK: exitOK, failover.Warn: exitWarn, failover.Fail: exitProblem}[worst]
	return nil
}
