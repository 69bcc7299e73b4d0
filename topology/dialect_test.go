package topology

import (
	"testing"

	"github.com/myha/myha/binlog"
)

func TestDialectFor(t *testing.T) {
	for _, tc := range []struct {
		version, comment string
		flavor           binlog.Flavor
		replicaStatus    string
		binlogStatus     string
		readOnly         string
	}{
		{"10.11.19-MariaDB-0+deb12u1-log", "Debian 12", binlog.MariaDB, "SHOW ALL SLAVES STATUS", "SHOW MASTER STATUS", "read_only"},
		{"8.4.3", "MySQL Community Server - GPL", binlog.MySQL, "SHOW REPLICA STATUS", "SHOW BINARY LOG STATUS", "super_read_only"},
		{"8.0.21", "MySQL Community Server - GPL", binlog.MySQL, "SHOW SLAVE STATUS", "SHOW MASTER STATUS", "super_read_only"},
		{"5.5.5-10.6.1-MariaDB", "", binlog.MariaDB, "SHOW ALL SLAVES STATUS", "SHOW MASTER STATUS", "read_only"},
	} {
		d, err := DialectFor(tc.version, tc.comment)
		if err != nil {
			t.Fatal(err)
		}
		if d.Flavor != tc.flavor || d.ReplicaStatusQuery() != tc.replicaStatus || d.BinlogStatusQuery() != tc.binlogStatus || d.ReadOnlyVariable() != tc.readOnly {
			t.Errorf("%s: %+v %s %s %s", tc.version, d, d.ReplicaStatusQuery(), d.BinlogStatusQuery(), d.ReadOnlyVariable())
		}
	}
	if _, err := DialectFor("garbage", ""); err == nil {
		t.Fatal("garbage version accepted")
	}
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                `'plain'`,
		"it's":                 `'it''s'`,
		`back\slash`:           `'back\\slash'`,
		"x'; DROP TABLE t; --": `'x''; DROP TABLE t; --'`,
		"nul\x00":              `'nul\0'`,
	} {
		if got := QuoteLiteral(in); got != want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
	if got := QuoteIdent("a`b"); got != "`a``b`" {
		t.Errorf("QuoteIdent = %s", got)
	}
}
