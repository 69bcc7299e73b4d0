package topology

import (
	"time"

	"github.com/myha/myha/binlog"
)

// Memory is what was known of a cluster the last time its primary answered:
// the facts a dead server can no longer tell — its SQL dialect, its
// semi-sync settings, and which server was the passive side of its
// co-primary pair. The daemon keeps it from its probes and the CLI from
// the state directory, so a failover of a dead primary plans with them.
type Memory struct {
	Primary string `json:"primary"`
	// CoPrimary is the passive side of the primary's co-primary pair.
	CoPrimary string `json:"co_primary,omitempty"`
	Flavor    string `json:"flavor"`
	Major     int    `json:"major"`
	Minor     int    `json:"minor"`
	Patch     int    `json:"patch"`
	// SemiSync is the primary's semi-sync primary side (enabled).
	SemiSync bool      `json:"semi_sync"`
	TakenAt  time.Time `json:"taken_at"`
}

// Remember extracts the memory of a snapshot whose primary answers; ok is
// false when there is nothing trustworthy to remember.
func Remember(s *Snapshot) (Memory, bool) {
	p, ok := s.Server(s.Primary)
	if !ok || !p.Reachable || p.Dialect.Flavor == "" {
		return Memory{}, false
	}
	return Memory{Primary: p.Spec.Address, CoPrimary: p.CoPrimaryOf, Flavor: string(p.Dialect.Flavor),
		Major: p.Dialect.Major, Minor: p.Dialect.Minor, Patch: p.Dialect.Patch,
		SemiSync: p.SemiSync.SourceEnabled, TakenAt: s.TakenAt}, true
}

// Same reports whether two memories hold the same facts (TakenAt aside),
// so callers store a memory only when it changed.
func (m Memory) Same(o Memory) bool {
	m.TakenAt, o.TakenAt = time.Time{}, time.Time{}
	return m == o
}

// WithMemory returns the snapshot with what was remembered filled in for
// its primary when that primary is unreachable now: its dialect and
// semi-sync settings, and its co-primary pair (whose passive side still
// replicates from it). The views it changes are marked Remembered. A
// memory of another primary changes nothing.
func (s Snapshot) WithMemory(m Memory) Snapshot {
	p, ok := s.Server(s.Primary)
	if !ok || p.Reachable || m.Primary != s.Primary {
		return s
	}
	out := s
	out.Servers = append([]ServerView(nil), s.Servers...)
	p, _ = out.Server(s.Primary)
	p.Dialect = Dialect{Flavor: binlog.Flavor(m.Flavor), Major: m.Major, Minor: m.Minor, Patch: m.Patch}
	p.SemiSync.SourceEnabled = m.SemiSync
	p.Remembered = true
	if c, ok := out.Server(m.CoPrimary); ok && m.CoPrimary != "" && c.Source == p.Spec.Address {
		p.CoPrimaryOf, c.CoPrimaryOf = c.Spec.Address, p.Spec.Address
		c.Role = RoleCoPrimary
		c.Remembered = true
	}
	return out
}
