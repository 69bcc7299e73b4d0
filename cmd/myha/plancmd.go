package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// planCommand builds `myha failover` and `myha switchover`: both plan with the
// shared planner, show the plan, and execute it with the shared executor.
func (a *app) planCommand(kind failover.Kind) *cobra.Command {
	var cluster, newPrimary, daemonURL string
	var dryRun, force, yes, acceptLoss, local bool
	short := map[failover.Kind]string{
		failover.KindFailover:   "Replace a dead primary with the best replica",
		failover.KindSwitchover: "Move the primary role to another server while the primary is healthy",
	}[kind]
	cmd := &cobra.Command{
		Use:   string(kind),
		Short: short,
		Long: short + ".\n\nShows the plan and asks for confirmation (unless --yes), then runs it step by step and\n" +
			"prints a timeline. On an error it stops at a safe point and says where; running the same\n" +
			"command again continues from there.\n\nExit codes: 0 done, 1 done with problems (see warnings), 2 blocked, failed, rolled back or refused.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, c, err := a.oneCluster(cluster)
			if err != nil {
				return err
			}
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
			if local && daemonURL != "" {
				return withCode(exitProblem, fmt.Errorf("--local and --daemon: choose one (--local acts on the servers, --daemon through a monitor)"))
			}
			if !dryRun && !local && (daemonURL != "" || len(cfg.Monitors) > 0) {
				if acceptLoss {
					return withCode(exitProblem, fmt.Errorf("--accept-loss is for --local only: the monitors never fail over with a loss"))
				}
				q := url.Values{}
				if newPrimary != "" {
					q.Set("new_primary", newPrimary)
				}
				if force {
					q.Set("force", "true")
				}
				if !yes && !a.confirm(fmt.Sprintf("Run the %s of cluster %s through the monitors (the leader plans and executes it; a pause does not stop it)? (yes/NO): ", kind, c.Name)) {
					return withCode(exitProblem, fmt.Errorf("not confirmed: nothing was changed"))
				}
				return noMonitorErr(a.remote(cmd.Context(), cfg, daemonURL, c.Name, string(kind), q), true)
			}
			if local && len(cfg.Monitors) > 0 && !dryRun {
				fmt.Fprintln(a.stderr, localWarning)
			}
			return a.runPlan(cmd.Context(), cfg, c, kind, failover.Request{Kind: kind, NewPrimary: newPrimary, Force: force, AcceptLoss: acceptLoss}, dryRun, yes)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster (required when the config has several)")
	cmd.Flags().StringVar(&newPrimary, "new-primary", "", "promote this server (host:port) instead of the best one")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&daemonURL, "daemon", "", "run it through this monitor (http://host:8080) rather than the config's monitors")
	cmd.Flags().BoolVar(&local, "local", false, "act directly on the servers, bypassing the monitors (the default when the config has no monitors:)")
	cmd.Long += "\n\nWhen the config lists monitors:, it runs through them (the first that answers forwards it to\n" +
		"the leader): serialized with automatic failovers, and it runs while the cluster is paused.\n" +
		"--local runs it from this host instead (--dry-run always plans here)."
	if kind == failover.KindFailover {
		cmd.Flags().BoolVar(&force, "force", false, "fail over even if the primary still answers (it is fenced first)")
		cmd.Flags().BoolVar(&acceptLoss, "accept-loss", false, "fail over although transactions some replica received would be lost (the plan names them; the daemon never does this)")
	}
	return cmd
}

func (a *app) runPlan(ctx context.Context, cfg *config.Config, c config.Cluster, kind failover.Kind, req failover.Request, dryRun, yes bool) error {
	spec := clusterSpec(c)
	pol := policyFor(c)
	st, err := a.store(cfg, c)
	if err != nil {
		return err
	}
	store := &st
	snap := recall(*store, topology.Discover(ctx, spec, dialerFor(spec)), a.log)

	// An interrupted failover whose new primary took writes must be finished,
	// never replaced by a second promotion.
	journal, err := store.Journal(c.Name)
	if err != nil {
		return withCode(exitProblem, err)
	}
	var plan failover.Plan
	if journal != nil && journal.Promoted && req.AcceptLoss && kind == failover.KindFailover {
		if np, ok := snap.Server(journal.NewPrimary); ok && !np.Reachable {
			// The operator accepts losing what the dead promoted server may
			// have taken: set the attempt aside and plan afresh.
			where, err := store.Abandon(c.Name, journal)
			if err != nil {
				return withCode(exitProblem, fmt.Errorf("setting aside failover %s: %w", journal.ID, err))
			}
			fmt.Fprintf(a.stderr, "failover %s (which promoted %s, now unreachable) was set aside with --accept-loss: %s\n", journal.ID, journal.NewPrimary, where)
			journal = nil
		}
	}
	if journal != nil && journal.Promoted {
		if req.NewPrimary != "" && req.NewPrimary != journal.NewPrimary {
			return withCode(exitProblem, fmt.Errorf("failover %s was interrupted after promoting %s; it must be finished first (run without --new-primary)", journal.ID, journal.NewPrimary))
		}
		plan = failover.BuildResume(&snap, pol, journal)
	} else {
		if journal != nil && kind == failover.KindFailover {
			req.PreviousAttempt = journal.NewPrimary
		}
		plan = failover.Build(&snap, pol, req)
		if journal != nil {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("an earlier attempt (%s, started %s) stopped before promotion at step %q; planning afresh", journal.ID, journal.Started.Format(time.RFC3339), orNone(journal.LastStep)))
		}
	}
	if until, last := store.BlockedUntil(c.Name, c.Failover.BlockPeriod, time.Now()); !until.IsZero() && kind == failover.KindFailover {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("failover %s (%s → %s) happened at %s: automatic failovers are blocked until %s unless acknowledged (myha ack); a manual one proceeds",
			last.ID, last.OldPrimary, last.NewPrimary, last.Started.Format(time.RFC3339), until.Format(time.RFC3339)))
	}
	if a.jsonOut && (dryRun || !plan.OK()) {
		if err := a.printJSON(map[string]any{"dry_run": dryRun, "plan": plan}); err != nil {
			return err
		}
	} else if !a.jsonOut {
		plan.WriteText(a.stdout)
	}
	if !plan.OK() {
		return withCode(exitProblem, fmt.Errorf("%s of cluster %s is blocked: nothing was changed", kind, c.Name))
	}
	if dryRun {
		return nil
	}
	if !yes && !a.confirm(fmt.Sprintf("Proceed with the %s, promoting %s? (yes/NO): ", kind, plan.NewPrimary)) {
		return withCode(exitProblem, fmt.Errorf("not confirmed: nothing was changed"))
	}
	ex := &failover.Executor{
		Dialer:           dialerFor(spec),
		Repl:             topology.Credentials{User: c.ReplicationUser, Password: c.ReplicationPassword.Value()},
		ReplTLS:          spec.TLS,
		Policy:           pol,
		Hooks:            hooksFor(c),
		Accounts:         []string{c.User, c.ReplicationUser},
		LockAccount:      c.User,
		Store:            store,
		Log:              a.log,
		StatementTimeout: max(2*c.ReadTimeout, 5*time.Second),
		Rediscover:       func(ctx context.Context) topology.Snapshot { return topology.Discover(ctx, spec, dialerFor(spec)) },
	}
	ex.Crash = crashAt(os.Getenv("MYHA_CRASH_AT"), a.stderr)
	// Live progress on stderr; the report on stdout.
	ex.Progress = func(s failover.StepResult) {
		fmt.Fprintf(a.stderr, "  %-8s %-21s %-22s %8.1fms  %s\n", s.Status, s.Kind, s.Server, s.DurationMS, s.Note)
	}
	rep := ex.Execute(ctx, &snap, &plan)
	if a.jsonOut {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(a.stdout)
		rep.WriteTimeline(a.stdout)
	}
	switch rep.Result {
	case failover.ResultSuccess:
		return nil
	case failover.ResultPartial:
		a.code = exitWarn
		return nil
	}
	return withCode(exitProblem, fmt.Errorf("%s %s: %s", kind, rep.Result, rep.Error))
}

// crashAt is the failure-injection switch for tests: MYHA_CRASH_AT names an
// executor point ("after:promote@10.0.0.2:3306", "promote:intent", ... a
// point matches when it starts with the value) and the process exits there
// at once with code 97, as if killed. Unset, it does nothing.
func crashAt(want string, w io.Writer) func(string) {
	if want == "" {
		return nil
	}
	return func(point string) {
		if strings.HasPrefix(point, want) {
			fmt.Fprintf(w, "MYHA_CRASH_AT: exiting at %s\n", point)
			os.Exit(97)
		}
	}
}

// confirm asks on stdin; only "yes" proceeds (MHA's convention).
func (a *app) confirm(prompt string) bool {
	fmt.Fprint(a.stdout, prompt)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	return strings.EqualFold(strings.TrimSpace(line), "yes")
}

func hooksFor(c config.Cluster) failover.Hooks {
	f := c.Failover
	return failover.Hooks{Pre: f.PreFailover, Post: f.PostFailover, MasterIPFailoverScript: f.MasterIPFailoverScript,
		MasterIPOnlineChangeScript: f.MasterIPOnlineChangeScript, ShutdownScript: f.ShutdownScript, Timeout: f.HookTimeout}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (a *app) ackCommand() *cobra.Command {
	var cluster, daemonURL string
	var local bool
	cmd := &cobra.Command{
		Use:   "ack",
		Short: "Acknowledge the last failover, lifting the block on automatic failovers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if cluster == "" {
				return withCode(exitProblem, fmt.Errorf("--cluster is required"))
			}
			if _, err := selectClusters(cfg, cluster); err != nil {
				return err
			}
			if local && daemonURL != "" {
				return withCode(exitProblem, fmt.Errorf("--local and --daemon: choose one"))
			}
			if !local && (daemonURL != "" || len(cfg.Monitors) > 0) {
				body, code, via, err := a.callMonitors(cmd.Context(), cfg, daemonURL, cluster, "ack", nil)
				if err != nil {
					return noMonitorErr(err, true)
				}
				if a.jsonOut || code != http.StatusOK {
					a.stdout.Write(body)
				} else {
					fmt.Fprintf(a.stdout, "cluster %s: acknowledged through the monitors (%s); automatic failovers are allowed again on every monitor\n", cluster, via)
				}
				return answerErr(code, via, body)
			}
			if local && len(cfg.Monitors) > 0 {
				fmt.Fprintln(a.stderr, "WARNING: --local acknowledges in this host's state directory only: the monitors' block stays in force (run it without --local to lift it)")
			}
			c, _ := cfg.Cluster(cluster)
			store, err := a.store(cfg, *c)
			if err != nil {
				return err
			}
			if err := store.Ack(cluster, time.Now()); err != nil {
				return withCode(exitProblem, err)
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"cluster": cluster, "acknowledged": true})
			}
			fmt.Fprintf(a.stdout, "cluster %s: last failover acknowledged in %s; failovers run from this host are no longer warned about\n", cluster, cfg.StateDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster")
	cmd.Flags().StringVar(&daemonURL, "daemon", "", "acknowledge through this monitor (http://host:8080) rather than the config's monitors")
	cmd.Flags().BoolVar(&local, "local", false, "acknowledge in this host's state directory only (the monitors' block stays)")
	return cmd
}
