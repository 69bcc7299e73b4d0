// Package config reads, defaults and validates myha's configuration file. It
// is the only package that knows the file format (it alone imports viper);
// everything below cmd/ receives the plain, validated values defined here.
package config

import (
	"net/netip"
	"strings"
	"time"
)

// Defaults applied when a key is absent.
const (
	DefaultPort           = 3306
	DefaultConnectTimeout = 1 * time.Second
	DefaultReadTimeout    = 2 * time.Second
	DefaultCheckInterval  = 1 * time.Second
	DefaultMaxLag         = 30 * time.Second
	DefaultCatchupTimeout = 60 * time.Second
	DefaultMaxBacklog     = 10000
	DefaultBlockPeriod    = time.Hour
	DefaultKillGrace      = time.Second
	DefaultHookTimeout    = 30 * time.Second
	DefaultStateDir       = "/var/lib/myha"
	DefaultGossipPort     = 7946
	DefaultRaftPort       = 7947
	DefaultAPIPort        = 8080
	DefaultDownAfter      = time.Second
	DefaultGossipLabel    = "myha"
	DefaultAgentHTTPPort  = 8008
	DefaultVIPLease       = 3 * time.Second
	DefaultEtcdPrefix     = "/myha"
	DefaultEtcdTTL        = 30 * time.Second
	DefaultEtcdTimeout    = 2 * time.Second
)

// Config is a whole, validated myha configuration: the same file on every
// monitor and database host.
type Config struct {
	// StateDir holds failover records, the in-progress journal and
	// acknowledgements (default /var/lib/myha).
	StateDir string `mapstructure:"state_dir"`
	// StateDirDefaulted is set when the file has no state_dir: a non-root
	// command may then fall back to a directory of its own user.
	StateDirDefaulted bool `mapstructure:"-"`
	// Monitors are the hosts that run `myha daemon`: the same list on every
	// host. They gossip, elect a leader, and only the leader fails over.
	Monitors []Monitor `mapstructure:"monitors"`
	Security Security  `mapstructure:"security"`
	Agents   Agents    `mapstructure:"agents"`
	// Etcd, when it has endpoints, makes the raft leader publish each
	// cluster's primary and healthy replicas there (for confd rewriting
	// HAProxy's config, the usual seed deployment).
	Etcd Etcd `mapstructure:"etcd"`
	// Notify sends the leader's state changes to a webhook and an
	// MHA-style report_script.
	Notify   Notify    `mapstructure:"notify"`
	Clusters []Cluster `mapstructure:"clusters"`
}

// Etcd is where the leader publishes the topology: under
// <prefix>/<cluster>/primary the primary's host:port, and under
// <prefix>/<cluster>/replicas/<host:port> each replica that replicates
// from it with both threads running and within failover.max_lag.
type Etcd struct {
	// Endpoints are etcd client URLs (http:// or https://); the v3 JSON
	// gateway is used, so no gRPC client is needed.
	Endpoints []string `mapstructure:"endpoints"`
	// Prefix is the key prefix (default /myha).
	Prefix string `mapstructure:"prefix"`
	// TTL is the lease on the published keys, kept alive by the leader:
	// with every monitor gone for longer, the keys vanish and consumers
	// stop routing to a primary nobody watches (default 30s; 0 turns the
	// lease off).
	TTL *time.Duration `mapstructure:"ttl"`
	// Timeout bounds every request to etcd (default 2s).
	Timeout time.Duration `mapstructure:"timeout"`
}

// Monitor is one `myha daemon` host.
type Monitor struct {
	Name       string `mapstructure:"name"`
	Address    string `mapstructure:"address"` // IP or host name, no port
	GossipPort int    `mapstructure:"gossip_port"`
	RaftPort   int    `mapstructure:"raft_port"`
	APIPort    int    `mapstructure:"api_port"`
}

// Security holds the secrets monitors share and where each node's
// certificate lives. Files, not inline values, so the config can be
// world-readable. In cert_file, key_file, api_cert_file and api_key_file
// "{name}" stands for the monitor's name, so one config serves every host.
type Security struct {
	// GossipKeyFile holds a 16, 24 or 32 byte key (raw or base64). Monitors
	// and agents refuse to start without it unless Insecure is set.
	GossipKeyFile string `mapstructure:"gossip_key_file"`
	// APITokenFile holds the write token: the bearer token every change
	// over the API needs (and which also allows reads).
	APITokenFile string `mapstructure:"api_token_file"`
	// APIReadTokenFile, when set, makes every read of the API (except
	// /health and /leader) need this token or the write token.
	APIReadTokenFile string `mapstructure:"api_read_token_file"`
	// GossipLabel separates deployments sharing a network (default "myha").
	GossipLabel string `mapstructure:"gossip_label"`
	// CAFile, CertFile and KeyFile are the deployment's CA and this
	// monitor's certificate and key (myha certs init/issue): raft between
	// monitors is mutual TLS with them. Required unless Insecure is set.
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// APICertFile and APIKeyFile make the HTTP API serve HTTPS.
	APICertFile string `mapstructure:"api_cert_file"`
	APIKeyFile  string `mapstructure:"api_key_file"`
	// APIAllow, when set, limits who may reach the monitors' HTTP API to
	// these CIDRs or single addresses (every other source gets 403); the
	// monitors' own addresses are always allowed, as followers forward
	// changes to the leader. Empty: any source (tokens still apply).
	APIAllow []string `mapstructure:"api_allow"`
	// Insecure lets monitors and agents run without a gossip key and raft
	// without TLS. It is shown by myha status and the API.
	Insecure bool `mapstructure:"insecure"`

	GossipKey    Secret `mapstructure:"-"`
	APIToken     Secret `mapstructure:"-"`
	APIReadToken Secret `mapstructure:"-"`
}

// APIAllowPrefixes is APIAllow parsed (validated at load time): a single
// address becomes a one-address prefix.
func (s Security) APIAllowPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range s.APIAllow {
		if p, err := parseAllow(a); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parseAllow(a string) (netip.Prefix, error) {
	a = strings.TrimSpace(a)
	if ip, err := netip.ParseAddr(a); err == nil {
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(a)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// NodeFile expands "{name}" in a security file path for monitor name.
func NodeFile(path, name string) string { return strings.ReplaceAll(path, "{name}", name) }

// Monitor returns the monitor with this name.
func (c *Config) Monitor(name string) (*Monitor, bool) {
	for i := range c.Monitors {
		if c.Monitors[i].Name == name {
			return &c.Monitors[i], true
		}
	}
	return nil, false
}

// Cluster is one replication topology that myha keeps writable.
type Cluster struct {
	// Name identifies the cluster in commands, logs and the API; unique.
	Name string `mapstructure:"name"`
	// User and Password are the admin account myha queries and changes
	// servers with.
	User         string `mapstructure:"user"`
	Password     Secret `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`
	// ReplicationUser and ReplicationPassword are what replicas use to connect
	// to a new primary after a repoint.
	ReplicationUser         string `mapstructure:"replication_user"`
	ReplicationPassword     Secret `mapstructure:"replication_password"`
	ReplicationPasswordFile string `mapstructure:"replication_password_file"`
	// ConnectTimeout and ReadTimeout bound every query myha sends, so one hung
	// server cannot stall discovery of the others.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	ReadTimeout    time.Duration `mapstructure:"read_timeout"`
	// CheckInterval is how often monitors probe each server (MHA ping_interval).
	CheckInterval time.Duration `mapstructure:"check_interval"`
	// Probe is "select" (connect and read state) or "write" (also upsert a
	// heartbeat row on the primary, catching a primary that accepts
	// connections but cannot write; MHA ping_type INSERT). Default select.
	Probe string `mapstructure:"probe"`
	// TLS protects connections to the servers (default mode preferred).
	TLS      TLS      `mapstructure:"tls"`
	Servers  []Server `mapstructure:"servers"`
	VIP      *VIP     `mapstructure:"vip"`
	Failover Failover `mapstructure:"failover"`
	// Capture makes the monitors durable binlog captures of the primary.
	Capture Capture `mapstructure:"capture"`
}

// Failover is a cluster's failover policy.
type Failover struct {
	// MaxLag excludes replicas further behind than this from promotion
	// (MHA check_repl_delay; default 30s).
	MaxLag time.Duration `mapstructure:"max_lag"`
	// CatchupTimeout bounds how long the new primary may take to apply its
	// relay log and catch up from a more advanced replica (default 60s); a
	// failover that would take longer stops at a safe point instead.
	CatchupTimeout time.Duration `mapstructure:"catchup_timeout"`
	// MaxBacklog makes replicas ineligible that would have more than this
	// many transactions to apply before taking writes, counted by GTID
	// position (with the primary dead, lag in seconds is unknown; default
	// 10000, 0 keeps the default, -1 turns the limit off).
	MaxBacklog int64 `mapstructure:"max_backlog"`
	// SemiSync says whether the new primary switches the semi-sync primary
	// side on: auto (default: as the old primary had it, remembered from
	// the last snapshot in which it answered when it is dead, else when the
	// new primary's replica side was on), on, or off.
	SemiSync string `mapstructure:"semi_sync"`
	// BlockPeriod refuses automatic failovers of the cluster for this long
	// after one, unless acknowledged (anti-flapping; default 1h).
	BlockPeriod time.Duration `mapstructure:"block_period"`
	// KillGrace is how long a switchover lets writes drain after read_only=1
	// before it kills the sessions still writing (default 1s).
	KillGrace time.Duration `mapstructure:"kill_grace"`
	// HookTimeout bounds every hook run (default 30s).
	HookTimeout time.Duration `mapstructure:"hook_timeout"`
	// PreFailover and PostFailover are shell commands run before the first
	// change and after the last, for failovers and switchovers alike, with
	// MYHA_* environment variables. A failing pre hook aborts.
	PreFailover  []string `mapstructure:"pre_failover"`
	PostFailover []string `mapstructure:"post_failover"`
	// MHA-compatible scripts, called with MHA's arguments and exit codes
	// (0 ok, 10 warn and go on, anything else aborts).
	MasterIPFailoverScript     string `mapstructure:"master_ip_failover_script"`
	MasterIPOnlineChangeScript string `mapstructure:"master_ip_online_change_script"`
	ShutdownScript             string `mapstructure:"shutdown_script"`
	// Auto lets the daemon fail over by itself (default true).
	Auto *bool `mapstructure:"auto"`
	// AutoRejoin makes a returning old primary a replica of the new one when
	// it has no errant transactions (default false: it is only reported).
	AutoRejoin bool `mapstructure:"auto_rejoin"`
	// DownAfter is how long the primary must stay unreachable, confirmed by
	// a majority of monitors and by its replicas, before the daemon fails
	// over: a restart or a blip shorter than this causes no failover
	// (default 1s).
	DownAfter time.Duration `mapstructure:"down_after"`
	// Fencing is what the daemon demands before promoting a replica while
	// the old primary is unreachable: "require" (default) refuses unless
	// the old primary is fenced over SQL, shutdown_script is configured,
	// its agent reports it released and fenced, or its VIP lease has
	// expired with agents configured; "best_effort" promotes anyway.
	Fencing string `mapstructure:"fencing"`
}

// AutoEnabled says whether the daemon may fail this cluster over by itself.
func (f Failover) AutoEnabled() bool { return f.Auto == nil || *f.Auto }

// Server is one database server of a cluster.
type Server struct {
	// Address is host:port, normalized at load time (port 3306 when absent).
	Address string `mapstructure:"address"`
	// Candidate prefers this server as the new primary (MHA candidate_master).
	Candidate bool `mapstructure:"candidate"`
	// NoMaster forbids promoting this server (MHA no_master).
	NoMaster bool `mapstructure:"no_master"`
	// Priority breaks ties among equally advanced candidates; higher wins.
	Priority int `mapstructure:"priority"`
}

// VIP is the virtual address that follows the primary.
type VIP struct {
	// Address is a CIDR such as 198.18.0.100/24.
	Address   string `mapstructure:"address"`
	Interface string `mapstructure:"interface"`
	// Method is "agent" (myha agent on each database host holds it) or
	// "hook" (master_ip_failover_script moves it, e.g. a cloud IP).
	Method string `mapstructure:"method"`
	// Lease is how long an agent may hold the VIP without word from the
	// monitors' leader (default 3s).
	Lease time.Duration `mapstructure:"lease"`
	// Gratuitous ARP: GARPCount per burst (5), GARPRepeat more bursts (1)
	// GARPDelay apart (5s), GARPRefresh periodic re-announcement (off).
	GARPCount   int           `mapstructure:"garp_count"`
	GARPRepeat  int           `mapstructure:"garp_repeat"`
	GARPDelay   time.Duration `mapstructure:"garp_delay"`
	GARPRefresh time.Duration `mapstructure:"garp_refresh"`
}

// Agents are the settings of `myha agent` on the database hosts.
type Agents struct {
	// HTTPPort serves the health endpoints HAProxy checks (default 8008).
	HTTPPort int `mapstructure:"http_port"`
	// GossipPort is where agents join the monitors' gossip (default 7946).
	GossipPort int `mapstructure:"gossip_port"`
}

// Cluster returns the named cluster.
func (c *Config) Cluster(name string) (*Cluster, bool) {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			return &c.Clusters[i], true
		}
	}
	return nil, false
}

// Server returns the configured server with this address.
func (c *Cluster) Server(addr string) (*Server, bool) {
	for i := range c.Servers {
		if c.Servers[i].Address == addr {
			return &c.Servers[i], true
		}
	}
	return nil, false
}
