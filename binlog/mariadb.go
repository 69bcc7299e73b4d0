package binlog

import (
	"fmt"
	"slices"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// GTID is one MariaDB global transaction id, domain-server-seq.
type GTID struct {
	Domain   uint32
	ServerID uint32
	Seq      uint64
}

// String renders the GTID the way the server prints it.
func (g GTID) String() string { return fmt.Sprintf("%d-%d-%d", g.Domain, g.ServerID, g.Seq) }

// MariaDBPos is a MariaDB GTID position: the last GTID seen in each replication
// domain. It is not a set: two positions are compared domain by domain.
// A MariaDBPos is immutable once parsed; methods return new values.
type MariaDBPos struct {
	gtids []GTID // sorted by Domain, at most one per domain
}

// ParseMariaDBPos parses a value such as @@gtid_binlog_pos or Gtid_IO_Pos
// ("0-1-100,1-2-7"). The empty string is the empty position.
func ParseMariaDBPos(s string) (MariaDBPos, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return MariaDBPos{}, nil
	}
	var out []GTID
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return MariaDBPos{}, fmt.Errorf("MariaDB GTID position %q: empty element", s)
		}
		g, err := gomysql.ParseMariadbGTID(part)
		if err != nil || strings.Count(part, "-") != 2 {
			return MariaDBPos{}, fmt.Errorf("MariaDB GTID position %q: %q is not domain-server-seq", clip(s), clip(part))
		}
		gt := GTID{Domain: g.DomainID, ServerID: g.ServerID, Seq: g.SequenceNumber}
		for _, have := range out {
			if have.Domain == gt.Domain {
				return MariaDBPos{}, fmt.Errorf("MariaDB GTID position %q: domain %d appears twice", s, gt.Domain)
			}
		}
		out = append(out, gt)
	}
	slices.SortFunc(out, func(a, b GTID) int { return int(int64(a.Domain) - int64(b.Domain)) })
	return MariaDBPos{gtids: out}, nil
}

// MustParseMariaDBPos is ParseMariaDBPos for constants in tests and examples.
func MustParseMariaDBPos(s string) MariaDBPos {
	p, err := ParseMariaDBPos(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String renders the position in the server's own format, domains ascending.
func (p MariaDBPos) String() string {
	parts := make([]string, len(p.gtids))
	for i, g := range p.gtids {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

// IsEmpty reports whether the position holds no domain.
func (p MariaDBPos) IsEmpty() bool { return len(p.gtids) == 0 }

// GTIDs returns a copy of the per-domain GTIDs, domains ascending.
func (p MariaDBPos) GTIDs() []GTID { return slices.Clone(p.gtids) }

// Domain returns the GTID for one domain.
func (p MariaDBPos) Domain(d uint32) (GTID, bool) {
	for _, g := range p.gtids {
		if g.Domain == d {
			return g, true
		}
	}
	return GTID{}, false
}

// Merge returns, per domain, the GTID with the higher sequence number. It is
// the position a server reaches after applying both histories, which is how
// the slave position must be set after replaying rescued events.
func (p MariaDBPos) Merge(q MariaDBPos) MariaDBPos {
	out := slices.Clone(p.gtids)
	for _, g := range q.gtids {
		i := slices.IndexFunc(out, func(h GTID) bool { return h.Domain == g.Domain })
		switch {
		case i < 0:
			out = append(out, g)
		case g.Seq > out[i].Seq:
			out[i] = g
		}
	}
	slices.SortFunc(out, func(a, b GTID) int { return int(int64(a.Domain) - int64(b.Domain)) })
	return MariaDBPos{gtids: out}
}

// DomainRelation says how one domain of two positions relates.
type DomainRelation struct {
	Domain uint32
	// Delta is this side's seq minus the other side's (a missing domain counts as 0).
	Delta int64
	// Diverged is set when both sides hold the same seq_no from different
	// server_ids: the histories split, and neither contains the other.
	Diverged bool
}

// CompareDomains relates p to q domain by domain, over the union of domains.
func (p MariaDBPos) CompareDomains(q MariaDBPos) []DomainRelation {
	var out []DomainRelation
	seen := map[uint32]bool{}
	for _, g := range p.gtids {
		seen[g.Domain] = true
		h, ok := q.Domain(g.Domain)
		r := DomainRelation{Domain: g.Domain, Delta: int64(g.Seq)}
		if ok {
			r.Delta = int64(g.Seq) - int64(h.Seq)
			r.Diverged = g.Seq == h.Seq && g.ServerID != h.ServerID
		}
		out = append(out, r)
	}
	for _, h := range q.gtids {
		if !seen[h.Domain] {
			out = append(out, DomainRelation{Domain: h.Domain, Delta: -int64(h.Seq)})
		}
	}
	slices.SortFunc(out, func(a, b DomainRelation) int { return int(int64(a.Domain) - int64(b.Domain)) })
	return out
}

// Compare relates two MariaDB positions as a whole. Ahead means p contains
// everything in q and more; Incomparable means each has something the other
// lacks (ahead in one domain, behind in another); Diverged means some domain
// holds the same seq_no from different servers.
func (p MariaDBPos) Compare(q MariaDBPos) Relation {
	ahead, behind := false, false
	for _, r := range p.CompareDomains(q) {
		switch {
		case r.Diverged:
			return Diverged
		case r.Delta > 0:
			ahead = true
		case r.Delta < 0:
			behind = true
		}
	}
	return relationOf(ahead, behind)
}

// MariaDBErrant returns the GTIDs that show a replica holds transactions its
// primary never had, given the replica's gtid_binlog_pos and gtid_slave_pos,
// its own server_id, and the primary's gtid_binlog_pos and gtid_slave_pos.
//
// Two signs are used, because positions alone can hide errant writes once the
// primary moves past them:
//   - the replica's binlog holds a GTID of its own server_id beyond what it
//     replicated in that domain (a local write that reached the binlog);
//   - the replica is ahead of, or diverged from, its primary in some domain.
//
// A server that was primary once and later replicates keeps its old GTIDs in
// the binlog at or below its slave position, which is not errant. A local
// write the primary replicated (a co-primary pair) is not errant either: the
// primary then holds that exact GTID, or has replicated past it from us.
// When the primary's later writes hide whether it has the write, the write is
// reported: a false alarm is safer than promoting a diverged server.
func MariaDBErrant(replicaBinlog, replicaSlave MariaDBPos, replicaServerID uint32, primaryBinlog, primarySlave MariaDBPos) []GTID {
	var errant []GTID
	add := func(g GTID) {
		if !slices.Contains(errant, g) {
			errant = append(errant, g)
		}
	}
	for _, g := range replicaBinlog.gtids {
		if g.ServerID != replicaServerID {
			continue
		}
		s, ok := replicaSlave.Domain(g.Domain)
		if !ok || g.Seq > s.Seq {
			pb, okb := primaryBinlog.Domain(g.Domain)
			ps, oks := primarySlave.Domain(g.Domain)
			primaryHasIt := (okb && pb == g) || (oks && ps.ServerID == g.ServerID && ps.Seq >= g.Seq)
			if !primaryHasIt {
				add(g)
			}
		}
	}
	current := replicaSlave.Merge(replicaBinlog)
	for _, g := range current.gtids {
		pg, ok := primaryBinlog.Domain(g.Domain)
		if !ok || g.Seq > pg.Seq || (g.Seq == pg.Seq && g.ServerID != pg.ServerID) {
			add(g)
		}
	}
	slices.SortFunc(errant, func(a, b GTID) int { return int(int64(a.Domain) - int64(b.Domain)) })
	return errant
}

// MariaDBLocalWrites lists the GTIDs a server wrote itself that it did not
// replicate: GTIDs in its binlog position carrying its own server_id beyond
// its gtid_slave_pos. On a replica these are errant unless another server
// replicated them (an earlier primary's writes); unlike MariaDBErrant this
// needs no live primary, so a dead-primary failover can still see them.
func MariaDBLocalWrites(binlogPos, slavePos MariaDBPos, serverID uint32) []GTID {
	var out []GTID
	for _, g := range binlogPos.gtids {
		if g.ServerID != serverID {
			continue
		}
		if s, ok := slavePos.Domain(g.Domain); !ok || g.Seq > s.Seq {
			out = append(out, g)
		}
	}
	return out
}

// Holds reports whether a position shows that its server has g: the same
// domain carries g's server_id at g's seq_no or later. A later GTID from
// another server proves nothing about g.
func (p MariaDBPos) Holds(g GTID) bool {
	h, ok := p.Domain(g.Domain)
	return ok && h.ServerID == g.ServerID && h.Seq >= g.Seq
}

// ParseMariaDBState parses @@gtid_binlog_state: the last GTID of every
// (domain, server_id) pair in the binlog, so a domain can appear more than
// once. Unlike a position it still shows a server's own write after other
// servers' GTIDs followed it in that domain (gtid_strict_mode=0 lets seq
// numbers repeat across servers, hiding it from the position).
func ParseMariaDBState(s string) ([]GTID, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []GTID
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		g, err := gomysql.ParseMariadbGTID(part)
		if part == "" || err != nil || strings.Count(part, "-") != 2 {
			return nil, fmt.Errorf("MariaDB GTID state %q: %q is not domain-server-seq", clip(s), clip(part))
		}
		out = append(out, GTID{Domain: g.DomainID, ServerID: g.ServerID, Seq: g.SequenceNumber})
	}
	return out, nil
}

// StateHolds reports whether a binlog state shows g: the same domain and
// server_id at g's seq_no or later.
func StateHolds(state []GTID, g GTID) bool {
	for _, h := range state {
		if h.Domain == g.Domain && h.ServerID == g.ServerID && h.Seq >= g.Seq {
			return true
		}
	}
	return false
}

// clip keeps an error about a position readable: a server with thousands
// of domains has positions of many kilobytes.
func clip(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return s[:max] + fmt.Sprintf("…(%d bytes)", len(s))
}
