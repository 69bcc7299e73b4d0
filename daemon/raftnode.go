package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// RaftConfig are the raft settings as plain values. Transport and stores
// may be replaced (in-memory in tests).
type RaftConfig struct {
	Self      string
	BindAddr  string            // ip:port
	Peers     map[string]string // name → ip:port, self included
	Dir       string
	Transport raft.Transport
	Logs      raft.LogStore
	Stable    raft.StableStore
	Snaps     raft.SnapshotStore
	LogOutput io.Writer
	// TLS, when set, makes the transport mutual TLS (tlsStream) with these
	// files; Monitors are then the only peers dialled or accepted.
	TLS      *TLSFiles
	Monitors []MonitorAddr
	Log      *slog.Logger
}

func startRaft(c RaftConfig, f *fsm) (*raft.Raft, func(), error) {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.Self)
	// Monitors are few and on one network: elect within about a second.
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	rc.CommitTimeout = 20 * time.Millisecond
	rc.SnapshotThreshold = 64
	rc.TrailingLogs = 64 // the store rewrites its file on every write: keep it small
	out := libOutput(c.LogOutput, c.Log, "raft")
	level := hclog.Info
	if l, ok := out.(*libLog); ok {
		level = l.level()
	}
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: out, Level: level, DisableTime: true})
	var closers []func()
	if c.Transport == nil && c.TLS != nil {
		stream, err := newTLSStream(c.BindAddr, *c.TLS, c.Monitors, c.Log)
		if err != nil {
			return nil, nil, err
		}
		t := raft.NewNetworkTransport(stream, 3, 2*time.Second, out)
		c.Transport = t
		closers = append(closers, func() { t.Close() })
	}
	if c.Transport == nil {
		addr, err := net.ResolveTCPAddr("tcp", c.BindAddr)
		if err != nil {
			return nil, nil, err
		}
		t, err := raft.NewTCPTransport(c.BindAddr, addr, 3, 2*time.Second, out)
		if err != nil {
			return nil, nil, fmt.Errorf("raft on %s: %w", c.BindAddr, err)
		}
		c.Transport = t
		closers = append(closers, func() { t.Close() })
	}
	if c.Logs == nil {
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("state_dir: %w", err)
		}
		store, err := openFileStore(filepath.Join(c.Dir, "raft.state"))
		if err != nil {
			return nil, nil, fmt.Errorf("raft store %s: %w", c.Dir, err)
		}
		c.Logs, c.Stable = store, store
		snaps, err := raft.NewFileSnapshotStore(c.Dir, 2, out)
		if err != nil {
			return nil, nil, err
		}
		c.Snaps = snaps
	}
	r, err := raft.NewRaft(rc, f, c.Logs, c.Stable, c.Snaps, c.Transport)
	if err != nil {
		return nil, nil, err
	}
	has, err := raft.HasExistingState(c.Logs, c.Stable, c.Snaps)
	if err != nil {
		return nil, nil, err
	}
	if !has {
		var cfg raft.Configuration
		for name, addr := range c.Peers {
			cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(name), Address: raft.ServerAddress(addr)})
		}
		// Every monitor bootstraps the same configuration; raft accepts that.
		if err := r.BootstrapCluster(cfg).Error(); err != nil && err != raft.ErrCantBootstrap {
			return nil, nil, err
		}
	}
	return r, func() {
		r.Shutdown().Error()
		for _, c := range closers {
			c()
		}
	}, nil
}
