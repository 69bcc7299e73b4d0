package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) statusCommand() *cobra.Command {
	var daemonURL string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Ask a monitor how it sees each cluster: leader, state, agreed primary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if daemonURL == "" {
				return withCode(exitProblem, fmt.Errorf("--daemon is required (http://host:8080)"))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(daemonURL, "/")+"/api/clusters", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", daemonURL, err))
			}
			defer resp.Body.Close()
			var v struct {
				Monitor  string `json:"monitor"`
				Leader   string `json:"leader"`
				Clusters []struct {
					Name    string `json:"name"`
					State   string `json:"state"`
					Primary string `json:"agreed_primary"`
					Epoch   int64  `json:"epoch"`
					Verdict struct {
						Reasons []string `json:"reasons"`
					} `json:"verdict"`
				} `json:"clusters"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
				return withCode(exitProblem, fmt.Errorf("--daemon %s: %v", daemonURL, err))
			}
			if a.jsonOut {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "monitor %s, leader %s\n", v.Monitor, orNone(v.Leader))
			for _, c := range v.Clusters {
				fmt.Fprintf(a.stdout, "  cluster %s: %s, primary %s (epoch %d)\n", c.Name, c.State, orNone(c.Primary), c.Epoch)
				for _, r := range c.Verdict.Reasons {
					fmt.Fprintf(a.stdout, "    %s\n", r)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&daemonURL, "daemon", "", "the monitor's API (http://host:8080)")
	return cmd
}
