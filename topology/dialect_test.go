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

// Every demote path sets gtid_slave_pos itself on MariaDB before 10.10
// (no MASTER_DEMOTE_TO_SLAVE there), and uses the option from 10.10 on.
func TestRepointDemoteByVersion(t *testing.T) {
	src := Source{Host: "db2", Port: 3306, User: "repl", Password: "pw", Demote: true}
	old := Dialect{Flavor: "mariadb", Major: 10, Minor: 6, Patch: 1}.Repoint("", src)
	if len(old) != 4 || old[1] != "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos" || strings.Contains(old[2], "DEMOTE") {
		t.Fatalf("10.6 demote: %q", old)
	}
	cur := Dialect{Flavor: "mariadb", Major: 10, Minor: 11, Patch: 19}.Repoint("", src)
	if len(cur) != 3 || !strings.Contains(cur[1], "MASTER_DEMOTE_TO_SLAVE=1") {
		t.Fatalf("10.11 demote: %q", cur)
	}
	if plain := (Dialect{Flavor: "mariadb", Major: 10, Minor: 6}).Repoint("", Source{Host: "db2", Port: 3306}); len(plain) != 3 {
		t.Fatalf("a plain repoint needs no slave_pos: %q", plain)
	}
}
