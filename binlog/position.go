package binlog

import "fmt"

// Flavor is the server family, which decides the GTID form.
type Flavor string

// The flavors myha manages.
const (
	MariaDB Flavor = "mariadb"
	MySQL   Flavor = "mysql"
)

// Position is a flavor-neutral GTID position so the planner can rank servers
// without caring which family they are. Exactly one of the two forms is set,
// according to Flavor.
type Position struct {
	Flavor  Flavor
	MariaDB MariaDBPos
	MySQL   MySQLSet
}

// ParsePosition parses a GTID position of the given flavor.
func ParsePosition(f Flavor, s string) (Position, error) {
	switch f {
	case MariaDB:
		p, err := ParseMariaDBPos(s)
		return Position{Flavor: f, MariaDB: p}, err
	case MySQL:
		p, err := ParseMySQLSet(s)
		return Position{Flavor: f, MySQL: p}, err
	}
	return Position{}, fmt.Errorf("unknown server flavor %q", f)
}

// String renders the position in its server's format.
func (p Position) String() string {
	if p.Flavor == MySQL {
		return p.MySQL.String()
	}
	return p.MariaDB.String()
}

// IsEmpty reports whether the position holds nothing.
func (p Position) IsEmpty() bool {
	if p.Flavor == MySQL {
		return p.MySQL.IsEmpty()
	}
	return p.MariaDB.IsEmpty()
}

// Compare relates p to q. Positions of different flavors are Incomparable.
func (p Position) Compare(q Position) Relation {
	if p.Flavor != q.Flavor {
		return Incomparable
	}
	if p.Flavor == MySQL {
		return p.MySQL.Compare(q.MySQL)
	}
	return p.MariaDB.Compare(q.MariaDB)
}

// Merge returns a position holding both p and q (per-domain maximum for
// MariaDB, union for MySQL). Flavors must match; otherwise p is returned.
func (p Position) Merge(q Position) Position {
	if p.Flavor != q.Flavor {
		return p
	}
	if p.Flavor == MySQL {
		return Position{Flavor: MySQL, MySQL: p.MySQL.Union(q.MySQL)}
	}
	return Position{Flavor: MariaDB, MariaDB: p.MariaDB.Merge(q.MariaDB)}
}

// Missing estimates how many transactions q has that p lacks: the sum of
// positive per-domain gaps for MariaDB, the size of q−p for MySQL. It is the
// "transactions that would be lost" figure in plans.
func (p Position) Missing(q Position) int64 {
	if p.Flavor != q.Flavor {
		return 0
	}
	if p.Flavor == MySQL {
		return q.MySQL.Subtract(p.MySQL).Count()
	}
	var n int64
	for _, r := range q.MariaDB.CompareDomains(p.MariaDB) {
		if r.Delta > 0 {
			n += r.Delta
		}
	}
	return n
}
