// Package topology discovers a replication cluster and describes it as an
// immutable snapshot: every server's state, the derived roles, and the
// problems found. The failover planner works from snapshots only.
//
// All SQL that differs between MariaDB and MySQL lives in dialect.go.
package topology

import (
	"log/slog"
	"time"
)

// ClusterSpec is what discovery needs to know about a cluster, as plain values
// handed down from the validated config.
type ClusterSpec struct {
	Name           string
	Credentials    Credentials
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// TLS protects myha's connections and, at each repoint, the replicas'.
	TLS     TLSSpec
	Servers []ServerSpec
}

// ServerSpec is one configured server and the operator's promotion policy for it.
type ServerSpec struct {
	Address   string // host:port, normalized
	Candidate bool
	NoMaster  bool
	Priority  int
}

// Credentials are the admin account myha connects with. It masks its
// password in every printed form so it cannot leak into logs or reports.
type Credentials struct {
	User     string
	Password string
}

// String masks the password.
func (c Credentials) String() string { return c.User + ":******" }

// GoString masks the password for %#v.
func (c Credentials) GoString() string {
	return "topology.Credentials{User:" + c.User + ", Password:******}"
}

// LogValue masks the password for slog.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalText masks the password for JSON.
func (c Credentials) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
