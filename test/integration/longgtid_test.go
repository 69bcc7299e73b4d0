package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/test/lab"
)

// A server with many GTID domains (or many server_ids per domain in its
// gtid_binlog_state) has positions longer than 4,096 bytes. MariaDB 10.11
// cuts VARIABLE_VALUE at 4,096 in information_schema.GLOBAL_VARIABLES and
// in SHOW GLOBAL VARIABLES alike; only @@GLOBAL gives the whole value. The
// probe must report the server's real position (a cut one either fails to
// parse or, cut at a comma, silently drops domains: a stale position shown
// as fresh, and a wrong one for choosing a candidate).
func TestProbeReadsLongGTIDPositionsWhole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := lab.New(t, lab.Options{Servers: 2})
	db1 := l.Server("db1")
	stmts := []string{"CREATE TABLE lab.domains (d INT PRIMARY KEY) ENGINE=InnoDB"}
	for i := 1; i <= 400; i++ {
		stmts = append(stmts, fmt.Sprintf("SET SESSION gtid_domain_id = %d", i*1000), fmt.Sprintf("INSERT INTO lab.domains VALUES (%d)", i))
	}
	if err := db1.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
	raw, err := db1.QueryString(ctx, "SELECT @@GLOBAL.gtid_current_pos")
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) <= 4096 {
		t.Fatalf("setup: gtid_current_pos is %d bytes, want more than 4096", len(raw))
	}
	want, err := binlog.ParseMariaDBPos(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	tp := topology(t, writeConfig(t, l))
	p := tp.server(t, db1.Addr())
	if p.GTIDPosition != want.String() || len(p.Errors) != 0 {
		t.Fatalf("db1's position as the probe reports it (%d bytes, errors %.300q), want its whole gtid_current_pos (%d bytes, %d domains)",
			len(p.GTIDPosition), p.Errors, len(want.String()), len(want.GTIDs()))
	}
	if r := tp.server(t, l.Server("db2").Addr()); r.GTIDPosition != want.String() {
		t.Fatalf("db2 (caught up) reported at %d bytes, want %d", len(r.GTIDPosition), len(want.String()))
	}
}
