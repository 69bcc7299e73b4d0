package config

import (
	"math"
	"path/filepath"
	"time"
)

// Capture defaults.
const (
	DefaultCapturePort         = 3310
	DefaultCaptureServerIDBase = 4000000
	DefaultCaptureSegmentBytes = 64 << 20
	DefaultCaptureRetainBytes  = 1 << 30
	DefaultCaptureRetain       = 24 * time.Hour
	minCaptureSegmentBytes     = 1 << 20
)

// Capture makes every monitor a durable binlog capture of the cluster's
// primary: a semi-sync replica that stores events and never applies them,
// so a failover can replay what no replica received (package capture).
type Capture struct {
	Enabled bool `mapstructure:"enabled"`
	// Dir holds the segments, one subdirectory per cluster; "{name}"
	// stands for the monitor's name (default
	// state_dir/monitor-{name}/capture, beside the monitor's own state).
	Dir string `mapstructure:"dir"`
	// Port is where each monitor serves its capture on its monitor
	// address: the new primary replicates from it at failover, and the
	// leader asks it for its position (default 3310).
	Port int `mapstructure:"port"`
	// ServerIDBase + the monitor's place in monitors (1, 2, ...) is the
	// server_id each capture registers with; it must differ from every
	// database server's (default 4000000).
	ServerIDBase int64 `mapstructure:"server_id_base"`
	// SemiSync makes the capture acknowledge semi-sync (after fsync);
	// default true.
	SemiSync *bool `mapstructure:"semi_sync"`
	// SegmentBytes starts a new segment file past this size (default 64 MiB).
	SegmentBytes int64 `mapstructure:"segment_bytes"`
	// RetainBytes and Retain bound what is kept: the oldest segments go
	// once the capture is larger or they are older (defaults 1 GiB, 24h).
	RetainBytes int64         `mapstructure:"retain_bytes"`
	Retain      time.Duration `mapstructure:"retain"`
}

// SemiSyncAck says whether captures acknowledge semi-sync.
func (c Capture) SemiSyncAck() bool { return c.SemiSync == nil || *c.SemiSync }

// ClusterDir is where monitor's capture of a cluster lives.
func (c Capture) ClusterDir(monitor, cluster string) string {
	return filepath.Join(NodeFile(c.Dir, monitor), cluster)
}

func (c *Config) captureDefaults(cl *Cluster) {
	cp := &cl.Capture
	if !cp.Enabled {
		return
	}
	if cp.Dir == "" {
		cp.Dir = filepath.Join(c.StateDir, "monitor-{name}", "capture")
	}
	if cp.Port == 0 {
		cp.Port = DefaultCapturePort
	}
	if cp.ServerIDBase == 0 {
		cp.ServerIDBase = DefaultCaptureServerIDBase
	}
	if cp.SegmentBytes == 0 {
		cp.SegmentBytes = DefaultCaptureSegmentBytes
	}
	if cp.RetainBytes == 0 {
		cp.RetainBytes = DefaultCaptureRetainBytes
	}
	if cp.Retain == 0 {
		cp.Retain = DefaultCaptureRetain
	}
}

func (c *Config) validateCapture(key string, cl *Cluster, bad func(key, format string, a ...any)) {
	cp := cl.Capture
	if !cp.Enabled {
		return
	}
	k := key + ".capture"
	if len(c.Monitors) == 0 {
		bad(k+".enabled", "captures run on monitors: list them under monitors")
	}
	if !filepath.IsAbs(cp.Dir) {
		bad(k+".dir", "%q: use an absolute path", cp.Dir)
	}
	if cp.Port < 1 || cp.Port > 65535 {
		bad(k+".port", "%d: must be 1-65535", cp.Port)
	}
	for _, m := range c.Monitors {
		if cp.Port == m.GossipPort || cp.Port == m.RaftPort || cp.Port == m.APIPort {
			bad(k+".port", "%d is also monitor %s's gossip, raft or API port", cp.Port, m.Name)
		}
	}
	if cp.ServerIDBase < 1 || cp.ServerIDBase+int64(len(c.Monitors)) > math.MaxUint32 {
		bad(k+".server_id_base", "%d: server ids are 1-%d (each monitor's capture uses base+1, base+2, ...)", cp.ServerIDBase, uint32(math.MaxUint32))
	}
	if cp.SegmentBytes < minCaptureSegmentBytes {
		bad(k+".segment_bytes", "%d is too small (at least %d)", cp.SegmentBytes, minCaptureSegmentBytes)
	}
	if cp.RetainBytes < 0 {
		bad(k+".retain_bytes", "must not be negative (-1 is not 'unlimited': use a size in bytes)")
	} else if cp.RetainBytes < cp.SegmentBytes {
		bad(k+".retain_bytes", "%d is smaller than segment_bytes %d: nothing older than the current segment could be kept", cp.RetainBytes, cp.SegmentBytes)
	}
	if cp.Retain < 0 {
		bad(k+".retain", "must be positive")
	} else if cp.Retain < time.Minute {
		bad(k+".retain", "%s is too short to replay from at a failover (at least 1m)", cp.Retain)
	}
	if cl.ReplicationUser == "" {
		bad(k, "needs replication_user: captures read the binlog and serve replays with it")
	}
}
