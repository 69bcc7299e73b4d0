package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/daemon"
)

// pause, resume and maintenance exist only in the monitors' raft state:
// they go through the monitors' API (the first monitor that answers
// forwards to the leader) and have no local mode.

// operatorTarget checks --cluster and that the change can reach a monitor.
func (a *app) operatorTarget(cluster, daemonURL string) (*config.Config, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	if cluster == "" {
		return nil, withCode(exitProblem, fmt.Errorf("--cluster is required"))
	}
	if _, err := selectClusters(cfg, cluster); err != nil {
		return nil, err
	}
	if daemonURL == "" && len(cfg.Monitors) == 0 {
		return nil, withCode(exitProblem, fmt.Errorf("the config lists no monitors: and no --daemon was given: pause and maintenance are held by the monitors (myha daemon), there is no local mode"))
	}
	return cfg, nil
}

// operate sends one operator change and prints the monitor's answer (as
// JSON with --json, else through text).
func (a *app) operate(ctx context.Context, cfg *config.Config, daemonURL, cluster, action string, q url.Values, text func(map[string]any) string) error {
	body, code, via, err := a.callMonitors(ctx, cfg, daemonURL, cluster, action, q)
	if err != nil {
		return noMonitorErr(err, false)
	}
	var v map[string]any
	if a.jsonOut || code != http.StatusOK || json.Unmarshal(body, &v) != nil {
		a.stdout.Write(body)
	} else {
		fmt.Fprintln(a.stdout, text(v))
	}
	return answerErr(code, via, body)
}

func (a *app) pauseCommand() *cobra.Command {
	var cluster, daemonURL, reason string
	var dur time.Duration
	cmd := &cobra.Command{
		Use:   "pause",
		Short: "Stop every automatic action of the monitors on a cluster (failover, fencing, corrections)",
		Long: "Pauses a cluster on every monitor (agreed through raft): no automatic failover, fencing,\n" +
			"correction or rejoin until myha resume, or until --for has passed. The agreed primary keeps\n" +
			"its lease, so the VIP stays where it is. Manual failover and switchover still run.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.operatorTarget(cluster, daemonURL)
			if err != nil {
				return err
			}
			q := url.Values{}
			if cmd.Flags().Changed("for") {
				if dur <= 0 {
					return withCode(exitProblem, fmt.Errorf("--for %s: give a positive duration (2h, 30m), or leave it out to pause until myha resume", dur))
				}
				q.Set("for", dur.String())
			}
			if reason != "" {
				q.Set("reason", reason)
			}
			return a.operate(cmd.Context(), cfg, daemonURL, cluster, "pause", q, func(v map[string]any) string {
				until := "until myha resume"
				if u, ok := v["until"].(string); ok {
					until = "until " + u + " (then it ends by itself)"
				}
				return fmt.Sprintf("cluster %s paused on every monitor %s: no automatic failover, fencing or correction; the agreed primary keeps the VIP.\n"+
					"Manual failover and switchover (myha failover / myha switchover) still run: you are in charge.", cluster, until)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster")
	cmd.Flags().DurationVar(&dur, "for", 0, "end the pause by itself after this long (2h, 30m); default: until myha resume")
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown by status, check and the API)")
	cmd.Flags().StringVar(&daemonURL, "daemon", "", "through this monitor (http://host:8080) rather than the config's monitors")
	return cmd
}

func (a *app) resumeCommand() *cobra.Command {
	var cluster, daemonURL string
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "End a pause: the monitors act on the cluster again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.operatorTarget(cluster, daemonURL)
			if err != nil {
				return err
			}
			return a.operate(cmd.Context(), cfg, daemonURL, cluster, "resume", nil, func(map[string]any) string {
				return fmt.Sprintf("cluster %s resumed: the monitors act on it again (a dead primary is failed over at the next probe)", cluster)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster")
	cmd.Flags().StringVar(&daemonURL, "daemon", "", "through this monitor (http://host:8080) rather than the config's monitors")
	return cmd
}

func (a *app) maintenanceCommand() *cobra.Command {
	var cluster, server, daemonURL, reason string
	cmd := &cobra.Command{
		Use:   "maintenance on|off",
		Short: "Put a server in or out of maintenance: never promoted, out of /replica and alerts",
		Long: "A server in maintenance (held by the monitors through raft) is never chosen as a new primary\n" +
			"(it is still repointed to a new one), its agent answers 503 on /replica, and it does not make\n" +
			"the cluster degraded in myha status nor count in myha check. It shows in status, topology,\n" +
			"check, the API and the myha_server_maintenance metric.",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"on", "off"},
		RunE: func(cmd *cobra.Command, args []string) error {
			state := strings.ToLower(args[0])
			if state != "on" && state != "off" {
				return withCode(exitProblem, fmt.Errorf("maintenance %q: say on or off", args[0]))
			}
			cfg, err := a.operatorTarget(cluster, daemonURL)
			if err != nil {
				return err
			}
			norm, err := config.NormalizeAddress(server)
			if err != nil || server == "" {
				return withCode(exitProblem, fmt.Errorf("--server %q: host:port of a server of the cluster is required", server))
			}
			c, _ := cfg.Cluster(cluster)
			if _, ok := c.Server(norm); !ok {
				return withCode(exitProblem, fmt.Errorf("--server %s is not a server of cluster %s", norm, cluster))
			}
			q := url.Values{"server": {norm}, "state": {state}}
			if reason != "" {
				q.Set("reason", reason)
			}
			return a.operate(cmd.Context(), cfg, daemonURL, cluster, "maintenance", q, func(map[string]any) string {
				if state == "off" {
					return fmt.Sprintf("server %s of cluster %s is out of maintenance: a failover candidate and in /replica again", norm, cluster)
				}
				return fmt.Sprintf("server %s of cluster %s is in maintenance on every monitor: never chosen as new primary, its agent answers 503 on /replica", norm, cluster)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster")
	cmd.Flags().StringVar(&server, "server", "", "the server (host:port as in the config)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown by status, check, topology, the API and the agent)")
	cmd.Flags().StringVar(&daemonURL, "daemon", "", "through this monitor (http://host:8080) rather than the config's monitors")
	return cmd
}

// pauseJSON and maintenanceJSON are a cluster's pause and a server's
// maintenance as the monitors' API shows them: the daemon's own types.
type (
	pauseJSON       = daemon.Pause
	maintenanceJSON = daemon.Maintenance
)

func untilOr(t time.Time) string {
	if t.IsZero() {
		return "myha resume"
	}
	return t.Format(time.RFC3339)
}

func reasonText(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// getMonitor GETs path from --daemon, or else from the config's monitors
// in order, the first that answers.
func (a *app) getMonitor(ctx context.Context, daemonURL, path string) (*http.Response, string, error) {
	var bases []string
	if daemonURL != "" {
		bases = []string{strings.TrimRight(daemonURL, "/")}
	} else {
		// A read: a config without database passwords serves.
		cfg, err := a.loadConfigWith(config.Options{ThroughMonitors: true})
		if err != nil {
			return nil, "", err
		}
		bases = monitorURLs(cfg, "")
		if len(bases) == 0 {
			return nil, "", withCode(exitProblem, fmt.Errorf("--daemon is required: the config lists no monitors: (http://host:8080, or https:// when the API serves HTTPS)"))
		}
	}
	var tried []string
	for _, base := range bases {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, "", withCode(exitProblem, fmt.Errorf("monitor %s: %v", base, err))
		}
		resp, err := a.apiDo(req)
		if err == nil {
			return resp, base, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %v", base, err))
	}
	return nil, "", withCode(exitProblem, fmt.Errorf("no monitor answered (%s)", strings.Join(tried, "; ")))
}

// operatorState is what the monitors hold about operators' work on each
// cluster, for topology and check (best effort: nil when no monitor
// answers, which the caller says).
type operatorState struct {
	Paused      *pauseJSON
	Maintenance map[string]string
}

// fetchOperatorState asks the config's monitors for pauses and servers in
// maintenance, bounded to a few seconds; ok is false when none answered.
func (a *app) fetchOperatorState(ctx context.Context, cfg *config.Config) (map[string]operatorState, bool) {
	if len(cfg.Monitors) == 0 {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, _, err := a.getMonitor(ctx, "", "/api/v1/clusters")
	if err != nil {
		a.log.Debug("no monitor answered for the pause and maintenance state", "err", err)
		return nil, false
	}
	defer resp.Body.Close()
	var v struct {
		Clusters []struct {
			Name        string                     `json:"name"`
			Paused      *pauseJSON                 `json:"paused"`
			Maintenance map[string]maintenanceJSON `json:"maintenance"`
		} `json:"clusters"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&v) != nil {
		return nil, false
	}
	out := map[string]operatorState{}
	for _, c := range v.Clusters {
		s := operatorState{Paused: c.Paused, Maintenance: map[string]string{}}
		for srv, m := range c.Maintenance {
			s.Maintenance[srv] = m.Reason
			if m.Reason == "" {
				s.Maintenance[srv] = "no reason given"
			}
		}
		out[c.Name] = s
	}
	return out, true
}

// pause converts the API's pause for daemon.OperatorChecks.
func (o operatorState) pause() *daemon.Pause {
	if o.Paused == nil {
		return nil
	}
	return &daemon.Pause{Since: o.Paused.Since, Until: o.Paused.Until, Reason: o.Paused.Reason}
}
