package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/capture"
	"github.com/myha/myha/config"
	"github.com/myha/myha/daemon"
	"github.com/myha/myha/topology"
)

func (a *app) daemonCommand() *cobra.Command {
	var name, logFormat, cpuProfile string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a monitor: probe, gossip, elect a leader, fail over dead primaries",
		Long: "Runs one monitor of the deployment (the config's monitors: list; usually three hosts).\n" +
			"Monitors probe every server, share what they see over gossip, elect a leader with raft, and\n" +
			"only the leader fails over, when a majority of monitors and the replicas agree the primary is\n" +
			"dead. SIGHUP reloads the config (a bad file is refused and the old config kept); SIGTERM\n" +
			"leaves gossip and raft cleanly.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logFormat == "json" {
				var lvl slog.Level
				lvl.UnmarshalText([]byte(a.logLevel))
				a.log = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
			}
			path, err := config.Find(a.configPath)
			if err != nil {
				return withCode(exitProblem, err)
			}
			cfg, err := config.LoadFile(path, config.Options{Getenv: a.getenv})
			if err != nil {
				return withCode(exitProblem, err)
			}
			a.userStateDir(cfg)
			if name == "" {
				name, _ = os.Hostname()
			}
			if !cfg.Security.Insecure && cfg.Security.CAFile == "" {
				return withCode(exitProblem, fmt.Errorf("security.ca_file, cert_file and key_file are required: raft between monitors is mutual TLS (make them with: myha certs init --dir D; myha certs issue --dir D --name %s --ip ADDR); set security.insecure: true only for tests", name))
			}
			if name == "" {
				name, _ = os.Hostname()
			}
			dc, err := daemonConfig(cfg, name, a.log)
			if err != nil {
				return withCode(exitProblem, err)
			}
			d, err := daemon.New(dc)
			if err != nil {
				return withCode(exitProblem, err)
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return withCode(exitProblem, err)
				}
				defer stop()
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					// A fresh load of the file: validated whole, swapped whole.
					newCfg, err := config.LoadFile(path, config.Options{Getenv: a.getenv})
					if err != nil {
						a.log.Error("SIGHUP: config refused, keeping the running one", "file", path, "err", err)
						continue
					}
					nd, err := daemonConfig(newCfg, name, a.log)
					if err != nil {
						a.log.Error("SIGHUP: config refused, keeping the running one", "err", err)
						continue
					}
					d.Reload(nd.Clusters)
					a.log.Info("SIGHUP: config reloaded", "file", path, "clusters", len(nd.Clusters))
				}
			}()
			if err := d.Run(cmd.Context()); err != nil {
				return withCode(exitProblem, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "this monitor's name in the config's monitors list (default: the host name)")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	// For sizing runs (make scale): a file, never a network endpoint.
	cmd.Flags().StringVar(&cpuProfile, "cpu-profile", "", "write a Go CPU profile of the whole run to this file (for make scale)")
	cmd.Flags().MarkHidden("cpu-profile")
	return cmd
}

// startCPUProfile profiles until the returned stop runs (at a clean exit).
func startCPUProfile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile %s: %w", path, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// daemonConfig hands the validated config down as plain values.
func daemonConfig(cfg *config.Config, name string, log *slog.Logger) (daemon.Config, error) {
	if len(cfg.Monitors) == 0 {
		cfg.Monitors = []config.Monitor{{Name: name, Address: "127.0.0.1", GossipPort: config.DefaultGossipPort, RaftPort: config.DefaultRaftPort, APIPort: config.DefaultAPIPort}}
	}
	if _, ok := cfg.Monitor(name); !ok {
		var names []string
		for _, m := range cfg.Monitors {
			names = append(names, m.Name)
		}
		return daemon.Config{}, fmt.Errorf("--name %q: no such monitor in the config (monitors: %v)", name, names)
	}
	sec := cfg.Security
	dc := daemon.Config{Self: name, Version: version, StateDir: filepath.Join(cfg.StateDir, "monitor-"+name), GossipLabel: sec.GossipLabel,
		APIToken: sec.APIToken.Value(), APIReadToken: sec.APIReadToken.Value(), Insecure: sec.Insecure, Log: log,
		// Failure injection for tests, as for myha failover.
		Crash: crashAt(os.Getenv("MYHA_CRASH_AT"), os.Stderr)}
	if sec.GossipKey != "" {
		k, err := config.DecodeGossipKey(sec.GossipKey)
		if err != nil {
			return dc, err
		}
		dc.GossipKey = k
	} else if !sec.Insecure {
		return dc, fmt.Errorf("security.gossip_key_file is required: gossip must be encrypted (generate one with: head -c32 /dev/urandom | base64); set security.insecure: true only for tests")
	}
	if sec.CAFile != "" {
		dc.TLS = &daemon.TLSFiles{CA: sec.CAFile, Cert: config.NodeFile(sec.CertFile, name), Key: config.NodeFile(sec.KeyFile, name)}
	}
	if sec.APICertFile != "" {
		dc.APICert = &daemon.TLSFiles{CA: sec.CAFile, Cert: config.NodeFile(sec.APICertFile, name), Key: config.NodeFile(sec.APIKeyFile, name)}
	}
	dc.APIAllow = sec.APIAllowPrefixes()
	if e := cfg.Etcd; len(e.Endpoints) > 0 {
		dc.Etcd = daemon.EtcdConfig{Endpoints: e.Endpoints, Prefix: e.Prefix, TTL: *e.TTL, Timeout: e.Timeout}
	}
	dc.Notify = daemon.NotifyConfig{ReportScript: cfg.Notify.ReportScript, ReportTimeout: cfg.Notify.ReportTimeout}
	if w := cfg.Notify.Webhook; w != nil {
		dc.Notify.Webhook = &daemon.WebhookConfig{URL: w.URL, AuthHeader: w.AuthHeader, AuthValue: w.AuthValue.Value(),
			Timeout: w.Timeout, Retries: *w.Retries, Queue: w.Queue}
	}
	for _, m := range cfg.Monitors {
		dc.Monitors = append(dc.Monitors, daemon.MonitorAddr{Name: m.Name, Address: m.Address, GossipPort: m.GossipPort, RaftPort: m.RaftPort, APIPort: m.APIPort})
	}
	for _, c := range cfg.Clusters {
		dc.Clusters = append(dc.Clusters, daemon.ClusterConfig{
			Spec: clusterSpec(c), Policy: policyFor(c), Hooks: hooksFor(c),
			Repl:     topology.Credentials{User: c.ReplicationUser, Password: c.ReplicationPassword.Value()},
			Interval: c.CheckInterval, DownAfter: c.Failover.DownAfter, BlockPeriod: c.Failover.BlockPeriod,
			Auto: c.Failover.AutoEnabled(), AutoRejoin: c.Failover.AutoRejoin, VIPLease: vipLease(c), WriteProbe: c.Probe == "write",
			Fencing: c.Failover.Fencing, Capture: captureFor(cfg, c, name),
		})
	}
	return dc, nil
}

// vipLease is the lease the leader grants agents, when agents move the VIP.
func vipLease(c config.Cluster) time.Duration {
	if c.VIP == nil || c.VIP.Method != "agent" {
		return 0
	}
	return c.VIP.Lease
}

// captureFor is the cluster's capture on monitor self (nil when off): its
// server_id is capture.server_id_base + the monitor's place in monitors.
func captureFor(cfg *config.Config, c config.Cluster, self string) *daemon.CaptureConfig {
	cp := c.Capture
	if !cp.Enabled {
		return nil
	}
	out := &daemon.CaptureConfig{Dir: cp.ClusterDir(self, c.Name), Port: cp.Port, SemiSync: cp.SemiSyncAck(),
		Store:     capture.StoreOptions{SegmentBytes: cp.SegmentBytes, RetainBytes: cp.RetainBytes, RetainAge: cp.Retain},
		Endpoints: map[string]string{}, CertFile: config.NodeFile(cp.CertFile, self), KeyFile: config.NodeFile(cp.KeyFile, self)}
	for i, m := range cfg.Monitors {
		out.Endpoints[m.Name] = net.JoinHostPort(m.Address, strconv.Itoa(cp.Port))
		if m.Name == self {
			out.ServerID = uint32(cp.ServerIDBase) + uint32(i) + 1
		}
	}
	return out
}
