package capture

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// Real MariaDB 10.11: a replica that missed the primary's last
// transactions (IO thread stopped) gets them by replicating from the
// capture after the primary is killed, with gtid_slave_pos advanced by the
// server itself.
func TestReplicaCatchesUpFromCapture(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 2, Loopback: true})
	ctx := context.Background()
	p, r := l.Servers[0], l.Servers[1]
	if err := p.Exec(ctx, "CREATE TABLE lab.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC", "SET GLOBAL rpl_semi_sync_master_timeout=30000", "SET GLOBAL rpl_semi_sync_master_enabled=1"); err != nil {
		t.Fatal(err)
	}
	c, cancel, done := newTestCapture(t, l, t.TempDir())
	defer func() { cancel(); <-done }()
	waitFor(t, "the capture to acknowledge for the primary", 10*time.Second, func() bool {
		return status(t, p, "Rpl_semi_sync_master_clients") == "1" && status(t, p, "Rpl_semi_sync_master_status") == "ON"
	})
	// Two GTID domains: the replica receives the first rows of both, then
	// its IO thread stops, so it is behind in each domain by a different
	// amount. The capture must resume each domain after the replica's own
	// position (gtid_strict_mode stops the replica on any repeat).
	insert := func(from, to int) {
		for i := from; i <= to; i++ {
			if err := p.Exec(ctx, fmt.Sprintf("SET SESSION gtid_domain_id=%d", i%2), fmt.Sprintf("INSERT INTO lab.t VALUES (%d)", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(1, 21)
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
		t.Fatal(err)
	}
	insert(22, 100)
	if err := p.Exec(ctx, "CREATE TABLE lab.after (id INT PRIMARY KEY)"); err != nil { // a DDL (standalone GTID) too
		t.Fatal(err)
	}
	want, _ := p.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	waitFor(t, "the capture to hold "+want, 5*time.Second, func() bool { return c.Status().Position == want })
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(c.Store(), ServerOptions{ServerID: 9001, User: lab.ReplUser, Password: lab.ReplPass,
		AllowDump: func(ip string) bool { return ip == "127.0.0.1" }},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go srv.Serve(sctx, ln)
	port := ln.Addr().(*net.TCPAddr).Port

	pos, err := QueryPosition(ctx, ln.Addr().String(), lab.ReplUser, lab.ReplPass, ClientTLS{}, 2*time.Second)
	if err != nil || pos.String() != want {
		t.Fatalf("QueryPosition = %v, %v; want %s", pos, err, want)
	}
	if err := r.Exec(ctx, "STOP SLAVE",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos", port, lab.ReplUser, lab.ReplPass),
		"START SLAVE"); err != nil {
		t.Fatal(err)
	}
	got, err := r.QueryString(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", want))
	if err != nil || got != "0" {
		io, _ := r.SlaveStatus(ctx, "Last_IO_Error")
		sqle, _ := r.SlaveStatus(ctx, "Last_SQL_Error")
		t.Fatalf("replica did not reach %s from the capture (wait=%s, %v): IO %q SQL %q", want, got, err, io, sqle)
	}
	if err := r.Exec(ctx, "STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	n, _ := r.QueryString(ctx, "SELECT COUNT(*) FROM lab.t")
	slave, _ := r.QueryString(ctx, "SELECT @@gtid_slave_pos")
	if n != "100" || slave != want {
		t.Fatalf("replica has %s rows and gtid_slave_pos %s; want 100 rows and %s", n, slave, want)
	}
	if _, err := r.QueryString(ctx, "SELECT COUNT(*) FROM lab.after"); err != nil {
		t.Fatalf("the DDL captured last did not reach the replica: %v", err)
	}
}
