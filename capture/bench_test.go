package capture

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/myha/myha/binlog"
)

// BenchmarkCaptureThroughput: a capture streams 20,000 small transactions
// (GTID + XID events: 40,000 events) from our own capture server on
// loopback (a FAKE primary: no MariaDB, so the figure is the capture's
// own cost: decoding, appending, fsync every 100 ms) into a fresh store.
// Goal (issue 12): at least 20,000 events/s on one core.
func BenchmarkCaptureThroughput(b *testing.B) {
	const txns = 20000
	src, err := OpenStore(b.TempDir(), StoreOptions{SegmentBytes: 1 << 30}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := src.Begin(fakeFDE(1), binlog.MustParseMariaDBPos("0-1-0")); err != nil {
		b.Fatal(err)
	}
	for i := uint64(1); i <= txns; i++ {
		g := binlog.GTID{Domain: 0, ServerID: 1, Seq: i}
		if err := src.Append(fakeTxn(g), g); err != nil {
			b.Fatal(err)
		}
	}
	if err := src.Sync(); err != nil {
		b.Fatal(err)
	}
	srv := NewServer(src, ServerOptions{ServerID: 1, User: "repl", Password: "pw",
		AllowDump: func(string) bool { return true }, AllowQuery: func(string) bool { return true }}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()
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
		c.SetPrimary(ln.Addr().String())
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
