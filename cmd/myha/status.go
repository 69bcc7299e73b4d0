package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
)

func (a *app) statusCommand() *cobra.Command {
	var daemonURL string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Ask a monitor how it sees each cluster: leader, state, agreed primary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			resp, via, err := a.getMonitor(ctx, daemonURL, "/api/v1/clusters")
			if err != nil {
				return err
			}
			daemonURL = via
			defer resp.Body.Close()
			if err := readAPIError(resp); err != nil {
				return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", daemonURL, err))
			}
			var v struct {
				Monitor  string `json:"monitor"`
				Leader   string `json:"leader"`
				Insecure bool   `json:"insecure"`
				Clusters []struct {
					Name    string `json:"name"`
					State   string `json:"state"`
					Primary string `json:"agreed_primary"`
					Epoch   int64  `json:"epoch"`
					Verdict struct {
						Reasons []string `json:"reasons"`
					} `json:"verdict"`
					Servers []serverHealth `json:"servers"`
					// Degraded says why a cluster the detector finds
					// healthy is not whole (servers down, replication
					// stopped); empty when it is.
					Degraded []string `json:"degraded,omitempty"`
					// Capture is the asked monitor's own capture;
					// Captures what every monitor's capture holds.
					Capture  *captureStatus         `json:"capture,omitempty"`
					Captures []failover.CaptureHold `json:"captures,omitempty"`
					// Paused and Maintenance are the operator's pause and
					// servers in maintenance, as the monitors hold them.
					Paused      *pauseJSON                 `json:"paused,omitempty"`
					Maintenance map[string]maintenanceJSON `json:"maintenance,omitempty"`
				} `json:"clusters"`
			}
			if resp.StatusCode == http.StatusUnauthorized {
				return withCode(exitProblem, fmt.Errorf("monitor %s: reads need a token (security.api_read_token_file in the config)", daemonURL))
			}
			if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&v); err != nil {
				return withCode(exitProblem, fmt.Errorf("monitor %s: %v", daemonURL, err))
			}
			for i := range v.Clusters {
				v.Clusters[i].Degraded = degraded(v.Clusters[i].Servers, v.Clusters[i].Maintenance)
			}
			if a.jsonOut {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "monitor %s, leader %s\n", v.Monitor, orNone(v.Leader))
			if v.Insecure {
				fmt.Fprintln(a.stdout, "  INSECURE: security.insecure is set (gossip may be unencrypted, raft unauthenticated)")
			}
			for _, c := range v.Clusters {
				state := c.State
				if state == "healthy" && len(c.Degraded) > 0 {
					// The primary is fine, so no failover is due, but
					// the cluster is not whole: never call that healthy.
					state = "degraded"
				}
				fmt.Fprintf(a.stdout, "  cluster %s: %s, primary %s (epoch %d)\n", c.Name, state, orNone(c.Primary), c.Epoch)
				if p := c.Paused; p != nil {
					fmt.Fprintf(a.stdout, "    PAUSED since %s until %s%s: no automatic failover, fencing or correction (manual failover and switchover still run)\n",
						p.Since.Format(time.RFC3339), untilOr(p.Until), reasonText(p.Reason))
				}
				for _, s := range sortedKeys(c.Maintenance) {
					fmt.Fprintf(a.stdout, "    %s in maintenance since %s%s: never promoted, out of /replica\n", s, c.Maintenance[s].Since.Format(time.RFC3339), reasonText(c.Maintenance[s].Reason))
				}
				for _, r := range c.Degraded {
					fmt.Fprintf(a.stdout, "    %s\n", r)
				}
				for _, r := range c.Verdict.Reasons {
					fmt.Fprintf(a.stdout, "    %s\n", r)
				}
				writeCaptures(a, c.Capture, c.Captures)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&daemonURL, "daemon", "", "this monitor's API (http://host:8080, https:// with security.api_cert_file); default: the config's monitors, the first that answers")
	return cmd
}

// serverHealth is the part of a monitor's server report that status judges.
type serverHealth struct {
	Address    string   `json:"address"`
	Role       string   `json:"role"`
	Reachable  bool     `json:"reachable"`
	IORunning  *bool    `json:"io_running"`
	SQLRunning *bool    `json:"sql_running"`
	Errors     []string `json:"errors"`
}

// degraded lists, in words, what keeps a cluster from being whole: a
// configured server the monitor cannot reach, or a replica whose
// replication threads are stopped.
func degraded(servers []serverHealth, maint map[string]maintenanceJSON) []string {
	var out []string
	for _, s := range servers {
		if _, ok := maint[s.Address]; ok {
			continue // an operator works on it: shown, not a problem
		}
		switch {
		case !s.Reachable:
			why := "unreachable"
			if len(s.Errors) > 0 {
				why = s.Errors[0]
				if !strings.HasPrefix(why, "unreachable") {
					why = "unreachable: " + why
				}
			}
			out = append(out, fmt.Sprintf("%s is %s", s.Address, why))
		case s.IORunning != nil && !*s.IORunning || s.SQLRunning != nil && !*s.SQLRunning:
			out = append(out, fmt.Sprintf("%s: replication is stopped (io:%s sql:%s)", s.Address, yesNo(s.IORunning), yesNo(s.SQLRunning)))
		}
	}
	return out
}

func yesNo(b *bool) string {
	if b != nil && *b {
		return "Yes"
	}
	return "No"
}

// apiDo sends a request to a monitor's API with what the config (when one
// is found) says: the read token (or the write token), and the
// deployment's CA for https. Every call is bounded. When the config says
// the API serves HTTPS (api_cert_file), an http:// URL is refused before
// anything is sent, so a token never crosses the network in clear.
func (a *app) apiDo(req *http.Request) (*http.Response, error) {
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, TLSHandshakeTimeout: 5 * time.Second}
	client := &http.Client{Transport: tr}
	path, err := config.Find(a.configPath)
	if err != nil {
		// No config here: the request goes as it is, without a token.
		return client.Do(req)
	}
	// Only the security section is used here: a config without database
	// passwords (an operator's laptop) serves.
	cfg, err := config.LoadFile(path, config.Options{Getenv: a.getenv, ThroughMonitors: true})
	if err != nil {
		return nil, err
	}
	sec := cfg.Security
	if sec.APICertFile != "" && req.URL.Scheme != "https" {
		return nil, fmt.Errorf("the monitors' API serves HTTPS (security.api_cert_file is set): write https://%s; nothing was sent", req.URL.Host)
	}
	if sec.CAFile != "" && req.URL.Scheme == "https" {
		pem, err := os.ReadFile(sec.CAFile)
		if err != nil {
			return nil, fmt.Errorf("security.ca_file: %v (the CA the API's certificate is checked against)", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("security.ca_file %s: no PEM certificate", sec.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	tok := sec.APIReadToken
	if tok == "" {
		tok = sec.APIToken
	}
	if tok != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+tok.Value())
	}
	return client.Do(req)
}

// captureStatus is a monitor's own capture as its API reports it.
type captureStatus struct {
	Monitor         string `json:"monitor"`
	Primary         string `json:"primary"`
	Position        string `json:"position"`
	Connected       bool   `json:"connected"`
	SemiSync        bool   `json:"semi_sync"`
	Acks            uint64 `json:"acks"`
	Gaps            uint64 `json:"gaps"`
	LagTransactions *int64 `json:"lag_transactions"`
	LastError       string `json:"last_error"`
}

// writeCaptures prints each monitor's captured position, and the asked
// monitor's own capture in detail.
func writeCaptures(a *app, own *captureStatus, all []failover.CaptureHold) {
	for _, h := range all {
		if h.Error != "" {
			fmt.Fprintf(a.stdout, "    capture on %s: NOT ANSWERING: %s\n", h.Monitor, h.Error)
			continue
		}
		fmt.Fprintf(a.stdout, "    capture on %s: captured %s\n", h.Monitor, orNone(h.Position))
	}
	if own == nil {
		return
	}
	state := "not connected"
	if own.Connected {
		state = "streaming from " + own.Primary
		if own.SemiSync {
			state += ", acknowledging semi-sync after fsync"
		} else {
			state += ", NOT asked for semi-sync ACKs"
		}
	}
	lag := "unknown"
	if own.LagTransactions != nil {
		lag = fmt.Sprintf("%d transaction(s)", *own.LagTransactions)
	}
	fmt.Fprintf(a.stdout, "    this monitor's capture: %s; %d ACKs, %s behind, %d gap(s)\n", state, own.Acks, lag, own.Gaps)
	if own.LastError != "" && !own.Connected {
		fmt.Fprintf(a.stdout, "      last error: %s\n", own.LastError)
	}
}
