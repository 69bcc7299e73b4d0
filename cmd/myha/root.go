package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
)

// app holds one invocation's I/O and global flags; no package state.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	configPath string
	jsonOut    bool
	logLevel   string
	log        *slog.Logger
	code       int // exit code for a command that succeeded with findings
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "myha",
		Short:         "High availability for MySQL and MariaDB replication",
		Long:          "myha keeps a replication cluster writable when its primary dies: it watches every server,\nagrees by quorum that the primary is dead, promotes the most advanced replica, repoints\nthe others, fences the old primary and moves the virtual IP.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("config") && a.getenv != nil && a.getenv("MYHA_CONFIG") != "" {
				a.configPath = a.getenv("MYHA_CONFIG")
			}
			level := a.logLevel
			if !cmd.Flags().Changed("log-level") && (cmd.Name() == "daemon" || cmd.Name() == "agent") {
				// Services say what they are doing; one-shot commands print
				// their result and only warnings besides.
				level = "info"
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return withCode(exitProblem, fmt.Errorf("--log-level %q: use debug, info, warn or error", a.logLevel))
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
			return nil
		},
	}
	root.Version = version
	root.SetVersionTemplate("myha {{.Version}}\n")
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "config file (default $MYHA_CONFIG, then ./myha.yaml, then /etc/myha/myha.yaml)")
	root.PersistentFlags().BoolVar(&a.jsonOut, "json", false, "print machine-readable JSON")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "warn", "log level: debug, info, warn, error; daemon and agent use info unless it is given")
	root.AddCommand(a.versionCommand(), a.topologyCommand(), a.configCommand(), a.checkCommand(),
		a.planCommand(failover.KindFailover), a.planCommand(failover.KindSwitchover), a.ackCommand(), a.daemonCommand(), a.historyCommand(), a.statusCommand(), a.agentCommand(), a.agentWatchdogCommand(), a.certsCommand(), a.rejoinCommand(),
		a.pauseCommand(), a.resumeCommand(), a.maintenanceCommand())
	a.completeNames(root)
	return root
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print myha's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := buildInfo()
			if a.jsonOut {
				return a.printJSON(info)
			}
			fmt.Fprintf(a.stdout, "myha %s (commit %s, %s)\n", info["version"], info["commit"], info["go"])
			return nil
		},
	}
}

// loadConfig finds, reads and validates the config; problems exit with 2.
func (a *app) loadConfig() (*config.Config, error) { return a.loadConfigWith(config.Options{}) }

// loadConfigWith is loadConfig with load options (the environment is
// always this process's).
func (a *app) loadConfigWith(opt config.Options) (*config.Config, error) {
	path, err := config.Find(a.configPath)
	if err != nil {
		return nil, withCode(exitProblem, err)
	}
	opt.Getenv = a.getenv
	cfg, err := config.LoadFile(path, opt)
	if err != nil {
		return nil, withCode(exitProblem, err)
	}
	a.userStateDir(cfg)
	a.log.Debug("config loaded", "file", path, "clusters", len(cfg.Clusters), "state_dir", cfg.StateDir)
	return cfg, nil
}

// selectClusters returns the named cluster, or all when name is empty.
// oneCluster loads the config and picks the one cluster a change acts on:
// --cluster, which may be left out only when the config has one.
func (a *app) oneCluster(name string) (*config.Config, config.Cluster, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, config.Cluster{}, err
	}
	if name == "" && len(cfg.Clusters) > 1 {
		return nil, config.Cluster{}, withCode(exitProblem, fmt.Errorf("--cluster is required: the config has %d clusters", len(cfg.Clusters)))
	}
	cs, err := selectClusters(cfg, name)
	if err != nil {
		return nil, config.Cluster{}, err
	}
	return cfg, cs[0], nil
}

func selectClusters(cfg *config.Config, name string) ([]config.Cluster, error) {
	if name == "" {
		return cfg.Clusters, nil
	}
	if c, ok := cfg.Cluster(name); ok {
		return []config.Cluster{*c}, nil
	}
	var names []string
	for _, c := range cfg.Clusters {
		names = append(names, c.Name)
	}
	return nil, withCode(exitProblem, fmt.Errorf("--cluster %q: no such cluster (configured: %s)", name, strings.Join(names, ", ")))
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// buildInfo is the version, the commit it was built from and the Go
// release, for bug reports.
func buildInfo() map[string]string {
	out := map[string]string{"version": version, "commit": "unknown", "go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				out["commit"] = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					out["commit"] += "+dirty"
				}
			}
		}
	}
	return out
}
