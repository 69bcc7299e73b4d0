package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
)

// remote sends a change to the monitors (daemonURL, or each monitor of the
// config in turn), the one asked forwarding it to the leader, so a manual
// action is serialized with automatic ones; it prints the answer (the
// failover's timeline when there is one) and turns an API error into the
// command's error.
func (a *app) remote(ctx context.Context, cfg *config.Config, daemonURL, cluster, action string, q url.Values) error {
	body, code, via, err := a.callMonitors(ctx, cfg, daemonURL, cluster, action, q)
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.stdout.Write(body)
	} else {
		var rep failover.Report
		if code == http.StatusOK && json.Unmarshal(body, &rep) == nil && rep.Result != "" {
			rep.WriteTimeline(a.stdout)
		} else if e, ok := parseAPIError(body); ok && e.Report != nil && e.Report.Result != "" {
			e.Report.WriteTimeline(a.stdout)
		} else if code == http.StatusOK {
			a.stdout.Write(body)
		}
	}
	var rep failover.Report
	if code == http.StatusOK && json.Unmarshal(body, &rep) == nil && rep.Result == failover.ResultPartial {
		a.code = exitWarn // done with problems, as when run with --local
	}
	return answerErr(code, via, body)
}

// answerErr turns a monitor's answer into the command's outcome: nil for
// 200, else the API's code, message and blockers.
func answerErr(code int, via string, body []byte) error {
	if code == http.StatusOK {
		return nil
	}
	e, ok := parseAPIError(body)
	switch {
	case code == http.StatusUnauthorized || ok && e.Error.Code == "unauthorized":
		return withCode(exitProblem, fmt.Errorf("the monitor %s refused the token (security.api_token_file)", via))
	case ok:
		return withCode(exitProblem, e.err())
	}
	return withCode(exitProblem, fmt.Errorf("the monitor %s answered %d %s", via, code, http.StatusText(code)))
}

// monitorURLs are the API addresses to try for a change: daemonURL alone
// when given (--daemon), else every configured monitor in config order.
func monitorURLs(cfg *config.Config, daemonURL string) []string {
	if daemonURL != "" {
		return []string{strings.TrimRight(daemonURL, "/")}
	}
	apis, _ := monitorAPIs(cfg, "") // an error only says there are none
	out := make([]string, 0, len(apis))
	for _, m := range apis {
		out = append(out, m.URL)
	}
	return out
}

// errNoMonitor says no monitor answered; callers add what to do.
type errNoMonitor struct{ tried []string }

func (e *errNoMonitor) Error() string {
	return "no monitor answered (tried " + strings.Join(e.tried, ", ") + ")"
}

// callMonitors POSTs a change to the first monitor that answers (one that
// cannot be reached is skipped; an answer, whatever its status, is final)
// and returns the body, the HTTP status and the URL that answered.
func (a *app) callMonitors(ctx context.Context, cfg *config.Config, daemonURL, cluster, action string, q url.Values) ([]byte, int, string, error) {
	if cfg.Security.APIToken == "" {
		return nil, 0, "", withCode(exitProblem, fmt.Errorf("changes through the monitors need security.api_token_file in the config (the API refuses changes without a token)"))
	}
	bases := monitorURLs(cfg, daemonURL)
	if len(bases) == 0 {
		return nil, 0, "", &errNoMonitor{}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var tried []string
	for _, base := range bases {
		u := base + "/api/v1/clusters/" + url.PathEscape(cluster) + "/" + action
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		if err != nil {
			return nil, 0, "", withCode(exitProblem, fmt.Errorf("monitor %s: %v", base, err))
		}
		req.Header.Set("Authorization", "Bearer "+cfg.Security.APIToken.Value())
		// Whether the monitor got the request: once it did, it may be
		// running the change, and sending it to the next monitor could run
		// it twice (a second switchover).
		var wrote atomic.Bool
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
		}))
		resp, err := a.apiDo(req)
		if err != nil && wrote.Load() {
			return nil, 0, base, withCode(exitProblem, fmt.Errorf("the monitor %s took the %s request but its answer was lost (%v): it may have run, or still be running it. "+
				"Check myha status and myha history --daemon %s before trying again; do not use --local while it may be running", base, action, err, base))
		}
		if err != nil {
			a.log.Warn("monitor did not answer; trying the next", "monitor", base, "err", err)
			tried = append(tried, fmt.Sprintf("%s: %v", base, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		return body, resp.StatusCode, base, nil
	}
	return nil, 0, "", &errNoMonitor{tried: tried}
}

// localWarning is printed when --local bypasses the monitors.
const localWarning = "WARNING: --local acts directly on the servers and bypasses the monitors: it is not serialized with their automatic actions, and they learn of it only from their next probe"

// noMonitorErr explains a change no monitor could take, with the
// --local remedy and its risk where there is one.
func noMonitorErr(err error, localOK bool) error {
	var nm *errNoMonitor
	if !errors.As(err, &nm) {
		return err
	}
	if !localOK {
		return withCode(exitProblem, fmt.Errorf("%v: pause and maintenance exist only in the monitors' shared (raft) state, so there is no local mode; start the monitors or check monitors: and their api_port in the config", err))
	}
	return withCode(exitProblem, fmt.Errorf("%v: to act directly on the servers run it again with --local; that bypasses the monitors (no quorum check, not serialized with an automatic failover they may start, their block and pause are not consulted)", err))
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
