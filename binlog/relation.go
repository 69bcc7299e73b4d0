package binlog

// Relation is how one position relates to another.
type Relation int

// The relations two positions can have.
const (
	Equal        Relation = iota // same transactions
	Ahead                        // has everything the other has, and more
	Behind                       // the other has everything this has, and more
	Incomparable                 // each has transactions the other lacks
	Diverged                     // provably different histories (same GTID slot, different origin)
)

var relationNames = [...]string{"equal", "ahead", "behind", "incomparable", "diverged"}

// String names the relation for reports.
func (r Relation) String() string {
	if r < 0 || int(r) >= len(relationNames) {
		return "unknown"
	}
	return relationNames[r]
}

func relationOf(ahead, behind bool) Relation {
	switch {
	case ahead && behind:
		return Incomparable
	case ahead:
		return Ahead
	case behind:
		return Behind
	}
	return Equal
}
