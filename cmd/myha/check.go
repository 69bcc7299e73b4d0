package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/daemon"
	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// checkReport is the JSON shape of `myha check`.
type checkReport struct {
	Name   string           `json:"name"`
	Status failover.Status  `json:"status"`
	Checks []failover.Check `json:"checks"`
	Plan   failover.Plan    `json:"plan"`
	// Monitor is the monitor that ran the checks, with check --api.
	Monitor *monitorAPI `json:"monitor,omitempty"`
}

func (a *app) checkCommand() *cobra.Command {
	var cluster, api string
	cmd := &cobra.Command{
		Use:   "check [--api [URL]]",
		Short: "Pre-failover health report: what is wrong now, and what a failover would do",
		Long: "Runs named checks on every server (replication threads, lag, GTID, errant transactions,\n" +
			"privileges, durability, detection timeouts, ...) and prints the plan a failover would follow\n" +
			"if the primary died now.\n\nWith --api a monitor runs the checks it can judge from its own snapshot (the given URL, else\n" +
			"each monitor of the config in turn); the config then needs no database password.\n\n" +
			"Exit codes: 0 all ok, 1 warnings only, 2 any failure, 3 could not run.",
		Args: apiArgs(&api),
		RunE: func(cmd *cobra.Command, args []string) error {
			if api != "" {
				return a.checkThroughMonitors(cmd.Context(), cluster, apiURL(api, args))
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return withCode(exitCannot, err)
			}
			clusters, err := selectClusters(cfg, cluster)
			if err != nil {
				return withCode(exitCannot, err)
			}
			var reports []checkReport
			worst := failover.OK
			ops, opsKnown := a.fetchOperatorState(cmd.Context(), cfg)
			for i, c := range clusters {
				store, err := a.store(cfg, c)
				if err != nil {
					return err
				}
				op := ops[c.Name]
				r := runCheck(cmd.Context(), c, store, a.log, captureHolds(cmd.Context(), cfg, c), op.Maintenance)
				r.Checks = append(r.Checks, daemon.ServerMajorityCheck(len(c.Servers)))
				r.Checks = daemon.OperatorChecks(r.Checks, op.pause(), op.Maintenance)
				if len(cfg.Monitors) > 0 && !opsKnown {
					r.Checks = append(r.Checks, failover.Check{Name: "paused", Status: failover.Warn,
						Message: "no monitor answered: whether the cluster is paused or a server is in maintenance is unknown",
						Fix:     "check that the monitors run (myha status) and that their API port is reachable from here"})
				}
				r.Status = failover.Summarize(r.Checks)
				if n := len(cfg.Monitors); n < 3 {
					r.Checks = append(r.Checks, failover.Check{Name: "monitors", Status: failover.Warn,
						Message: fmt.Sprintf("%d monitor(s) configured: fewer than 3 cannot lose one and keep a quorum for automatic failover", n),
						Fix:     "list three monitors (separate hosts) under monitors: and run myha daemon on each"})
					r.Status = failover.Summarize(r.Checks)
				}
				reports = append(reports, r)
				worst = failover.Summarize(append(r.Checks, failover.Check{Status: worst}))
				if !a.jsonOut {
					if i > 0 {
						fmt.Fprintln(a.stdout)
					}
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
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	addAPIFlag(cmd, &api, "run the checks on a monitor: --api alone tries each monitor of the config, --api URL asks that one")
	return cmd
}

// recall keeps what the snapshot teaches about its primary in the state
// directory, or completes a snapshot whose primary is dead with what was
// remembered (its dialect, semi-sync, co-primary pair). A state directory
// that cannot be written only costs the memory: logged, not fatal.
func recall(store failover.Store, snap topology.Snapshot, log *slog.Logger) topology.Snapshot {
	out, err := store.Recall(snap)
	if err != nil {
		log.Info("cannot keep the cluster's memory in the state directory", "cluster", snap.Cluster, "err", err)
	}
	return out
}

// runCheck gathers what the checks need (the imperative part) and judges it.
func runCheck(ctx context.Context, c config.Cluster, store failover.Store, log *slog.Logger, holds []failover.CaptureHold, maint map[string]string) checkReport {
	spec := clusterSpec(c)
	snap := recall(store, topology.Discover(ctx, spec, dialerFor(spec)), log)
	snap.MarkMaintenance(maint)
	pol := policyFor(c)
	pol.Maintenance = maint
	plan := failover.Build(&snap, pol, failover.Request{Kind: failover.KindFailover, Hypothetical: true})
	facts := gatherFacts(ctx, spec, &snap)
	checks := failover.RunChecks(failover.CheckInput{Snapshot: &snap, Policy: pol, ReplLogin: replLogins(ctx, c, &snap),
		Accounts: []string{c.User, c.ReplicationUser}, ReadOnlyOrigin: facts.readOnlyOrigin,
		TLS: spec.TLS.Mode, SessionTLS: facts.sessionTLS, LockHolders: facts.lockHolder, LockAccount: c.User})
	checks = append(checks, failover.CandidateCheck(&plan))
	if c.Capture.Enabled {
		checks = append(checks, failover.CaptureCheck(&snap, holds)...)
	}
	return checkReport{Name: c.Name, Status: failover.Summarize(checks), Checks: checks, Plan: plan}
}

// replLogins tries the replication account on every server that could become
// primary, the way replicas will log in after a failover.
func replLogins(ctx context.Context, c config.Cluster, snap *topology.Snapshot) map[string]error {
	d := topology.SQLDialer{
		Credentials:    topology.Credentials{User: c.ReplicationUser, Password: c.ReplicationPassword.Value()},
		ConnectTimeout: c.ConnectTimeout, ReadTimeout: c.ReadTimeout, TLS: clusterSpec(c).TLS,
	}
	out := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, v := range snap.Servers {
		if !v.Reachable || v.Spec.NoMaster || v.Source != snap.Primary || snap.Primary == "" {
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			q, err := d.Dial(ctx, addr)
			if err == nil {
				q.Close()
			} else {
				err = fmt.Errorf("%s", trimServer(err.Error(), addr))
			}
			mu.Lock()
			out[addr] = err
			mu.Unlock()
		}(v.Spec.Address)
	}
	wg.Wait()
	return out
}

// serverFacts are what only myha check needs from each reachable server
// (so discovery does not pay for them), read on one session per server.
type serverFacts struct {
	readOnlyOrigin map[string]string               // where read_only comes from, and its value
	sessionTLS     map[string]string               // TLS version of myha's session, "" = plain text
	lockHolder     map[string]*failover.LockHolder // who holds the failover lock (nil: free)
}

func gatherFacts(ctx context.Context, spec topology.ClusterSpec, snap *topology.Snapshot) serverFacts {
	d := dialerFor(spec)
	f := serverFacts{readOnlyOrigin: map[string]string{}, sessionTLS: map[string]string{}, lockHolder: map[string]*failover.LockHolder{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, v := range snap.Servers {
		if !v.Reachable {
			continue
		}
		wg.Add(1)
		go func(addr string, dl topology.Dialect) {
			defer wg.Done()
			q, err := d.Dial(ctx, addr)
			if err != nil {
				return
			}
			defer q.Close()
			if rows, err := q.Query(ctx, dl.SessionTLSQuery()); err == nil {
				ver := ""
				if len(rows) == 1 {
					ver = rows[0]["Value"]
				}
				mu.Lock()
				f.sessionTLS[addr] = ver
				mu.Unlock()
			}
			if h, err := failover.ReadLockHolder(ctx, q, dl, addr, failover.LockName(spec.Name)); err == nil {
				mu.Lock()
				f.lockHolder[addr] = h
				mu.Unlock()
			}
			rows, err := q.Query(ctx, dl.ReadOnlyOriginQuery())
			if err != nil || len(rows) != 1 {
				return
			}
			mu.Lock()
			f.readOnlyOrigin[addr] = strings.ToUpper(rows[0]["o"]) + " " + strings.ToUpper(rows[0]["v"])
			mu.Unlock()
		}(v.Spec.Address, v.Dialect)
	}
	wg.Wait()
	return f
}

func trimServer(msg, addr string) string {
	if len(msg) > len(addr)+2 && msg[:len(addr)+2] == addr+": " {
		return msg[len(addr)+2:]
	}
	return msg
}

func policyFor(c config.Cluster) failover.Policy {
	p := failover.Policy{MaxLag: c.Failover.MaxLag, CatchupTimeout: c.Failover.CatchupTimeout, KillGrace: c.Failover.KillGrace,
		IPScript:   c.Failover.MasterIPFailoverScript != "" || c.Failover.MasterIPOnlineChangeScript != "",
		MaxBacklog: max(c.Failover.MaxBacklog, 0)}
	if c.Failover.SemiSync != "auto" {
		p.SemiSync = c.Failover.SemiSync
	}
	if c.VIP != nil {
		p.VIP, p.VIPInterface = c.VIP.Address, c.VIP.Interface
		p.VIPByAgents = c.VIP.Method == "agent"
	}
	return p
}

func writeCheckText(a *app, r checkReport) {
	w := a.stdout
	fmt.Fprintf(w, "cluster %s\n", r.Name)
	sym := map[failover.Status]string{failover.OK: "ok  ", failover.Warn: "WARN", failover.Fail: "FAIL"}
	var warns, fails int
	for _, c := range r.Checks {
		where := c.Server
		if where == "" {
			where = "(cluster)"
		}
		fmt.Fprintf(w, "  %s %-30s %-21s %s\n", sym[c.Status], c.Name, where, c.Message)
		if c.Status != failover.OK && c.Fix != "" {
			fmt.Fprintf(w, "       fix: %s\n", c.Fix)
		}
		switch c.Status {
		case failover.Warn:
			warns++
		case failover.Fail:
			fails++
		}
	}
	fmt.Fprintln(w, "\nIf the primary died now:")
	r.Plan.WriteText(w)
	verdict := map[failover.Status]string{failover.OK: "healthy", failover.Warn: "healthy, with warnings", failover.Fail: "NOT healthy"}[r.Status]
	fmt.Fprintf(w, "\ncluster %s is %s: %d failure(s), %d warning(s)\n", r.Name, verdict, fails, warns)
}
