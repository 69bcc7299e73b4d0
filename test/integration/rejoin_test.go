package integration

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// An old primary that comes back after a failover becomes a replica of the
// new primary with myha rejoin, and gets the writes made since; one
// writable server throughout.
func TestRejoinOldPrimaryAfterFailover(t *testing.T) {
	ctx := context.Background()
	l, cfg := labWithTable(t, lab.Options{Servers: 3}, "")
	db1, db2 := l.Server("db1"), l.Server("db2")
	must(t, db1.Kill())
	if r := myha(t, "failover", "--cluster", "lab", "--yes", "--new-primary", db2.Addr(), "--config", cfg); r.code != 0 {
		t.Fatalf("failover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	must(t, db2.Exec(ctx, "INSERT INTO lab.w (id, at) VALUES (1001, NOW(6))"))
	must(t, db1.Start(ctx))
	if r := myha(t, "rejoin", "--server", db1.Addr(), "--dry-run", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "as a replica of "+db2.Addr()) {
		t.Fatalf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := myha(t, "rejoin", "--server", db1.Addr(), "--yes", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, db1.Addr()+" replicates from "+db2.Addr()) {
		t.Fatalf("rejoin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("rejoin timeline:\n%s", r.stdout)
	if host, _ := db1.SlaveStatus(ctx, "Master_Host"); host != db2.IP {
		t.Fatalf("db1 replicates from %q, want %s", host, db2.IP)
	}
	waitFor(t, "db1 has the row written on the new primary", 10*time.Second, func() bool {
		n, err := db1.QueryString(ctx, "SELECT COUNT(*) FROM lab.w WHERE id = 1001")
		return err == nil && n == "1"
	})
	if w := writables(t, l); len(w) != 1 || w[0] != "db2" {
		t.Fatalf("writable servers %v, want only db2", w)
	}
	// Again: nothing to do.
	if r := myha(t, "rejoin", "--server", db1.Addr(), "--yes", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "nothing to do") {
		t.Fatalf("second rejoin: exit %d\n%s", r.code, r.stdout)
	}
}

// An old primary holding a write no replica received is refused, with the
// exact GTID and the remedy, and left as it was.
func TestRejoinRefusesErrantOldPrimary(t *testing.T) {
	ctx := context.Background()
	l, cfg := labWithTable(t, lab.Options{Servers: 3}, "")
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, db2.Exec(ctx, "STOP SLAVE IO_THREAD"))
	must(t, db3.Exec(ctx, "STOP SLAVE IO_THREAD"))
	must(t, db1.Exec(ctx, "INSERT INTO lab.w (id, at) VALUES (2001, NOW(6))"))
	lost, err := db1.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	must(t, err)
	must(t, db1.Kill())
	if r := myha(t, "failover", "--cluster", "lab", "--yes", "--new-primary", db2.Addr(), "--config", cfg); r.code != 0 {
		t.Fatalf("failover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	must(t, db1.Start(ctx))
	r := myha(t, "rejoin", "--server", db1.Addr(), "--yes", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stdout, "never had: "+lost) || !regexp.MustCompile(`rebuild .* from a backup`).MatchString(r.stdout) {
		t.Fatalf("errant old primary not refused with its GTID %s: exit %d\n%s%s", lost, r.code, r.stdout, r.stderr)
	}
	if host, _ := db1.SlaveStatus(ctx, "Master_Host"); host != "" {
		t.Fatalf("a refused rejoin repointed db1 (Master_Host %q)", host)
	}
	if w := writables(t, l); len(w) != 1 || w[0] != "db2" {
		t.Fatalf("writable servers %v, want only db2", w)
	}
}
