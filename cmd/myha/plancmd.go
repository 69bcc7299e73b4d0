package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

const defaultKillGrace = time.Second

// planCommand builds `myha failover` and `myha switchover`. Both print the
// plan from the shared planner; executing it arrives with the executor.
func (a *app) planCommand(kind failover.Kind) *cobra.Command {
	var cluster, newPrimary string
	var dryRun, force bool
	short := map[failover.Kind]string{
		failover.KindFailover:   "Replace a dead primary with the best replica",
		failover.KindSwitchover: "Move the primary role to another server while the primary is healthy",
	}[kind]
	cmd := &cobra.Command{
		Use:   string(kind),
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if cluster == "" && len(cfg.Clusters) > 1 {
				return withCode(exitProblem, fmt.Errorf("--cluster is required: the config has %d clusters", len(cfg.Clusters)))
			}
			cs, err := selectClusters(cfg, cluster)
			if err != nil {
				return err
			}
			c := cs[0]
			if newPrimary != "" {
				norm, err := config.NormalizeAddress(newPrimary)
				if err != nil {
					return withCode(exitProblem, fmt.Errorf("--new-primary: %v", err))
				}
				if _, ok := c.Server(norm); !ok {
					return withCode(exitProblem, fmt.Errorf("--new-primary %s is not a server of cluster %s", norm, c.Name))
				}
				newPrimary = norm
			}
			spec := clusterSpec(c)
			snap := topology.Discover(cmd.Context(), spec, dialerFor(spec))
			plan := failover.Build(&snap, policyFor(c), failover.Request{Kind: kind, NewPrimary: newPrimary, Force: force})
			if a.jsonOut {
				if err := a.printJSON(map[string]any{"dry_run": dryRun, "plan": plan}); err != nil {
					return err
				}
			} else {
				plan.WriteText(a.stdout)
			}
			if !plan.OK() {
				return withCode(exitProblem, fmt.Errorf("%s of cluster %s is blocked (see the plan above)", kind, c.Name))
			}
			if !dryRun {
				return withCode(exitProblem, fmt.Errorf("executing a %s is not available in this version yet: nothing was changed (use --dry-run to see the plan)", kind))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster (required when the config has several)")
	cmd.Flags().StringVar(&newPrimary, "new-primary", "", "promote this server (host:port) instead of the best one")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	if kind == failover.KindFailover {
		cmd.Flags().BoolVar(&force, "force", false, "fail over even if the primary still answers (it is fenced first)")
	}
	return cmd
}
