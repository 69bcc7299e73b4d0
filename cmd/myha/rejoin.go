package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// rejoinCommand builds `myha rejoin`: make an old primary that came back
// (or any stray server) a replica of the primary in service, refusing with
// the exact errant GTIDs when it holds writes the primary never had.
func (a *app) rejoinCommand() *cobra.Command {
	var cluster, server string
	var dryRun, yes bool
	cmd := &cobra.Command{
		Use:   "rejoin",
		Short: "Make a returning old primary (or any stray) a replica of the current primary",
		Long: "Make a returning old primary (or any stray) a replica of the current primary.\n\n" +
			"Refuses, naming the GTIDs and the remedy, when the server holds transactions the primary\n" +
			"never had. Otherwise, under the cluster's failover lock: read_only=1, a fresh errant check,\n" +
			"the repoint, and a bounded wait for both replication threads; it stops at the first problem\n" +
			"and says where (the server is left read-only at worst).\n\nExit codes: 0 done or nothing to do, 2 refused or failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, c, err := a.oneCluster(cluster)
			if err != nil {
				return err
			}
			if server == "" {
				return withCode(exitProblem, fmt.Errorf("--server is required: the server to make a replica (host:port)"))
			}
			norm, err := config.NormalizeAddress(server)
			if err != nil {
				return withCode(exitProblem, fmt.Errorf("--server: %v", err))
			}
			store, err := a.store(cfg, c)
			if err != nil {
				return err
			}
			spec := clusterSpec(c)
			snap := recall(store, topology.Discover(cmd.Context(), spec, dialerFor(spec)), a.log)
			plan := failover.PlanRejoin(&snap, norm)
			if !a.jsonOut {
				writeRejoinPlan(a, plan)
			}
			switch {
			case len(plan.Blockers) > 0:
				if a.jsonOut {
					a.printJSON(failover.RejoinReport{Plan: plan})
				}
				a.code = exitProblem // the plan printed says why
				return nil
			case plan.Nothing || dryRun:
				if a.jsonOut {
					return a.printJSON(failover.RejoinReport{Plan: plan})
				}
				return nil
			}
			if !yes && !a.confirm("Proceed? (yes/NO) ") {
				return withCode(exitProblem, fmt.Errorf("not confirmed: nothing changed"))
			}
			rep := failover.ExecuteRejoin(cmd.Context(), failover.RejoinOptions{Dialer: dialerFor(spec), Spec: spec,
				Repl: topology.Credentials{User: c.ReplicationUser, Password: c.ReplicationPassword.Value()}, Log: a.log}, plan)
			if a.jsonOut {
				a.printJSON(rep)
			} else {
				for _, s := range rep.Steps {
					status, text := "done", s.Detail
					if s.Err != "" {
						status, text = "FAILED", s.Err
					}
					fmt.Fprintf(a.stdout, "  %-8s %-7s %8.1fms  %s\n", s.Name, status, s.DurationMS, text)
				}
			}
			if !rep.Done {
				return withCode(exitProblem, fmt.Errorf("rejoin of %s stopped at %s; %s is read-only and not repointed past that step", norm, rep.StoppedAt, norm))
			}
			if !a.jsonOut {
				fmt.Fprintf(a.stdout, "%s replicates from %s\n", norm, plan.Primary)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster (required when the config has several)")
	cmd.Flags().StringVar(&server, "server", "", "the server to make a replica (host:port)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would happen and change nothing")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

func writeRejoinPlan(a *app, p failover.RejoinPlan) {
	fmt.Fprintf(a.stdout, "Rejoin %s in cluster %s", p.Server, p.Cluster)
	if p.Primary != "" {
		fmt.Fprintf(a.stdout, " as a replica of %s", p.Primary)
	}
	fmt.Fprintln(a.stdout)
	switch {
	case len(p.Blockers) > 0:
		for _, b := range p.Blockers {
			fmt.Fprintf(a.stdout, "  BLOCKED: %s\n", b)
		}
	case p.Nothing:
		fmt.Fprintf(a.stdout, "  nothing to do: %s already replicates from %s\n", p.Server, p.Primary)
	default:
		fmt.Fprintf(a.stdout, "  steps: lock, read_only=1, errant re-check, repoint (GTID), wait for io:Yes sql:Yes\n")
	}
}
