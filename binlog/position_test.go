package binlog

import "testing"

func TestPositionMissing(t *testing.T) {
	p, _ := ParsePosition(MariaDB, "0-1-90,1-1-5")
	q, _ := ParsePosition(MariaDB, "0-1-100,1-1-3,2-1-4")
	if got := p.Missing(q); got != 14 {
		t.Fatalf("MariaDB missing = %d, want 14", got)
	}
	m1, _ := ParsePosition(MySQL, uA+":1-90")
	m2, _ := ParsePosition(MySQL, uA+":1-100,"+uB+":1-2")
	if got := m1.Missing(m2); got != 12 {
		t.Fatalf("MySQL missing = %d, want 12", got)
	}
	if m1.Compare(p) != Incomparable {
		t.Fatal("different flavors must not compare")
	}
	if _, err := ParsePosition("oracle", ""); err == nil {
		t.Fatal("unknown flavor accepted")
	}
}
