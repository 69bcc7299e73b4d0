package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// NormalizeAddress turns "host" or "host:port" into "host:port" with the
// default port, so the same server is always written the same way.
func NormalizeAddress(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", fmt.Errorf("empty address (write host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: a bare host name, IPv4 or (bracketless) IPv6 address.
		if ip, perr := netip.ParseAddr(strings.Trim(addr, "[]")); perr == nil {
			return net.JoinHostPort(ip.String(), strconv.Itoa(DefaultPort)), nil
		}
		if strings.ContainsAny(addr, ":[]") {
			return "", fmt.Errorf("%q is not host:port", addr)
		}
		host, port = addr, strconv.Itoa(DefaultPort)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port must be 1-65535", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	} else if !validHostname(host) {
		return "", fmt.Errorf("%q: %q is not a valid host name or IP address", addr, host)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

var hostnameRE = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?)*\.?$`)

func validHostname(h string) bool { return len(h) <= 253 && hostnameRE.MatchString(h) }

var clusterNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)
var ifaceRE = regexp.MustCompile(`^[a-zA-Z0-9_.:@-]{1,15}$`)

// Validate checks a decoded config and normalizes server addresses. It
// returns every problem, each naming its key.
func (c *Config) Validate() Errors { return c.validate(false) }

// validate is Validate; throughMonitors relaxes it for a command that only
// reads through the monitors' API (Options.ThroughMonitors): no database
// password is needed, and ca_file alone checks the API's certificate.
func (c *Config) validate(throughMonitors bool) Errors {
	var errs Errors
	bad := func(key, format string, a ...any) {
		errs = append(errs, &Error{Key: key, Problem: fmt.Sprintf(format, a...)})
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("state_dir", "%q must be an absolute path", c.StateDir)
	}
	if len(c.Clusters) == 0 {
		bad("clusters", "no cluster configured (add at least one under clusters:)")
	}
	monNames := map[string]bool{}
	monPorts := map[string]string{} // host:port → key of its first use
	for i, m := range c.Monitors {
		key := fmt.Sprintf("monitors[%d]", i)
		switch {
		case m.Name == "":
			bad(key+".name", "missing (each monitor needs a unique name; `myha daemon --name` picks one)")
		case !clusterNameRE.MatchString(m.Name) || m.Name == "ca":
			bad(key+".name", "%q: use letters, digits, '.', '_' or '-', at most 64, not \"ca\" (the name goes into each primary's myha.heartbeat row, a VARCHAR(64), with probe: write, and names the monitor's certificate {name}.crt next to ca.crt and its state directory)", m.Name)
		case monNames[m.Name]:
			bad(key+".name", "duplicate monitor name %q", m.Name)
		}
		monNames[m.Name] = true
		if m.Address == "" || strings.Contains(m.Address, ":") && net.ParseIP(m.Address) == nil {
			bad(key+".address", "%q: write an IP address or host name without a port (ports are gossip_port, raft_port, api_port)", m.Address)
		}
		for _, p := range []struct {
			name string
			v    int
		}{{"gossip_port", m.GossipPort}, {"raft_port", m.RaftPort}, {"api_port", m.APIPort}} {
			if p.v < 1 || p.v > 65535 {
				bad(key+"."+p.name, "must be 1-65535")
				continue
			}
			hp := net.JoinHostPort(m.Address, strconv.Itoa(p.v))
			if prev, dup := monPorts[hp]; dup {
				bad(key+"."+p.name, "%s is also %s: monitors on one address need ports of their own", hp, prev)
			}
			monPorts[hp] = key + "." + p.name
		}
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"agents.http_port", c.Agents.HTTPPort}, {"agents.gossip_port", c.Agents.GossipPort}} {
		if p.v < 1 || p.v > 65535 {
			bad(p.name, "must be 1-65535")
		}
	}
	sec := c.Security
	if n := countSet(sec.CAFile, sec.CertFile, sec.KeyFile); n != 0 && n != 3 && !(throughMonitors && n == 1 && sec.CAFile != "") {
		bad("security", "set ca_file, cert_file and key_file together (myha certs init / issue make them)")
	}
	if countSet(sec.APICertFile, sec.APIKeyFile) == 1 {
		bad("security", "set api_cert_file and api_key_file together")
	}
	for i, a := range sec.APIAllow {
		if _, err := parseAllow(a); err != nil {
			bad(fmt.Sprintf("security.api_allow[%d]", i), "%q is not an IP address or CIDR (write e.g. 10.0.0.0/24 or 192.0.2.7)", a)
		}
	}
	if k := len(c.Security.GossipKey); k != 0 {
		if _, err := DecodeGossipKey(c.Security.GossipKey); err != nil {
			bad("security.gossip_key_file", "%v", err)
		}
	}
	c.validateNotify(bad)
	for i, e := range c.Etcd.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
			bad(fmt.Sprintf("etcd.endpoints[%d]", i), "%q: write an etcd client URL such as http://10.0.0.5:2379", e)
		}
	}
	if len(c.Etcd.Endpoints) > 0 {
		if !strings.HasPrefix(c.Etcd.Prefix, "/") || strings.HasSuffix(c.Etcd.Prefix, "/") && c.Etcd.Prefix != "/" {
			bad("etcd.prefix", "%q: start it with / and end it without (e.g. /myha)", c.Etcd.Prefix)
		}
		if t := *c.Etcd.TTL; t != 0 && t < 5*time.Second {
			bad("etcd.ttl", "%s is too short: the leader renews the lease every ttl/3 (use 5s or more, or 0 for no lease)", t)
		}
		if c.Etcd.Timeout < 100*time.Millisecond {
			bad("etcd.timeout", "%s is too short (use 100ms or more)", c.Etcd.Timeout)
		}
	} else if c.Etcd.Prefix != "" || c.Etcd.TTL != nil || c.Etcd.Timeout != 0 {
		bad("etcd.endpoints", "missing: etcd settings without endpoints publish nothing")
	}
	names := map[string]int{}
	owner := map[string]string{} // address → key of its first use, across clusters
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		key := fmt.Sprintf("clusters[%d]", i)
		switch {
		case cl.Name == "":
			bad(key+".name", "missing (every cluster needs a unique name)")
		case !clusterNameRE.MatchString(cl.Name):
			bad(key+".name", "%q: use letters, digits, '.', '_' or '-' (at most 64)", cl.Name)
		default:
			if j, dup := names[cl.Name]; dup {
				bad(key+".name", "duplicate cluster name %q (also clusters[%d])", cl.Name, j)
			}
			names[cl.Name] = i
		}
		if cl.User == "" {
			bad(key+".user", "missing (the admin account myha connects as)")
		}
		if cl.Password == "" && !throughMonitors {
			bad(key+".password", "missing (set password, password_file or %s; only commands that read through the monitors, such as myha topology --api, run without it)", EnvName(cl.Name, "password"))
		}
		if cl.ReplicationUser == "" {
			bad(key+".replication_user", "missing (the account replicas use after a repoint)")
		}
		if cl.ReplicationPassword == "" && !throughMonitors {
			bad(key+".replication_password", "missing (set replication_password, replication_password_file or %s)", EnvName(cl.Name, "replication_password"))
		}
		for _, d := range []struct {
			name string
			val  int64
		}{{"connect_timeout", int64(cl.ConnectTimeout)}, {"read_timeout", int64(cl.ReadTimeout)}, {"check_interval", int64(cl.CheckInterval)},
			{"failover.max_lag", int64(cl.Failover.MaxLag)}, {"failover.catchup_timeout", int64(cl.Failover.CatchupTimeout)},
			{"failover.block_period", int64(cl.Failover.BlockPeriod)}, {"failover.kill_grace", int64(cl.Failover.KillGrace)},
			{"failover.hook_timeout", int64(cl.Failover.HookTimeout)}, {"failover.down_after", int64(cl.Failover.DownAfter)}} {
			if d.val < 0 {
				bad(key+"."+d.name, "must be positive")
			} else if d.val < int64(minDuration) {
				bad(key+"."+d.name, "%s is too small to be meant (at least %s)", time.Duration(d.val), minDuration)
			}
		}
		if len(cl.Servers) == 0 {
			bad(key+".servers", "no servers (list the primary and its replicas)")
		}
		if m := cl.Failover.SemiSync; m != "auto" && m != "on" && m != "off" {
			bad(key+".failover.semi_sync", "%q: use auto, on or off", m)
		}
		if cl.Failover.MaxBacklog < -1 {
			bad(key+".failover.max_backlog", "%d: use a number of transactions, or -1 for no limit", cl.Failover.MaxBacklog)
		}
		if cl.Probe != "select" && cl.Probe != "write" {
			bad(key+".probe", "%q: use select or write", cl.Probe)
		}
		if f := cl.Failover.Fencing; f != "" && f != "require" && f != "best_effort" {
			bad(key+".failover.fencing", "%q: use require or best_effort", f)
		}
		for _, h := range []struct{ name, path string }{
			{"master_ip_failover_script", cl.Failover.MasterIPFailoverScript},
			{"master_ip_online_change_script", cl.Failover.MasterIPOnlineChangeScript},
			{"shutdown_script", cl.Failover.ShutdownScript},
		} {
			if h.path != "" && !filepath.IsAbs(h.path) {
				bad(key+".failover."+h.name, "%q must be an absolute path", h.path)
			}
		}
		for _, hk := range []struct {
			name  string
			hooks []string
		}{{"pre_failover", cl.Failover.PreFailover}, {"post_failover", cl.Failover.PostFailover}} {
			for j, h := range hk.hooks {
				if strings.TrimSpace(h) == "" {
					bad(fmt.Sprintf("%s.failover.%s[%d]", key, hk.name, j), "empty hook command")
				}
			}
		}
		for j := range cl.Servers {
			s := &cl.Servers[j]
			skey := fmt.Sprintf("%s.servers[%d].address", key, j)
			norm, err := NormalizeAddress(s.Address)
			if err != nil {
				bad(skey, "%v", err)
				continue
			}
			s.Address = norm
			if prev, dup := owner[norm]; dup {
				bad(skey, "duplicate server %s (also %s)", norm, prev)
				continue
			}
			owner[norm] = skey
			if s.Candidate && s.NoMaster {
				bad(fmt.Sprintf("%s.servers[%d]", key, j), "candidate and no_master both set; choose one")
			}
		}
		c.validateCapture(key, cl, bad)
		if cl.VIP != nil {
			vkey := key + ".vip"
			if p, err := netip.ParsePrefix(cl.VIP.Address); err != nil {
				bad(vkey+".address", "%q is not a CIDR address (write e.g. 198.18.0.100/24)", cl.VIP.Address)
			} else if a := p.Addr(); a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() ||
				a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || p.Bits() == 0 || p.Masked().Addr() == a && p.Bits() < a.BitLen()-1 {
				bad(vkey+".address", "%s cannot be a virtual IP (not a host address of its network)", p)
			}
			if cl.VIP.Method != "agent" && cl.VIP.Method != "hook" {
				bad(vkey+".method", "%q: use agent (myha agent holds the VIP) or hook (master_ip_failover_script moves it)", cl.VIP.Method)
			}
			if cl.VIP.Lease > 0 && cl.VIP.Lease < minVIPLease {
				bad(vkey+".lease", "%s is too short: agents check every 200ms (at least %s)", cl.VIP.Lease, minVIPLease)
			} else if need := MinVIPLease(cl.CheckInterval); cl.VIP.Method == "agent" && cl.VIP.Lease > 0 && cl.VIP.Lease < need {
				bad(vkey+".lease", "%s is too short for check_interval %s: the leader renews the lease once per check and an agent trusts it for two thirds of it, so it would lapse between renewals and the primary would live on the failsafe or be fenced; use at least %s (or a shorter check_interval)",
					cl.VIP.Lease, cl.CheckInterval, need)
			}
			if cl.VIP.Lease < 0 || cl.VIP.GARPCount < 0 || cl.VIP.GARPRepeat < 0 || cl.VIP.GARPDelay < 0 || cl.VIP.GARPRefresh < 0 {
				bad(vkey, "lease and garp_* settings must not be negative")
			}
			if cl.VIP.Interface == "" {
				bad(vkey+".interface", "missing (the network interface the VIP is added to, e.g. eth0)")
			} else if !ifaceRE.MatchString(cl.VIP.Interface) {
				bad(vkey+".interface", "%q is not an interface name", cl.VIP.Interface)
			}
		}
	}
	return errs
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// MinVIPLease is the shortest vip.lease a check_interval allows. The
// leader renews the agreed primary's lease after every probe (once per
// check_interval while healthy); the agent trusts it for two thirds of the
// lease from its own report the lease acknowledges, up to one agent round
// (200 ms) older than the lease, and a probe or gossip delay may add a few
// hundred more: the trust must outlast check_interval + 500 ms.
func MinVIPLease(checkInterval time.Duration) time.Duration {
	return (checkInterval + 500*time.Millisecond) * 3 / 2
}

// Lower bounds on durations: below them a value is a typo (1ns, 1us).
const (
	minDuration = 10 * time.Millisecond
	minVIPLease = 500 * time.Millisecond
)

// DecodeGossipKey turns the key file's content (raw bytes or base64) into a
// 16, 24 or 32 byte AES key.
func DecodeGossipKey(s Secret) ([]byte, error) {
	raw := []byte(s.Value())
	if n := len(raw); n == 16 || n == 24 || n == 32 {
		return raw, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s.Value()); err == nil {
		if n := len(b); n == 16 || n == 24 || n == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("the gossip key must be 16, 24 or 32 bytes, raw or base64 (generate one with: head -c32 /dev/urandom | base64)")
}
