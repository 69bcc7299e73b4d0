package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/topology"
)

func (a *app) topologyCommand() *cobra.Command {
	var cluster, api string
	cmd := &cobra.Command{
		Use:   "topology [--api [URL]]",
		Short: "Discover and print the replication tree of each cluster",
		Long: "Queries every configured server in parallel and prints the replication tree: roles,\n" +
			"read_only, thread states, lag, GTID positions, errant transactions and problems.\n\n" +
			"With --api it reads the tree a monitor discovered instead (the given URL, else each monitor of\n" +
			"the config in turn until one answers), with the API's read token: the config then needs no\n" +
			"database password. The output is the same, with a line naming the monitor and the snapshot's age.",
		Args: apiArgs(&api),
		RunE: func(cmd *cobra.Command, args []string) error {
			if api != "" {
				return a.topologyThroughMonitors(cmd.Context(), cluster, apiURL(api, args))
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			clusters, err := selectClusters(cfg, cluster)
			if err != nil {
				return err
			}
			var reports []topology.ClusterReport
			ops, opsKnown := a.fetchOperatorState(cmd.Context(), cfg)
			if len(cfg.Monitors) > 0 && !opsKnown {
				fmt.Fprintln(a.stderr, "note: no monitor answered: pause and maintenance are not shown")
			}
			paused := map[string]any{}
			for i, c := range clusters {
				spec := clusterSpec(c)
				store, err := a.store(cfg, c)
				if err != nil {
					return err
				}
				snap := recall(store, topology.Discover(cmd.Context(), spec, dialerFor(spec)), a.log)
				op := ops[c.Name]
				snap.MarkMaintenance(op.Maintenance)
				if op.Paused != nil {
					paused[c.Name] = op.Paused
				}
				a.log.Info("discovered", "cluster", c.Name, "took", snap.Took, "primary", snap.Primary)
				if p, ok := snap.Server(snap.Primary); !ok || !p.Reachable {
					a.code = exitWarn // no primary in service: scripts must not read this as healthy
				}
				if a.jsonOut {
					reports = append(reports, snap.Report())
					continue
				}
				if i > 0 {
					a.stdout.Write([]byte("\n"))
				}
				snap.WriteTree(a.stdout)
				if p := op.Paused; p != nil {
					fmt.Fprintf(a.stdout, "PAUSED since %s until %s%s: the monitors take no automatic action\n", p.Since.Format(time.RFC3339), untilOr(p.Until), reasonText(p.Reason))
				}
			}
			if a.jsonOut {
				out := map[string]any{"clusters": reports}
				if len(paused) > 0 {
					out["paused"] = paused
				}
				return a.printJSON(out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	addAPIFlag(cmd, &api, "read the tree from a monitor's API: --api alone tries each monitor of the config, --api URL asks that one")
	return cmd
}
