package capture

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/certs"
	"github.com/myha/myha/test/lab"
	"github.com/myha/myha/topology"
)

// Real MariaDB 10.11 with TLS (test/lab TLS: a lab CA, server certificates
// naming each server's IP) and a replication account that REQUIRE SSL:
// the capture streams and acknowledges over TLS verified as myha's other
// connections are, refuses a primary its CA does not trust, and serves a
// replay only over TLS, which the replica verifies with the cluster's
// MASTER_SSL settings.
func TestCaptureOverTLS(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 2, Loopback: true, TLS: true})
	ctx := context.Background()
	p, r := l.Servers[0], l.Servers[1]
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := p.Exec(ctx, "ALTER USER '"+lab.ReplUser+"'@'%' REQUIRE SSL", "CREATE TABLE lab.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	verifyFull := topology.TLSSpec{Mode: topology.TLSVerifyFull, CAFile: l.CAFile()}

	// The account requires SSL: a plain-text dump is refused by the
	// server, so a capture that streams below does so over TLS.
	pos0, err := startPos(l)(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	d, err := dial(dctx, DumpOptions{Addr: p.Addr(), User: lab.ReplUser, Password: lab.ReplPass, ServerID: 9002}, pos0)
	dcancel()
	if err == nil {
		d.Close()
		t.Fatal("a plain-text dump with an account that REQUIRE SSL was accepted")
	}
	t.Logf("plain text, as expected: %v", err)

	// Another CA: refused in the handshake, with an error naming the
	// primary and why, and the primary never sees a dump.
	otherCA := filepath.Join(t.TempDir(), "other")
	if err := certs.Init(otherCA); err != nil {
		t.Fatal(err)
	}
	wrong := topology.TLSSpec{Mode: topology.TLSVerifyCA, CAFile: filepath.Join(otherCA, certs.CAFile)}
	cw, err := New(Config{Cluster: "lab", Dir: t.TempDir(), StartPosition: startPos(l),
		Dump: DumpOptions{User: lab.ReplUser, Password: lab.ReplPass, ServerID: 9003, SemiSync: true, Heartbeat: 500 * time.Millisecond,
			TLS: ClientTLS{Config: wrong.ClientConfig, Guard: topology.GuardLogin}}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() { defer close(wdone); cw.Run(wctx) }()
	cw.SetPrimary(p.Addr())
	waitFor(t, "the capture with the wrong CA to report its error", 10*time.Second, func() bool { return cw.Status().LastError != "" })
	wcancel()
	<-wdone
	msg := cw.Status().LastError
	for _, want := range []string{p.Addr(), "not trusted", "x509: certificate signed by unknown authority", "before sending the user name or password"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("wrong-CA error %q does not say %q", msg, want)
		}
	}
	if cw.Status().Connected || cw.Status().Transactions != 0 {
		t.Fatalf("the capture with the wrong CA streamed: %+v", cw.Status())
	}

	// The cluster's verify-full: the capture streams and is the primary's
	// one semi-sync client, every commit acknowledged.
	if err := p.Exec(ctx, "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC", "SET GLOBAL rpl_semi_sync_master_timeout=30000", "SET GLOBAL rpl_semi_sync_master_enabled=1"); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Cluster: "lab", Dir: t.TempDir(), StartPosition: startPos(l),
		Dump: DumpOptions{User: lab.ReplUser, Password: lab.ReplPass, ServerID: 9001, SemiSync: true, Heartbeat: 500 * time.Millisecond,
			TLS: ClientTLS{Config: verifyFull.ClientConfig, Guard: topology.GuardLogin}}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan struct{})
	go func() { defer close(cdone); c.Run(cctx) }()
	defer func() { ccancel(); <-cdone }()
	c.SetPrimary(p.Addr())
	waitFor(t, "semi-sync on with the TLS capture as its one client", 10*time.Second, func() bool {
		return status(t, p, "Rpl_semi_sync_master_clients") == "1" && status(t, p, "Rpl_semi_sync_master_status") == "ON"
	})
	insert := func(from, to int) {
		for i := from; i <= to; i++ {
			if err := p.Exec(ctx, fmt.Sprintf("INSERT INTO lab.t VALUES (%d)", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(1, 5)
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Exec(ctx, "STOP SLAVE IO_THREAD"); err != nil { // r misses what follows
		t.Fatal(err)
	}
	yes0 := atoi(status(t, p, "Rpl_semi_sync_master_yes_tx"))
	insert(6, 30)
	if no := status(t, p, "Rpl_semi_sync_master_no_tx"); no != "0" {
		t.Fatalf("%s commits went without a semi-sync ACK from the TLS capture", no)
	}
	if yes := atoi(status(t, p, "Rpl_semi_sync_master_yes_tx")); yes-yes0 != 25 {
		t.Fatalf("%d commits acknowledged, want 25", yes-yes0)
	}
	want, _ := p.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if got := c.Status().Position; got != want {
		t.Fatalf("captured %s right after the acknowledged commits, primary at %s", got, want)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}

	// The capture server with a certificate from the cluster's CA naming
	// its address, TLS required.
	if err := certs.Issue(l.TLSDir(), "capture1", []net.IP{net.ParseIP("127.0.0.1")}, nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(c.Store(), ServerOptions{ServerID: 9001, User: lab.ReplUser, Password: lab.ReplPass,
		AllowDump: func(ip string) bool { return ip == "127.0.0.1" }, AllowQuery: func(string) bool { return true },
		TLS:        ServerTLS(filepath.Join(l.TLSDir(), "capture1.crt"), filepath.Join(l.TLSDir(), "capture1.key")),
		RequireTLS: true}, logger)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go srv.Serve(sctx, ln)
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port

	if _, err := QueryPosition(ctx, addr, lab.ReplUser, lab.ReplPass, ClientTLS{}, 2*time.Second); err == nil || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("a plain-text position query: %v, want a refusal saying TLS is required", err)
	}
	if pos, err := QueryPosition(ctx, addr, lab.ReplUser, lab.ReplPass, ClientTLS{Config: verifyFull.ClientConfig}, 2*time.Second); err != nil || pos.String() != want {
		t.Fatalf("QueryPosition over verify-full TLS = %v, %v; want %s", pos, err, want)
	}

	// A replica in plain text gets nothing.
	if err := r.Exec(ctx, "STOP SLAVE",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_SSL=0", port, lab.ReplUser, lab.ReplPass),
		"START SLAVE"); err != nil {
		t.Fatal(err)
	}
	var ioErr string
	waitFor(t, "the plain-text replica's IO error", 10*time.Second, func() bool {
		ioErr, _ = r.SlaveStatus(ctx, "Last_IO_Error")
		return ioErr != ""
	})
	if !strings.Contains(ioErr, "requires TLS") {
		t.Fatalf("plain-text replica: IO error %q, want the capture's refusal saying TLS is required", ioErr)
	}
	if n, _ := r.QueryString(ctx, "SELECT COUNT(*) FROM lab.t"); n != "5" {
		t.Fatalf("the plain-text replica has %s rows, want the 5 it had: it received events", n)
	}

	// The replay's own CHANGE MASTER (the failover's, verify-full): the
	// replica verifies the capture's certificate and name and catches up.
	dialect, err := topology.DialectFor("10.11.0-MariaDB", "")
	if err != nil {
		t.Fatal(err)
	}
	change := dialect.ChangeSource("", topology.Source{Host: "127.0.0.1", Port: port, User: lab.ReplUser, Password: lab.ReplPass, TLS: verifyFull})
	if err := r.Exec(ctx, "STOP SLAVE", change, "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := r.QueryString(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", want))
	if err != nil || got != "0" {
		io, _ := r.SlaveStatus(ctx, "Last_IO_Error")
		t.Fatalf("replica did not reach %s from the TLS capture (wait=%s, %v): IO %q", want, got, err, io)
	}
	t.Logf("caught up over TLS in %s", time.Since(start).Round(time.Millisecond))
	for col, v := range map[string]string{"Master_SSL_Allowed": "Yes", "Master_SSL_Verify_Server_Cert": "Yes", "Master_SSL_CA_File": l.CAFile()} {
		if got, _ := r.SlaveStatus(ctx, col); got != v {
			t.Fatalf("%s = %q, want %q", col, got, v)
		}
	}
	if err := r.Exec(ctx, "STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	n, _ := r.QueryString(ctx, "SELECT COUNT(*) FROM lab.t")
	slave, _ := r.QueryString(ctx, "SELECT @@gtid_slave_pos")
	if n != "30" || slave != want {
		t.Fatalf("replica has %s rows and gtid_slave_pos %s; want 30 and %s", n, slave, want)
	}
}
