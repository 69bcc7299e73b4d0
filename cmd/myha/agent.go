package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
	"github.com/myha/myha/daemon"
	"github.com/myha/myha/vip"
)

func (a *app) agentCommand() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "agent --server HOST:PORT",
		Short: "Run on a database host: hold the VIP while the local server is the agreed primary; health endpoints",
		Long: "Joins the monitors' gossip, follows the leader's lease for its cluster and holds the VIP (address +\n" +
			"gratuitous ARP) only while its local server is the agreed primary, writable, and the lease is fresh.\n" +
			"Serves /primary, /replica[?lag=N], /read-only, /health, /liveness, /readiness for HAProxy on\n" +
			"agents.http_port (8008). Needs CAP_NET_ADMIN and CAP_NET_RAW to move the VIP.\n" +
			"SIGHUP reloads the cluster's settings (a bad file is refused and the old config kept);\n" +
			"SIGTERM and SIGINT release the VIP and exit.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The agent reads only what it uses: not the API tokens.
			path, err := config.Find(a.configPath)
			if err != nil {
				return withCode(exitProblem, err)
			}
			cfg, err := config.LoadFile(path, config.Options{Getenv: a.getenv, Agent: true})
			if err != nil {
				return withCode(exitProblem, err)
			}
			ac, err := agentConfig(cmd.Context(), cfg, server, a)
			if err != nil {
				return withCode(exitProblem, err)
			}
			if ac.VIP != nil {
				w, err := a.startWatchdog(path, ac.Server)
				if err != nil {
					return withCode(exitProblem, err)
				}
				ac.Watchdog = w
			}
			ag, err := daemon.NewAgent(ac)
			if err != nil {
				return withCode(exitProblem, err)
			}
			// SIGHUP reloads, as for the daemon: a file that does not
			// validate is refused and the running config kept; without
			// this handler SIGHUP would end the agent with the VIP held.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					newCfg, err := config.LoadFile(path, config.Options{Getenv: a.getenv, Agent: true})
					if err != nil {
						a.log.Error("SIGHUP: config refused, keeping the running one", "file", path, "err", err)
						continue
					}
					nac, err := agentConfig(cmd.Context(), newCfg, server, a)
					if err != nil {
						a.log.Error("SIGHUP: config refused, keeping the running one", "file", path, "err", err)
						continue
					}
					ag.Reload(nac)
				}
			}()
			if err := ag.Run(cmd.Context()); err != nil {
				return withCode(exitProblem, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the local database server, as written in the config (host:port)")
	return cmd
}

// startWatchdog starts `myha agent-watchdog` as a child process fed
// through its stdin: a process of its own, so a pause of the agent does
// not pause it. It outlives an agent that dies, acts if the agent had
// armed it, and then exits.
func (a *app) startWatchdog(configPath, server string) (*daemon.PipeWatchdog, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting the agent's watchdog: %w", err)
	}
	c := exec.Command(exe, "agent-watchdog", "--server", server, "--config", configPath, "--log-level", a.logLevel)
	c.Stdout, c.Stderr = a.stderr, a.stderr
	in, err := c.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("starting the agent's watchdog: %w", err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("starting the agent's watchdog: %w", err)
	}
	go c.Wait() // reaped when it exits; it ends on its own once stdin closes
	return daemon.NewPipeWatchdog(in), nil
}

// agentWatchdogCommand is the watchdog process the agent starts.
func (a *app) agentWatchdogCommand() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:    "agent-watchdog --server HOST:PORT",
		Short:  "Started by myha agent: fences the local server and releases the VIP if the agent stops renewing its hold",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := config.Find(a.configPath)
			if err != nil {
				return withCode(exitProblem, err)
			}
			cfg, err := config.LoadFile(path, config.Options{Getenv: a.getenv, Agent: true})
			if err != nil {
				return withCode(exitProblem, err)
			}
			ac, err := agentConfig(cmd.Context(), cfg, server, a)
			if err != nil {
				return withCode(exitProblem, err)
			}
			// Signals do not stop it (the agent's unit may signal every
			// process it has): only the agent's word, or its end, does.
			ctx := context.WithoutCancel(cmd.Context())
			wc := daemon.WatchdogConfig{Server: ac.Server, Spec: ac.Cluster.Spec, VIP: ac.VIP, Log: a.log.With("component", "watchdog")}
			if err := daemon.RunWatchdog(ctx, wc, a.stdin); err != nil {
				return withCode(exitProblem, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the local database server, as written in the config (host:port)")
	return cmd
}

func agentConfig(ctx context.Context, cfg *config.Config, server string, a *app) (daemon.AgentConfig, error) {
	if server == "" {
		return daemon.AgentConfig{}, fmt.Errorf("--server is required (the local database server, host:port as in the config)")
	}
	norm, err := config.NormalizeAddress(server)
	if err != nil {
		return daemon.AgentConfig{}, fmt.Errorf("--server: %v", err)
	}
	var cl *config.Cluster
	for i := range cfg.Clusters {
		if _, ok := cfg.Clusters[i].Server(norm); ok {
			cl = &cfg.Clusters[i]
		}
	}
	if cl == nil {
		return daemon.AgentConfig{}, fmt.Errorf("--server %s is not a server of any configured cluster", norm)
	}
	host, _, _ := net.SplitHostPort(norm)
	bind := host
	if ip := net.ParseIP(host); ip == nil {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		if err != nil || len(addrs) == 0 {
			return daemon.AgentConfig{}, fmt.Errorf("--server %s: cannot resolve %s to bind the agent: %v", norm, host, err)
		}
		bind = addrs[0]
	}
	// The shared parts (monitors, clusters, security) are the monitors';
	// the agent is not one of them, so any monitor's name will do.
	name := ""
	if len(cfg.Monitors) > 0 {
		name = cfg.Monitors[0].Name
	}
	dc, err := daemonConfig(cfg, name, a.log)
	if err != nil {
		return daemon.AgentConfig{}, err
	}
	var cc daemon.ClusterConfig
	for _, c := range dc.Clusters {
		if c.Spec.Name == cl.Name {
			cc = c
		}
	}
	ac := daemon.AgentConfig{Server: norm, Cluster: cc, Monitors: dc.Monitors, BindAddr: bind, GossipPort: cfg.Agents.GossipPort,
		HTTPPort: cfg.Agents.HTTPPort, GossipKey: dc.GossipKey, GossipLabel: dc.GossipLabel, Log: a.log}
	if v := cl.VIP; v != nil {
		ac.Lease = v.Lease
		if v.Method == "agent" {
			p, err := netip.ParsePrefix(v.Address)
			if err != nil {
				return ac, fmt.Errorf("vip.address: %v", err)
			}
			ac.VIP = &vip.Config{Address: p, Interface: v.Interface, Count: v.GARPCount, Repeat: v.GARPRepeat, Delay: v.GARPDelay, Refresh: v.GARPRefresh}
		}
	}
	return ac, nil
}
