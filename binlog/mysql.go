package binlog

import (
	"fmt"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/uuid"
)

// MySQLSet is a MySQL GTID set (gtid_executed, Retrieved_Gtid_Set): a true set
// of transactions, uuid[:tag]:intervals. It wraps go-mysql's type and adds the
// set arithmetic a failover manager needs (subtraction for errant GTIDs).
// A MySQLSet is immutable once parsed.
type MySQLSet struct {
	s gomysql.MysqlGTIDSet
}

// ParseMySQLSet parses a MySQL GTID set; the empty string is the empty set.
// Server output wraps long sets over lines, so newlines are ignored.
func ParseMySQLSet(str string) (MySQLSet, error) {
	clean := strings.NewReplacer("\n", "", "\r", "", " ", "", "\t", "").Replace(str)
	if clean == "" {
		return MySQLSet{s: gomysql.NewMysqlGTIDSet()}, nil
	}
	for _, part := range strings.Split(clean, ",") {
		if part == "" {
			return MySQLSet{}, fmt.Errorf("MySQL GTID set %q: empty element", str)
		}
	}
	set, err := gomysql.ParseMysqlGTIDSet(clean)
	if err != nil {
		return MySQLSet{}, fmt.Errorf("MySQL GTID set %q: %v", str, err)
	}
	return MySQLSet{s: *(set.(*gomysql.MysqlGTIDSet))}, nil
}

// MustParseMySQLSet is ParseMySQLSet for constants in tests and examples.
func MustParseMySQLSet(str string) MySQLSet {
	s, err := ParseMySQLSet(str)
	if err != nil {
		panic(err)
	}
	return s
}

// String renders the set in MySQL's canonical form.
func (m MySQLSet) String() string {
	if m.s == nil {
		return ""
	}
	return m.s.String()
}

// IsEmpty reports whether the set holds no transaction.
func (m MySQLSet) IsEmpty() bool { return m.Count() == 0 }

// Count returns how many transactions the set holds.
func (m MySQLSet) Count() int64 {
	var n int64
	for _, tags := range m.s {
		for _, iv := range tags {
			for _, i := range iv {
				n += i.Stop - i.Start
			}
		}
	}
	return n
}

// Contains reports whether every transaction of o is in m.
func (m MySQLSet) Contains(o MySQLSet) bool { return o.Subtract(m).IsEmpty() }

// Subtract returns the transactions in m that are not in o
// (GTID_SUBTRACT(m, o)): on a replica against its primary, the errant set.
func (m MySQLSet) Subtract(o MySQLSet) MySQLSet {
	out := gomysql.NewMysqlGTIDSet()
	for u, tags := range m.s {
		for tag, iv := range tags {
			var other gomysql.IntervalSlice
			if ot, ok := o.s[u]; ok {
				other = ot[tag]
			}
			rest := subtractIntervals(iv, other)
			if len(rest) == 0 {
				continue
			}
			if out[u] == nil {
				out[u] = map[gomysql.Tag]gomysql.IntervalSlice{}
			}
			out[u][tag] = rest
		}
	}
	return MySQLSet{s: out}
}

// Union returns the transactions in either set.
func (m MySQLSet) Union(o MySQLSet) MySQLSet {
	out := gomysql.NewMysqlGTIDSet()
	for _, src := range []gomysql.MysqlGTIDSet{m.s, o.s} {
		for u, tags := range src {
			if out[u] == nil {
				out[u] = map[gomysql.Tag]gomysql.IntervalSlice{}
			}
			for tag, iv := range tags {
				merged := append(append(gomysql.IntervalSlice{}, out[u][tag]...), iv...)
				out[u][tag] = merged.Normalize()
			}
		}
	}
	return MySQLSet{s: out}
}

// UUIDs lists the source uuids present in the set.
func (m MySQLSet) UUIDs() []uuid.UUID {
	out := make([]uuid.UUID, 0, len(m.s))
	for u := range m.s {
		out = append(out, u)
	}
	return out
}

// Compare relates two sets by inclusion.
func (m MySQLSet) Compare(o MySQLSet) Relation {
	return relationOf(!m.Subtract(o).IsEmpty(), !o.Subtract(m).IsEmpty())
}

// subtractIntervals removes b from a; both are normalized half-open
// [Start, Stop) slices in ascending order.
func subtractIntervals(a, b gomysql.IntervalSlice) gomysql.IntervalSlice {
	var out gomysql.IntervalSlice
	j := 0
	for _, cur := range a {
		start, stop := cur.Start, cur.Stop
		for j < len(b) && b[j].Stop <= start {
			j++
		}
		k := j
		for k < len(b) && b[k].Start < stop {
			if b[k].Start > start {
				out = append(out, gomysql.Interval{Start: start, Stop: b[k].Start})
			}
			if b[k].Stop > start {
				start = b[k].Stop
			}
			if start >= stop {
				break
			}
			k++
		}
		if start < stop {
			out = append(out, gomysql.Interval{Start: start, Stop: stop})
		}
	}
	return out
}

// OnlyUUID returns the part of the set written by one source uuid (all of its
// tags); the empty set when the uuid is absent or malformed.
func (m MySQLSet) OnlyUUID(id string) MySQLSet {
	out := gomysql.MysqlGTIDSet{}
	u, err := uuid.Parse(id)
	if err != nil || m.s == nil {
		return MySQLSet{s: out}
	}
	if tags, ok := m.s[u]; ok {
		out[u] = map[gomysql.Tag]gomysql.IntervalSlice{}
		for tag, iv := range tags {
			out[u][tag] = append(gomysql.IntervalSlice{}, iv...)
		}
	}
	return MySQLSet{s: out}
}
