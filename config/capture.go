package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
	// CertFile and KeyFile are the capture server's TLS certificate and
	// key ("{name}" stands for the monitor). With a verified tls.mode they
	// are mandatory: the server a failover promotes replicates from the
	// capture with the cluster's MASTER_SSL settings, so the certificate
	// must be signed by tls.ca_file's CA and, for verify-full, name the
	// monitor's address. With preferred they are optional (TLS offered,
	// not verified); with disabled they are refused.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
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

// resolveCaptureTLS checks the capture server's certificate against the
// cluster's TLS settings, for every monitor, so a certificate the replica
// would refuse at a failover is found by config check instead.
func (c *Config) resolveCaptureTLS(key string, cl *Cluster, opt Options) Errors {
	cp := cl.Capture
	if !cp.Enabled {
		return nil
	}
	var errs Errors
	bad := func(k, format string, a ...any) {
		errs = append(errs, &Error{Key: key + ".capture" + k, Problem: fmt.Sprintf(format, a...)})
	}
	if (cp.CertFile == "") != (cp.KeyFile == "") {
		bad("", "set cert_file and key_file together")
		return errs
	}
	verified := cl.TLS.Verified()
	switch {
	case cl.TLS.Mode == "disabled" && cp.CertFile != "":
		bad(".cert_file", "tls.mode is disabled, so the capture serves plain text: remove cert_file/key_file or choose a TLS mode")
		return errs
	case verified && cp.CertFile == "":
		bad(".cert_file", "missing: with tls.mode %s the server a failover promotes replicates from the capture with MASTER_SSL=1 and checks its certificate against %s; "+
			"give each monitor a certificate and key from that CA (naming the monitor's address for verify-full; \"{name}\" stands for the monitor), e.g. myha certs issue --dir CADIR --name NAME --ip ADDR when that CA was made by myha certs init", cl.TLS.Mode, orSystemRoots(cl.TLS.CAFile))
		return errs
	case cp.CertFile == "":
		return errs
	}
	var roots *x509.CertPool
	if cl.TLS.CAFile != "" {
		b, err := opt.ReadFile(cl.TLS.CAFile)
		if err != nil {
			return errs // resolveTLS reports it
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return errs
		}
	}
	for _, m := range c.Monitors {
		certPath, keyPath := NodeFile(cp.CertFile, m.Name), NodeFile(cp.KeyFile, m.Name)
		if !filepath.IsAbs(certPath) || !filepath.IsAbs(keyPath) {
			bad(".cert_file", "%q and %q must be absolute paths", cp.CertFile, cp.KeyFile)
			return errs
		}
		certPEM, err := opt.ReadFile(certPath)
		if err != nil {
			bad(".cert_file", "monitor %s: cannot read %s: %s", m.Name, certPath, statReason(err))
			continue
		}
		keyPEM, err := opt.ReadFile(keyPath)
		if err != nil {
			bad(".key_file", "monitor %s: cannot read %s: %s", m.Name, keyPath, statReason(err))
			continue
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			bad(".cert_file", "monitor %s: %s and %s are not a certificate and its key: %v", m.Name, certPath, keyPath, err)
			continue
		}
		if !verified {
			continue
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			bad(".cert_file", "monitor %s: %s: %v", m.Name, certPath, err)
			continue
		}
		vo := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		for _, der := range pair.Certificate[1:] {
			if ic, err := x509.ParseCertificate(der); err == nil {
				vo.Intermediates.AddCert(ic)
			}
		}
		if cl.TLS.Mode == "verify-full" {
			vo.DNSName = m.Address
		}
		if _, err := leaf.Verify(vo); err != nil {
			what := "signed by " + orSystemRoots(cl.TLS.CAFile)
			if cl.TLS.Mode == "verify-full" {
				what += " and name the monitor's address " + m.Address
			}
			bad(".cert_file", "monitor %s: %s does not verify (%v): replicas replaying from the capture would refuse it; it must be %s", m.Name, certPath, err, what)
		}
	}
	return errs
}

func orSystemRoots(caFile string) string {
	if caFile == "" {
		return "the system's roots (tls.ca_file is not set)"
	}
	return "tls.ca_file " + caFile
}
