package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
)

// monitorReadTimeout bounds one read from one monitor, so a monitor that
// does not answer costs at most this before the next one is tried.
const monitorReadTimeout = 5 * time.Second

// monitorAPI is one place a read through the monitors is tried.
type monitorAPI struct {
	Name string `json:"name,omitempty"` // the monitor's name in the config (or as it answered)
	URL  string `json:"url"`            // base URL, without a trailing slash
}

func (m monitorAPI) String() string {
	if m.Name == "" {
		return m.URL
	}
	return m.Name + " (" + m.URL + ")"
}

// monitorAPIs lists where a read through the monitors is tried, in order:
// the URL given on the command line alone, else every configured monitor
// (https when security.api_cert_file says the API serves HTTPS).
func monitorAPIs(cfg *config.Config, given string) ([]monitorAPI, error) {
	if given != "" {
		u, err := url.Parse(given)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("--api %q: write a monitor's API URL such as https://10.0.0.5:8080, or --api alone to try the monitors of the config", given)
		}
		return []monitorAPI{{URL: strings.TrimRight(given, "/")}}, nil
	}
	if len(cfg.Monitors) == 0 {
		return nil, errors.New("--api: the config lists no monitors: add them under monitors:, or give one monitor's API URL (--api=https://host:8080)")
	}
	scheme := "http"
	if cfg.Security.APICertFile != "" {
		scheme = "https"
	}
	out := make([]monitorAPI, 0, len(cfg.Monitors))
	for _, m := range cfg.Monitors {
		out = append(out, monitorAPI{Name: m.Name, URL: scheme + "://" + net.JoinHostPort(m.Address, strconv.Itoa(m.APIPort))})
	}
	return out, nil
}

// refusedError is a monitor's refusal of the credentials (401, 403): the
// other monitors share the config and would refuse as well.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }

// readMonitors GETs path from each monitor in turn, each bounded by
// monitorReadTimeout, until one answers 200 with a body use accepts; it
// returns the monitor that did. A refused token stops at once with the
// API's message; when none answers, the error names every monitor tried
// and why it failed.
func (a *app) readMonitors(ctx context.Context, apis []monitorAPI, path string, use func(body []byte) error) (monitorAPI, error) {
	var failed []string
	for _, m := range apis {
		err := a.readMonitor(ctx, m.URL+path, use)
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return m, ctx.Err()
		}
		var refused *refusedError
		if errors.As(err, &refused) {
			return m, fmt.Errorf("monitor %s: %v", m, err)
		}
		a.log.Info("monitor did not answer", "monitor", m.String(), "err", err)
		failed = append(failed, fmt.Sprintf("  %s: %v", m, err))
	}
	return monitorAPI{}, fmt.Errorf("no monitor answered; tried:\n%s", strings.Join(failed, "\n"))
}

func (a *app) readMonitor(ctx context.Context, u string, use func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, monitorReadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := a.apiDo(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err // the URL is named beside the monitor already
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := readAPIError(resp); err != nil {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return &refusedError{err}
		}
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	return use(body)
}

// loadConfigThroughMonitors loads the config for a command that reads
// only through the monitors: no database password is needed or read.
func (a *app) loadConfigThroughMonitors() (*config.Config, error) {
	return a.loadConfigWith(config.Options{ThroughMonitors: true})
}

// apiFromConfig is --api's value when given without a URL: try every
// monitor of the config.
const apiFromConfig = "monitors"

// addAPIFlag adds --api [URL] to a command that can read through the
// monitors.
func addAPIFlag(cmd *cobra.Command, api *string, usage string) {
	cmd.Flags().StringVar(api, "api", "", usage)
	cmd.Flags().Lookup("api").NoOptDefVal = apiFromConfig
}

// apiArgs accepts one argument only as --api's URL (`--api URL`, which the
// flag parser leaves as an argument since the URL is optional).
func apiArgs(api *string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == 0 || len(args) == 1 && *api == apiFromConfig {
			return nil
		}
		return fmt.Errorf("unexpected argument(s) %q (a URL goes after --api)", args)
	}
}

// apiURL is the monitor URL given with --api, or "" for the config's
// monitors.
func apiURL(api string, args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	if api == apiFromConfig {
		return ""
	}
	return api
}
