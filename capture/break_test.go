package capture

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/myha/myha/binlog"
)

// A capture whose established stream breaks says so at once (OnBreak), so
// its monitor re-probes the primary instead of waiting for its next tick;
// moving to another primary is no break. The source here is our own
// capture server serving a store (a FAKE primary: no MariaDB), which
// speaks the same dump protocol.
func TestCaptureReportsABrokenStream(t *testing.T) {
	addr, stopSource := fakeSource(t, 3)

	broke := make(chan string, 8)
	c, err := New(Config{Cluster: "c", Dir: t.TempDir(),
		Dump: DumpOptions{User: "repl", Password: "pw", ServerID: 99, Heartbeat: time.Second, ConnectTimeout: time.Second},
		StartPosition: func(context.Context, string) (binlog.MariaDBPos, error) {
			return binlog.MustParseMariaDBPos("0-1-0"), nil
		},
		OnBreak: func(addr string, err error) { broke <- addr }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); c.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	c.SetPrimary(addr)
	deadline := time.Now().Add(10 * time.Second)
	for c.Store().Position().String() != "0-1-3" {
		if time.Now().After(deadline) {
			t.Fatalf("the capture did not stream from the source: at %q, status %+v", c.Store().Position(), c.Status())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
	select {
	case a := <-broke:
		t.Fatalf("OnBreak(%s) while the stream is healthy", a)
	default:
	}
	stopSource() // the source goes away: its connections are closed
	select {
	case a := <-broke:
		if a != addr {
			t.Fatalf("OnBreak named %s, want %s", a, addr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream broke and OnBreak was not called")
	}
}

// fakeSource serves a store of txns small transactions (GTID + XID) from
// our own capture server on loopback: a FAKE primary for the capture's
// unit tests and benchmarks. It stops with the test, or when stop is
// called (which waits for its server to end; safe to call twice).
func fakeSource(tb testing.TB, txns uint64) (addr string, stop func()) {
	tb.Helper()
	src, err := OpenStore(tb.TempDir(), StoreOptions{SegmentBytes: 1 << 30}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := src.Begin(fakeFDE(1), binlog.MustParseMariaDBPos("0-1-0")); err != nil {
		tb.Fatal(err)
	}
	for i := uint64(1); i <= txns; i++ {
		g := binlog.GTID{Domain: 0, ServerID: 1, Seq: i}
		if err := src.Append(fakeTxn(g), g); err != nil {
			tb.Fatal(err)
		}
	}
	if err := src.Sync(); err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(src, ServerOptions{ServerID: 1, User: "repl", Password: "pw",
		AllowDump: func(string) bool { return true }, AllowQuery: func(string) bool { return true }}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ctx, ln) }()
	stop = func() { cancel(); <-served }
	tb.Cleanup(stop)
	return ln.Addr().String(), stop
}
