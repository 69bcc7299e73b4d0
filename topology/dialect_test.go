package topology

import (
	"strings"
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

func TestGlobalPrivileges(t *testing.T) {
	for in, want := range map[string]string{
		"GRANT ALL PRIVILEGES ON *.* TO `myha`@`%` IDENTIFIED BY PASSWORD '*5A33' WITH GRANT OPTION": "ALL PRIVILEGES",
		"GRANT SELECT, PROCESS, BINLOG MONITOR ON *.* TO `lim`@`%` IDENTIFIED BY PASSWORD '*B690'":   "SELECT|PROCESS|BINLOG MONITOR",
		"GRANT SELECT ON `lab`.* TO `x`@`%`":                                     "",
		"GRANT REPLICATION_SLAVE_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `m`@`%`": "REPLICATION_SLAVE_ADMIN|SYSTEM_VARIABLES_ADMIN",
	} {
		got := strings.Join(GlobalPrivileges(in), "|")
		if got != want {
			t.Errorf("GlobalPrivileges(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "*5A33") || strings.Contains(got, "PASSWORD") {
			t.Fatal("password hash kept")
		}
	}
}
