package topology

import (
	"time"

	"github.com/myha/myha/binlog"
)

// Role is a server's place in the replication tree, derived from every
// server's replication settings.
type Role string

// Roles. A co-primary pair has one active side (RolePrimary, writable) and
// one passive side (RoleCoPrimary).
const (
	RolePrimary      Role = "primary"
	RoleCoPrimary    Role = "co-primary"
	RoleReplica      Role = "replica"
	RoleIntermediate Role = "intermediate"
	RoleUnknown      Role = "unknown"
)

// ServerState is one server as discovered at one moment. Snapshots share
// these by value; nothing changes them after Build.
type ServerState struct {
	Spec      ServerSpec
	Reachable bool
	// Error says why the server could not be read (when !Reachable) or what
	// part of discovery failed.
	Error string
	// Answered is set when an unreachable server did answer, refusing us
	// (too many connections, access denied, host blocked): alive, and not a
	// reason to fail over.
	Answered bool
	ProbeRTT time.Duration

	Dialect    Dialect
	VersionRaw string
	ServerID   uint32
	ServerUUID string
	Hostname   string

	ReadOnly      bool
	SuperReadOnly bool
	LogBin        bool
	LogReplicaUpd bool
	BinlogFormat  string

	// MariaDB GTID state.
	GTIDBinlogPos  binlog.MariaDBPos
	GTIDSlavePos   binlog.MariaDBPos
	GTIDCurrentPos binlog.MariaDBPos
	// GTIDBinlogState is @@gtid_binlog_state: the last GTID of every
	// (domain, server_id) in the binlog, where a local write stays visible
	// even after later GTIDs of other servers.
	GTIDBinlogState []binlog.GTID
	GTIDStrictMode  bool
	GTIDDomainID    uint32
	// MySQL GTID state.
	GTIDMode     string
	GTIDExecuted binlog.MySQLSet

	BinlogCoord binlog.FilePos
	SemiSync    SemiSync

	// Privileges are myha's own global privileges on this server (from
	// SHOW GRANTS, names only); GrantsRead says whether they could be read.
	Privileges []string
	GrantsRead bool
	// PrivilegedAccounts are accounts that read_only does not stop (MariaDB:
	// READ ONLY ADMIN, or SUPER before 10.11), read on writable servers only,
	// as 'user'@'host'.
	PrivilegedAccounts []string
	// Warnings are parts of discovery that failed without hiding replication
	// state (a missing privilege for an optional query).
	Warnings []string

	// Vars holds every variable read, for checks that need more than the
	// typed fields (sync_binlog, slave_net_timeout, ...).
	Vars map[string]string

	// Replication lists this server's replication connections (sources).
	Replication []ReplicaConn
	// ConnectedReplicas are replicas that are connected to or registered
	// with this server, whether or not they are configured.
	ConnectedReplicas []ConnectedReplica
	// FactsFrom is when the slow-changing facts above (Dialect,
	// VersionRaw, Privileges, GrantsRead, PrivilegedAccounts,
	// ConnectedReplicas) were read, when a monitor's routine probe took
	// them from an earlier probe (FactsCache); zero when read now.
	FactsFrom time.Time `json:"-"`
}

// SemiSync is the semi-synchronous replication state of a server.
type SemiSync struct {
	SourceEnabled bool // master/source plugin side switched on
	SourceActive  bool // currently waiting for acks (not fallen back to async)
	SourceClients int  // replicas acking
	ReplicaOn     bool // replica side switched on
	ReplicaActive bool
}

// ReplicaConn is one replication connection of a server (a MariaDB named
// connection or a MySQL channel).
type ReplicaConn struct {
	Name           string // connection name / channel ("" is the default)
	SourceHost     string
	SourcePort     int
	SourceServerID uint32
	SourceUUID     string
	IOState        string // Yes, No, Connecting, Preparing
	SQLRunning     bool
	LastIOErrno    int
	LastIOError    string
	LastSQLErrno   int
	LastSQLError   string
	// LagSeconds is Seconds_Behind_Master; nil when the server reports NULL
	// (SQL thread stopped or IO thread not connected).
	LagSeconds *int64
	SQLDelay   int64
	// UsingGTID is MariaDB's Using_Gtid (No, Slave_Pos, Current_Pos); on MySQL
	// "Auto_Position" or "No".
	UsingGTID string
	// MariaDB: Gtid_IO_Pos (received). MySQL: Retrieved and executed sets.
	GTIDIOPos     binlog.MariaDBPos
	RetrievedSet  binlog.MySQLSet
	ExecutedSet   binlog.MySQLSet
	ReadCoord     binlog.FilePos // source binlog read up to (IO thread)
	ExecCoord     binlog.FilePos // source binlog executed up to (SQL thread)
	SQLState      string
	IOStateText   string
	HeartbeatSecs float64
	// Heartbeats counts heartbeats received from the source (MariaDB
	// Slave_received_heartbeats): a silent source stops it moving.
	Heartbeats   int64
	ConnectRetry int
	Filters      map[string]string // Replicate_* filters that are set
	// SSL is Master_SSL_Allowed (Source_SSL_Allowed) = Yes: the connection
	// is configured for TLS; SSLVerifyHost is *_SSL_Verify_Server_Cert.
	SSL, SSLVerifyHost bool
}

// IORunning reports a connected IO thread.
func (c ReplicaConn) IORunning() bool { return c.IOState == "Yes" }

// Source is the source address as host:port.
func (c ReplicaConn) Source() string { return joinHostPort(c.SourceHost, c.SourcePort) }

// ConnectedReplica is a replica seen from its source's side.
type ConnectedReplica struct {
	ServerID uint32 // 0 when only a dump thread was seen
	Host     string
	Port     int // the replica's own port when registered; 0 when unknown
	User     string
}

// Snapshot is a cluster's topology at one moment, immutable once built.
type Snapshot struct {
	Cluster string
	TakenAt time.Time
	Took    time.Duration
	Servers []ServerView
	// Primary is the address of the writable root of the tree (the active
	// side of a co-primary pair), or "" when there is none or it is unclear.
	Primary string
	// Unlisted are replicas found on servers that are not in the config.
	Unlisted []UnlistedReplica
	// Problems are cluster-wide findings, one line each.
	Problems []string
}

// ReusedFacts says whether any server's slow-changing facts come from an
// earlier probe (FactsCache). Planning a failover needs a snapshot where
// none does.
func (s *Snapshot) ReusedFacts() bool {
	for i := range s.Servers {
		if !s.Servers[i].FactsFrom.IsZero() {
			return true
		}
	}
	return false
}

// ServerView is a server's state plus what the cluster view adds: its role,
// its resolved source, errant transactions and problems.
type ServerView struct {
	ServerState
	Role Role
	// Source is the configured address this server replicates from (its
	// default / first connection), or "" for none; SourceOutside is set when
	// the source is not a server of this cluster.
	Source        string
	SourceOutside string
	// CoPrimaryOf is the other side of a co-primary pair.
	CoPrimaryOf string
	// Errant lists transactions this server has that its source lacks.
	Errant []string
	// Problems are findings about this server, one line each.
	Problems []string
	// Remembered marks a view completed from Memory (the server did not
	// answer; its dialect, semi-sync or pair come from an earlier snapshot).
	Remembered bool
	// Maintenance is why an operator put this server in maintenance (myha
	// maintenance, held by the monitors); "" when it is not. Set by the
	// caller that knows (MarkMaintenance), never by discovery.
	Maintenance string
}

// MarkMaintenance records which servers are in maintenance (address →
// reason), for the tree and the report to show.
func (s *Snapshot) MarkMaintenance(m map[string]string) {
	for i := range s.Servers {
		s.Servers[i].Maintenance = m[s.Servers[i].Spec.Address]
	}
}

// UnlistedReplica is a replica connected to a cluster server but missing from
// the config: it would be left behind by a failover.
type UnlistedReplica struct {
	Source   string
	Host     string
	Port     int
	ServerID uint32
}

// Server returns the view of the server with this address.
func (s *Snapshot) Server(addr string) (*ServerView, bool) {
	for i := range s.Servers {
		if s.Servers[i].Spec.Address == addr {
			return &s.Servers[i], true
		}
	}
	return nil, false
}

// PrimaryConn returns the connection a server uses to replicate inside the
// cluster: the default connection, else the first.
func (v *ServerState) PrimaryConn() (*ReplicaConn, bool) {
	if len(v.Replication) == 0 {
		return nil, false
	}
	for i := range v.Replication {
		if v.Replication[i].Name == "" {
			return &v.Replication[i], true
		}
	}
	return &v.Replication[0], true
}

// ExecutedPosition is what the server has applied, flavor-neutral:
// gtid_current_pos on MariaDB, gtid_executed on MySQL.
func (v *ServerState) ExecutedPosition() binlog.Position {
	if v.Dialect.Flavor == binlog.MySQL {
		return binlog.Position{Flavor: binlog.MySQL, MySQL: v.GTIDExecuted}
	}
	return binlog.Position{Flavor: binlog.MariaDB, MariaDB: v.GTIDCurrentPos}
}
