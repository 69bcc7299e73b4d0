package integration

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/test/lab"
	top "github.com/myha/myha/topology"
)

// labDialer probes lab servers the way the monitor does.
func labDialer() top.SQLDialer {
	return top.SQLDialer{Credentials: top.Credentials{User: lab.AdminUser, Password: lab.AdminPass},
		ConnectTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second}
}

// rootSocketDB is a root pool on the server's socket.
func rootSocketDB(t *testing.T, s *lab.Server) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", s.Socket
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(2)
	return db
}

// holdsAll says whether got has every domain of before at least as far.
func holdsAll(got, before binlog.MariaDBPos) string {
	for _, g := range before.GTIDs() {
		h, ok := got.Domain(g.Domain)
		if !ok {
			return fmt.Sprintf("domain %d missing (had %s)", g.Domain, g)
		}
		if h.Seq < g.Seq {
			return fmt.Sprintf("domain %d at %s, had %s", g.Domain, h, g)
		}
	}
	return ""
}

// A replica's replication row (SHOW ALL SLAVES STATUS: Gtid_IO_Pos) and a
// gtid_slave_pos of hundreds of kilobytes (tens of thousands of domains)
// are read whole too. Found by review: reading the @@GLOBAL values inside
// the probe's UNION put them in a temporary table column of type BLOB, and
// MariaDB 10.11 handed back a value over 65,535 bytes cut to its length
// mod 65,536 (539,999 bytes read as 15,711), either unparsable or, cut at
// a comma, missing domains without a word; they are now read in a plain
// SELECT.
func TestProbeReadsHugeSlavePosAndIOPosWhole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := lab.New(t, lab.Options{Servers: 2})
	db1, db2 := l.Server("db1"), l.Server("db2")
	stmts := []string{"CREATE TABLE lab.domains (d INT PRIMARY KEY) ENGINE=InnoDB"}
	for i := 1; i <= 400; i++ {
		stmts = append(stmts, fmt.Sprintf("SET SESSION gtid_domain_id = %d", i*1000), fmt.Sprintf("INSERT INTO lab.domains VALUES (%d)", i))
	}
	if err := db1.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	raw, err := db1.QueryString(ctx, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	want := binlog.MustParseMariaDBPos(raw)
	// The README's reason: SHOW and information_schema cut the value.
	rdb := rootSocketDB(t, db1)
	var name, shown string
	if err := rdb.QueryRowContext(ctx, "SHOW GLOBAL VARIABLES LIKE 'gtid_binlog_pos'").Scan(&name, &shown); err != nil {
		t.Fatal(err)
	}
	var isLen int
	if err := rdb.QueryRowContext(ctx, "SELECT LENGTH(VARIABLE_VALUE) FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'GTID_BINLOG_POS'").Scan(&isLen); err != nil {
		t.Fatal(err)
	}
	t.Logf("gtid_binlog_pos: %d bytes; SHOW gives %d, information_schema %d", len(raw), len(shown), isLen)
	if len(shown) != 4096 || isLen != 4096 {
		t.Errorf("SHOW gave %d and information_schema %d bytes of %d, want both cut at 4096", len(shown), isLen, len(raw))
	}
	st := top.Probe(ctx, labDialer(), top.ServerSpec{Address: db2.Addr()})
	if st.Error != "" || len(st.Replication) != 1 {
		t.Fatalf("db2: error %.300q, %d connections", st.Error, len(st.Replication))
	}
	if got := st.Replication[0].GTIDIOPos; got.String() != want.String() {
		t.Fatalf("db2's Gtid_IO_Pos read as %d bytes, want %d", len(got.String()), len(want.String()))
	}

	// Tens of thousands of domains in gtid_slave_pos (a replica of many sources).
	var parts []string
	for i := 1; i <= 30000; i++ {
		parts = append(parts, fmt.Sprintf("%d-77-%d", 1_000_000+i, 123456+i))
	}
	huge := strings.Join(parts, ",")
	if err := db2.Exec(ctx, "STOP ALL SLAVES", "SET GLOBAL gtid_slave_pos = '"+huge+"'"); err != nil {
		t.Fatal(err)
	}
	slave, err := db2.QueryString(ctx, "SELECT @@GLOBAL.gtid_slave_pos")
	if err != nil {
		t.Fatal(err)
	}
	wantSlave := binlog.MustParseMariaDBPos(slave)
	st = top.Probe(ctx, labDialer(), top.ServerSpec{Address: db2.Addr()})
	if st.Error != "" {
		t.Fatalf("db2 with a %d-byte gtid_slave_pos: probe error %.300q", len(slave), st.Error)
	}
	if st.GTIDSlavePos.String() != wantSlave.String() {
		t.Fatalf("db2's gtid_slave_pos read as %d bytes, want %d", len(st.GTIDSlavePos.String()), len(wantSlave.String()))
	}
	t.Logf("gtid_slave_pos %d bytes read whole", len(slave))
}
