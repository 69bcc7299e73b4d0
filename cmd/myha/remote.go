package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
)

// remote sends a change to a daemon, which forwards it to the leader, so a
// manual action is serialized with automatic ones.
func (a *app) remote(ctx context.Context, cfg *config.Config, base, cluster, action string, q url.Values) error {
	if cfg.Security.APIToken == "" {
		return withCode(exitProblem, fmt.Errorf("--daemon needs security.api_token_file in the config (the API refuses changes without a token)"))
	}
	u := strings.TrimRight(base, "/") + "/api/clusters/" + url.PathEscape(cluster) + "/" + action
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", base, err))
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Security.APIToken.Value())
	resp, err := a.apiDo(req)
	if err != nil {
		return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", base, err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if a.jsonOut {
		a.stdout.Write(body)
	} else {
		var rep failover.Report
		if json.Unmarshal(body, &rep) == nil && rep.Result != "" {
			rep.WriteTimeline(a.stdout)
		} else {
			a.stdout.Write(body)
		}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return withCode(exitProblem, fmt.Errorf("the daemon refused the token"))
	}
	return withCode(exitProblem, fmt.Errorf("the daemon answered %s", resp.Status))
}

func (a *app) historyCommand() *cobra.Command {
	var cluster, daemonURL string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show recorded failovers and switchovers with their timelines",
		Long:  "Reads the history from the state directory (manual runs on this host) or, with --daemon, from\na monitor (the raft-replicated history of automatic and daemon-run failovers).",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var reps []failover.Report
			if daemonURL != "" {
				ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(daemonURL, "/")+"/api/failovers", nil)
				resp, err := a.apiDo(req)
				if err != nil {
					return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", daemonURL, err))
				}
				defer resp.Body.Close()
				var v struct {
					Failovers []failover.Report `json:"failovers"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
					return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", daemonURL, err))
				}
				reps = v.Failovers
			} else {
				cfg, err := a.loadConfig()
				if err != nil {
					return err
				}
				cs, err := selectClusters(cfg, cluster)
				if err != nil {
					return err
				}
				for _, c := range cs {
					store, err := a.store(cfg, c)
					if err != nil {
						return err
					}
					h, err := store.History(c.Name)
					if err != nil {
						return withCode(exitProblem, err)
					}
					reps = append(reps, h...)
				}
			}
			var out []failover.Report
			for _, r := range reps {
				if cluster == "" || r.Cluster == cluster {
					out = append(out, r)
				}
			}
			if a.jsonOut {
				if out == nil {
					out = []failover.Report{}
				}
				return a.printJSON(map[string]any{"failovers": out})
			}
			if len(out) == 0 {
				fmt.Fprintln(a.stdout, "no failover recorded")
			}
			for i := range out {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				out[i].WriteTimeline(a.stdout)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	cmd.Flags().StringVar(&daemonURL, "daemon", "", "read from a monitor's API (http://host:8080)")
	return cmd
}
