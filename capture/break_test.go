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
	src, err := OpenStore(t.TempDir(), StoreOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Begin(fakeFDE(1), binlog.MustParseMariaDBPos("0-1-0")); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 3; i++ {
		g := binlog.GTID{Domain: 0, ServerID: 1, Seq: i}
		if err := src.Append(fakeTxn(g), g); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Sync(); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(src, ServerOptions{ServerID: 1, User: "repl", Password: "pw",
		AllowDump: func(string) bool { return true }, AllowQuery: func(string) bool { return true }}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopSource := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(sctx, ln) }()
	defer func() { stopSource(); <-served }()

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
	c.SetPrimary(ln.Addr().String())
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
		if a != ln.Addr().String() {
			t.Fatalf("OnBreak named %s, want %s", a, ln.Addr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream broke and OnBreak was not called")
	}
}
