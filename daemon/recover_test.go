package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

// syncBuf is a log sink safe for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSuperviseRestartsAfterPanicAndLogs(t *testing.T) {
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var runs atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		supervise(ctx, log, "test loop", time.Millisecond, func(ctx context.Context) {
			if runs.Add(1) < 3 {
				var m map[string]int
				m["boom"]++ // a nil map write: a real panic
			}
			<-ctx.Done()
		}, "cluster", "c")
	}()
	eventually(t, "a third run", 5*time.Second, func() bool { return runs.Load() >= 3 })
	cancel()
	<-done
	if n := strings.Count(logs.String(), "recovered from a panic: test loop"); n != 2 {
		t.Fatalf("%d panic log lines, want 2:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "cluster=c") {
		t.Fatalf("the log line does not name the cluster:\n%s", logs.String())
	}
}

func TestHTTPHandlerPanicAnswers500(t *testing.T) {
	var logs syncBuf
	h := recoverHandler(slog.New(slog.NewTextHandler(&logs, nil)), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("bad input")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/clusters", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(logs.String(), "bad input") {
		t.Fatalf("code %d, log %q", rec.Code, logs.String())
	}
}

// panicDialer is a server whose driver blows up on every answer.
type panicDialer struct{}

func (panicDialer) Dial(context.Context, string) (topology.Querier, error) {
	panic("driver: index out of range")
}

type panicQuerier struct{}

func (panicQuerier) Query(context.Context, string, ...any) ([]topology.Row, error) { panic("rows[0]") }
func (panicQuerier) Exec(context.Context, string, ...any) error                    { panic("exec") }
func (panicQuerier) Close() error                                                  { return errors.New("closed") }

type panicOnQueryDialer struct{}

func (panicOnQueryDialer) Dial(context.Context, string) (topology.Querier, error) {
	return panicQuerier{}, nil
}

// One cluster whose servers make the driver panic must not stop the
// monitor or the monitoring of the other clusters.
func TestPanickingServerKeepsOtherClustersMonitored(t *testing.T) {
	primary, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	good := ClusterConfig{Spec: topology.ClusterSpec{Name: "good", Credentials: topology.Credentials{User: "myha", Password: "pw"},
		ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, Servers: []topology.ServerSpec{{Address: primary.Addr()}}},
		Policy: failover.Policy{MaxLag: time.Minute}, Interval: 50 * time.Millisecond, DownAfter: time.Second}
	bad1, bad2 := good, good
	bad1.Spec.Name, bad1.Spec.Servers = "bad-dial", []topology.ServerSpec{{Address: "127.0.0.1:1"}}
	bad2.Spec.Name, bad2.Spec.Servers = "bad-query", []topology.ServerSpec{{Address: "127.0.0.1:2"}}
	var logs syncBuf
	tm := startMonitorsWith(t, 1, []ClusterConfig{good, bad1, bad2}, func(c *Config) {
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
		c.Dialer = func(s topology.ClusterSpec) topology.Dialer {
			switch s.Name {
			case "bad-dial":
				return panicDialer{}
			case "bad-query":
				return panicOnQueryDialer{}
			}
			return topology.SQLDialer{Credentials: s.Credentials, ConnectTimeout: s.ConnectTimeout, ReadTimeout: s.ReadTimeout}
		}
	})
	d := tm.ds[0]
	eventually(t, "the good cluster probed twice after the bad ones panicked", 10*time.Second, func() bool {
		cm := d.cluster("good")
		if cm == nil {
			return false
		}
		cm.mu.Lock()
		at := cm.snapAt
		ok := cm.snap.Primary == primary.Addr()
		cm.mu.Unlock()
		// Clusters start at random points of their interval: the bad
		// ones may be probed after the good one.
		for _, name := range []string{"bad-dial", "bad-query"} {
			b := d.cluster(name)
			b.mu.Lock()
			probed := len(b.snap.Servers) > 0
			b.mu.Unlock()
			ok = ok && probed
		}
		return ok && strings.Contains(logs.String(), "recovered from a panic talking to a server") && time.Since(at) < 200*time.Millisecond
	})
	for _, name := range []string{"bad-dial", "bad-query"} {
		cm := d.cluster(name)
		cm.mu.Lock()
		errText := cm.snap.Servers[0].Error
		cm.mu.Unlock()
		if !strings.Contains(errText, "driver panic") {
			t.Errorf("%s: server error %q, want the panic reported as that server's error", name, errText)
		}
	}
}
