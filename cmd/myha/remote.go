package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	u := strings.TrimRight(base, "/") + "/api/v1/clusters/" + url.PathEscape(cluster) + "/" + action
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(actionJSON(q)))
	if err != nil {
		return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", base, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cfg.Security.APIToken.Value())
	resp, err := a.apiDo(req)
	if err != nil {
		return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", base, err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if a.jsonOut {
		a.stdout.Write(body)
	}
	if resp.StatusCode == http.StatusOK {
		var rep failover.Report
		if !a.jsonOut && json.Unmarshal(body, &rep) == nil && rep.Result != "" {
			rep.WriteTimeline(a.stdout)
		} else if !a.jsonOut {
			a.stdout.Write(body)
		}
		return nil
	}
	e, ok := parseAPIError(body)
	if !ok {
		if !a.jsonOut {
			a.stdout.Write(body)
		}
		return withCode(exitProblem, fmt.Errorf("the daemon answered %s", resp.Status))
	}
	if !a.jsonOut && e.Report != nil && e.Report.Result != "" {
		e.Report.WriteTimeline(a.stdout)
	}
	if e.Error.Code == "unauthorized" {
		return withCode(exitProblem, fmt.Errorf("the daemon refused the token"))
	}
	return withCode(exitProblem, e.err())
}

// actionJSON is a change's parameters as the API's JSON body.
func actionJSON(q url.Values) []byte {
	body := map[string]any{}
	if v := q.Get("new_primary"); v != "" {
		body["new_primary"] = v
	}
	if q.Get("force") == "true" {
		body["force"] = true
	}
	b, _ := json.Marshal(body)
	return b
}

// apiErrorBody is the API's error answer:
// {"error": {"code", "message", "blockers"}}, with a failover's report
// beside it when the change ran.
type apiErrorBody struct {
	Error struct {
		Code     string   `json:"code"`
		Message  string   `json:"message"`
		Blockers []string `json:"blockers"`
	} `json:"error"`
	Report *failover.Report `json:"report"`
}

func parseAPIError(body []byte) (apiErrorBody, bool) {
	var e apiErrorBody
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return e, false
	}
	return e, true
}

// readAPIError turns an answer other than 200 into an error (the API's
// code and message when the body has them); nil for 200.
func readAPIError(resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if e, ok := parseAPIError(body); ok {
		return e.err()
	}
	return fmt.Errorf("the monitor answered %s", resp.Status)
}

// err renders the API's error for the terminal: the code, the message and
// each blocker on its own line.
func (e apiErrorBody) err() error {
	msg := fmt.Sprintf("the daemon refused (%s): %s", e.Error.Code, e.Error.Message)
	for _, b := range e.Error.Blockers {
		msg += "\n  - " + b
	}
	return errors.New(msg)
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
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(daemonURL, "/")+"/api/v1/failovers", nil)
				if err != nil {
					return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", daemonURL, err))
				}
				resp, err := a.apiDo(req)
				if err != nil {
					return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", daemonURL, err))
				}
				defer resp.Body.Close()
				if err := readAPIError(resp); err != nil {
					return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", daemonURL, err))
				}
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
