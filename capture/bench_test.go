package capture

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/test/lab"
)

// BenchmarkCaptureThroughput: a capture streams 20,000 small transactions
// (GTID + XID events: 40,000 events) from our own capture server on
// loopback (a FAKE primary: no MariaDB, so the figure is the capture's
// own cost: decoding, appending, fsync every 100 ms) into a fresh store.
// Goal (issue 12): at least 20,000 events/s on one core.
func BenchmarkCaptureThroughput(b *testing.B) {
	const txns = 20000
	addr, _ := fakeSource(b, txns)
	want := fmt.Sprintf("0-1-%d", txns)
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		c, err := New(Config{Cluster: "c", Dir: b.TempDir(),
			Dump: DumpOptions{User: "repl", Password: "pw", ServerID: 99, Heartbeat: time.Second, ConnectTimeout: time.Second},
			StartPosition: func(context.Context, string) (binlog.MariaDBPos, error) {
				return binlog.MustParseMariaDBPos("0-1-0"), nil
			}}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		start := time.Now()
		go func() { defer close(ran); c.Run(ctx) }()
		c.SetPrimary(addr)
		deadline := time.Now().Add(time.Minute)
		for c.Store().Position().String() != want {
			if time.Now().After(deadline) {
				b.Fatalf("captured only up to %s", c.Store().Position())
			}
			time.Sleep(time.Millisecond) // polling the position
		}
		total += time.Since(start)
		cancel()
		<-ran
	}
	b.ReportMetric(float64(2*txns*b.N)/total.Seconds(), "events/s")
}

// BenchmarkCaptureAckLatency: commit latency of single-row autocommit
// inserts on a real MariaDB 10.11 primary (test/lab, loopback), first
// asynchronous, then with semi-sync (AFTER_SYNC) and this capture as its
// only semi-sync replica, which acknowledges after fsync. Reports p50 and
// p99 of both and the p50 the capture's ACK adds. Goal (issue 12): at
// most 1 ms added at p50 on the lab.
func BenchmarkCaptureAckLatency(b *testing.B) {
	oneRun(b)
	l := lab.New(b, lab.Options{Servers: 1, Loopback: true})
	ctx := context.Background()
	p := l.Servers[0]
	if err := p.Exec(ctx, "CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(20))", "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC",
		"SET GLOBAL rpl_semi_sync_master_timeout=30000"); err != nil {
		b.Fatal(err)
	}
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = lab.AppUser, lab.AppPass, "unix", p.Socket
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxOpenConns(1)
	const n = 1000
	id := 0
	commits := func() []time.Duration {
		ds := make([]time.Duration, 0, n)
		for range n {
			id++
			t0 := time.Now()
			if _, err := db.ExecContext(ctx, "INSERT INTO lab.t VALUES (?, 'x')", id); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		return ds
	}
	commits() // warm up
	async := commits()
	c, err := New(Config{Cluster: "lab", Dir: b.TempDir(), StartPosition: func(ctx context.Context, _ string) (binlog.MariaDBPos, error) {
		s, err := p.QueryString(ctx, "SELECT @@gtid_binlog_pos")
		if err != nil {
			return binlog.MariaDBPos{}, err
		}
		return binlog.ParseMariaDBPos(s)
	}, Dump: DumpOptions{User: lab.ReplUser, Password: lab.ReplPass, ServerID: 9001, SemiSync: true, Heartbeat: 500 * time.Millisecond}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(cctx) }()
	defer func() { cancel(); <-done }()
	c.SetPrimary(p.Addr())
	if err := p.Exec(ctx, "SET GLOBAL rpl_semi_sync_master_enabled=1"); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl, _ := p.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Rpl_semi_sync_master_clients'")
		st, _ := p.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Rpl_semi_sync_master_status'")
		if cl == "1" && st == "ON" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("semi-sync never went on with the capture as its client")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	no0, _ := p.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Rpl_semi_sync_master_no_tx'")
	semi := commits()
	no1, _ := p.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Rpl_semi_sync_master_no_tx'")
	if no0 != no1 {
		b.Fatalf("commits went without an ACK during the measurement (no_tx %s → %s)", no0, no1)
	}
	q := func(ds []time.Duration, p float64) float64 { return ds[int(p*float64(len(ds)-1))].Seconds() * 1000 }
	b.ReportMetric(q(async, 0.5), "ms_async_p50")
	b.ReportMetric(q(async, 0.99), "ms_async_p99")
	b.ReportMetric(q(semi, 0.5), "ms_capture_ack_p50")
	b.ReportMetric(q(semi, 0.99), "ms_capture_ack_p99")
	b.ReportMetric(q(semi, 0.5)-q(async, 0.5), "ms_added_p50")
}

// oneRun refuses b.N > 1: each run builds a lab.
func oneRun(b *testing.B) {
	b.Helper()
	if b.N > 1 {
		b.Fatalf("run with -benchtime=1x: each run builds a lab (b.N=%d)", b.N)
	}
}
