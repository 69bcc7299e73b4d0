package daemon

// Unit tests of the notifier against httptest receivers (real HTTP on
// loopback) with a fake clock for the backoff; the lab test in
// test/integration records a real failover's events.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

func fakeserverStart(id int, primary *fakeserver.Server, io string) (*fakeserver.Server, error) {
	return fakeserver.Start("myha", "pw", fakeMaria(id, primary, io))
}

// fakeClusterOf is a cluster config over fake servers, the first the primary.
func fakeClusterOf(srvs ...*fakeserver.Server) ClusterConfig {
	spec := topology.ClusterSpec{Name: "c", Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second}
	for _, s := range srvs {
		spec.Servers = append(spec.Servers, topology.ServerSpec{Address: s.Addr()})
	}
	return ClusterConfig{Spec: spec, Policy: failover.Policy{MaxLag: time.Minute, CatchupTimeout: 2 * time.Second}, Repl: topology.Credentials{User: "repl", Password: "r"},
		Interval: 100 * time.Millisecond, DownAfter: 300 * time.Millisecond, BlockPeriod: time.Hour, Auto: true, Fencing: FencingBestEffort}
}

// receiver records the events POSTed to it; fail makes it answer 503.
type receiver struct {
	mu     sync.Mutex
	got    []Event
	auth   []string
	fail   atomic.Int32 // answer 503 to this many more requests
	srv    *httptest.Server
	hits   atomic.Int32
	stall  chan struct{} // when set, requests wait on it
	stalls atomic.Int32
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		if r.stall != nil {
			r.stalls.Add(1)
			select {
			case <-r.stall:
			case <-req.Context().Done():
				return
			}
		}
		if r.fail.Load() > 0 {
			r.fail.Add(-1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var ev Event
		if err := json.NewDecoder(req.Body).Decode(&ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got, r.auth = append(r.got, ev), append(r.auth, req.Header.Get("X-Hook-Key"))
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event{}, r.got...)
}

// fakeSleep records the backoff waits instead of sleeping.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) bool {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	return ctx.Err() == nil
}

func testNotifier(t *testing.T, url string, retries, queue int, logTo *bytes.Buffer) (*notifier, *fakeSleep) {
	t.Helper()
	if logTo == nil {
		logTo = &bytes.Buffer{}
	}
	n := newNotifier(NotifyConfig{Webhook: &WebhookConfig{URL: url, AuthHeader: "X-Hook-Key", AuthValue: "hook-s3cr3t",
		Timeout: 200 * time.Millisecond, Retries: retries, Queue: queue}}, slog.New(slog.NewTextHandler(logTo, nil)), prometheus.NewRegistry())
	fs := &fakeSleep{}
	n.sleep = fs.sleep
	return n, fs
}

func runNotifier(t *testing.T, n *notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Events arrive in order with the secret header; a receiver failing for a
// while gets the event after it recovers, with backoff doubling from
// 500ms; retries are bounded.
func TestNotifierOrderRetryBackoff(t *testing.T) {
	r := newReceiver(t)
	var logs bytes.Buffer
	n, fs := testNotifier(t, r.srv.URL+"/hook?token=q-s3cr3t", 20, 100, &logs)
	r.fail.Store(5) // down for five attempts
	runNotifier(t, n)
	for i, k := range []string{EventPrimarySuspect, EventPrimaryDead, EventFailoverStarted} {
		n.offer(Event{Seq: uint64(i + 1), Kind: k, Cluster: "c"})
	}
	eventually(t, "three events delivered", 5*time.Second, func() bool { return len(r.events()) == 3 })
	got := r.events()
	for i, k := range []string{EventPrimarySuspect, EventPrimaryDead, EventFailoverStarted} {
		if got[i].Kind != k || r.auth[i] != "hook-s3cr3t" {
			t.Fatalf("event %d: %+v auth %q", i, got[i], r.auth[i])
		}
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	fs.mu.Lock()
	if len(fs.waits) != len(want) {
		t.Fatalf("backoff waits %v, want %v", fs.waits, want)
	}
	for i := range want {
		if fs.waits[i] != want[i] {
			t.Fatalf("backoff waits %v, want %v", fs.waits, want)
		}
	}
	fs.mu.Unlock()
	if strings.Contains(logs.String(), "s3cr3t") {
		t.Fatalf("a secret in the log:\n%s", logs.String())
	}
	if testutil.ToFloat64(n.sent) != 3 || testutil.ToFloat64(n.failed) != 0 {
		t.Fatalf("sent %v failed %v", testutil.ToFloat64(n.sent), testutil.ToFloat64(n.failed))
	}

	// A receiver down for longer than the retries: the event is given up
	// (counted), the backoff is capped at 30s, the next event still goes.
	r.fail.Store(1000)
	n2, fs2 := testNotifier(t, r.srv.URL, 10, 100, nil)
	runNotifier(t, n2)
	n2.offer(Event{Kind: EventFailoverFinished, Cluster: "c"})
	eventually(t, "the event given up", 5*time.Second, func() bool { return testutil.ToFloat64(n2.failed) == 1 })
	fs2.mu.Lock()
	if len(fs2.waits) != 10 || fs2.waits[9] != webhookMaxBackoff {
		t.Fatalf("bounded retries: waits %v", fs2.waits)
	}
	fs2.mu.Unlock()
	if int(r.hits.Load()) < 11 {
		t.Fatalf("hits %d", r.hits.Load())
	}
}

// offer never blocks; beyond the queue the oldest waiting event is dropped
// and counted, while delivery is stuck on a hanging receiver.
func TestNotifierQueueDropsOldest(t *testing.T) {
	r := newReceiver(t)
	r.stall = make(chan struct{})
	n, _ := testNotifier(t, r.srv.URL, 0, 3, nil)
	n.cfg.Webhook.Timeout = 5 * time.Second
	runNotifier(t, n)
	n.offer(Event{Seq: 1, Kind: "k"})
	eventually(t, "the first POST to hang", 5*time.Second, func() bool { return r.stalls.Load() == 1 })
	start := time.Now()
	for i := 2; i <= 7; i++ {
		n.offer(Event{Seq: uint64(i), Kind: "k"})
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("offering 6 events took %s: offer blocks", d)
	}
	if got := testutil.ToFloat64(n.dropped); got != 3 {
		t.Fatalf("dropped %v, want 3 (queue of 3, six offered behind a stuck one)", got)
	}
	close(r.stall)
	eventually(t, "the rest delivered", 5*time.Second, func() bool { return len(r.events()) == 4 })
	var seqs []uint64
	for _, e := range r.events() {
		seqs = append(seqs, e.Seq)
	}
	if seqs[0] != 1 || seqs[1] != 5 || seqs[2] != 6 || seqs[3] != 7 {
		t.Fatalf("delivered %v, want [1 5 6 7]: the oldest waiting are dropped", seqs)
	}
}

// A receiver that never answers costs one timeout per attempt, and the
// caller (the decision loop) is never delayed.
func TestNotifierHangingReceiverTimesOut(t *testing.T) {
	r := newReceiver(t)
	r.stall = make(chan struct{})
	defer close(r.stall)
	n, _ := testNotifier(t, r.srv.URL, 1, 10, nil)
	runNotifier(t, n)
	start := time.Now()
	n.offer(Event{Kind: EventFailoverStarted})
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("offer took %s", d)
	}
	eventually(t, "the event given up after two timed-out attempts", 5*time.Second, func() bool { return testutil.ToFloat64(n.failed) == 1 })
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Fatalf("two attempts of a 200ms timeout took %s", d)
	}
}

// The report script gets MHA's report_script arguments.
func TestReportScriptArguments(t *testing.T) {
	rep := &failover.Report{Cluster: "app1", Kind: failover.KindFailover, OldPrimary: "10.0.0.1:3306", NewPrimary: "10.0.0.2:3306",
		Result: failover.ResultSuccess, FinalState: []failover.ServerSummary{{Address: "10.0.0.2:3306"}, {Address: "10.0.0.3:3306", Source: "10.0.0.2:3306"}, {Address: "10.0.0.4:3307", Source: "10.0.0.2:3306"}}}
	var got []string
	n := newNotifier(NotifyConfig{ReportScript: "/usr/local/bin/report", ReportTimeout: time.Second}, slog.New(slog.DiscardHandler), nil)
	n.script = func(_ context.Context, path string, args []string) error {
		got = append([]string{path}, args...)
		return nil
	}
	n.deliver(context.Background(), Event{Kind: EventPrimaryDead}) // not a report event
	if got != nil {
		t.Fatalf("report script ran for primary_dead: %v", got)
	}
	n.deliver(context.Background(), finishedEvent(rep, true))
	want := []string{"/usr/local/bin/report", "--orig_master_host=10.0.0.1", "--new_master_host=10.0.0.2", "--new_slave_hosts=10.0.0.3,10.0.0.4",
		"--subject=Master failover to 10.0.0.2:3306 succeeded (cluster app1)"}
	for i, w := range want {
		if i >= len(got) || got[i] != w {
			t.Fatalf("args %q, want prefix %q", got, want)
		}
	}
	if len(got) != 6 || !strings.HasPrefix(got[5], "--body=Failover") {
		t.Fatalf("body: %q", got)
	}
}

// On fakes (three monitors, fake MariaDB servers): the leader notifies a
// dead primary's story once and in order — suspect, dead, failover
// started, failover finished with the timeline — and the followers send
// nothing.
func TestLeaderNotifiesAFailoverInOrder(t *testing.T) {
	primary, err := fakeserverStart(1, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := fakeserverStart(2, primary, "Yes")
	defer r2.Close()
	r3, _ := fakeserverStart(3, primary, "Yes")
	defer r3.Close()
	cc := fakeClusterOf(primary, r2, r3)
	rec := newReceiver(t)
	tm := startMonitorsWith(t, 3, []ClusterConfig{cc}, func(c *Config) {
		c.Notify = NotifyConfig{Webhook: &WebhookConfig{URL: rec.srv.URL, AuthHeader: "X-Hook-Key", AuthValue: "k", Timeout: time.Second, Retries: 3, Queue: 100}}
	})
	eventually(t, "one leader", 10*time.Second, func() bool { return len(tm.leaders(nil)) == 1 })
	eventually(t, "the monitors to agree on the primary", 10*time.Second, func() bool { return tm.ds[0].fsm.snapshot().Primary["c"] == primary.Addr() })
	primary.Close()
	for _, r := range []*fakeserver.Server{r2, r3} {
		id := map[*fakeserver.Server]int{r2: 2, r3: 3}[r]
		r.SetState(fakeMaria(id, primary, "Connecting"))
	}
	eventually(t, "failover_finished notified", 15*time.Second, func() bool {
		for _, e := range rec.events() {
			if e.Kind == EventFailoverFinished {
				return true
			}
		}
		return false
	})
	var kinds []string
	count := map[string]int{}
	monitors := map[string]bool{}
	for _, e := range rec.events() {
		kinds = append(kinds, e.Kind)
		count[e.Kind]++
		monitors[e.Monitor] = true
	}
	at := func(k string) int {
		for i, x := range kinds {
			if x == k {
				return i
			}
		}
		return -1
	}
	if !(at(EventPrimarySuspect) >= 0 && at(EventPrimarySuspect) < at(EventPrimaryDead) && at(EventPrimaryDead) < at(EventFailoverStarted) && at(EventFailoverStarted) < at(EventFailoverFinished)) {
		t.Fatalf("events out of order: %v", kinds)
	}
	if count[EventFailoverStarted] != 1 || count[EventFailoverFinished] != 1 || len(monitors) != 1 {
		t.Fatalf("want one failover notified by one monitor: %v from %v", kinds, monitors)
	}
	for _, e := range rec.events() {
		if e.Kind == EventFailoverFinished && (e.Report == nil || len(e.Report.Steps) == 0 || e.NewPrimary == "") {
			t.Fatalf("finished without the timeline: %+v", e)
		}
	}
	t.Logf("notified: %v", kinds)
}

// A refusal repeated at every probe is one event; after a reset (the
// primary healthy again, or a failover started) it is notified again.
func TestBlockedEventsAreNotifiedOnce(t *testing.T) {
	d, err := New(Config{Self: "m1", Monitors: []MonitorAddr{{Name: "m1", Address: "127.0.0.1"}}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		d.emitOnce("blocked", "fencing 10.0.0.1:3306", Event{Kind: EventFailoverBlocked, Cluster: "c"})
	}
	d.emitOnce("blocked", "fencing 10.0.0.1:3306", Event{Kind: EventFailoverBlocked, Cluster: "other"})
	if n := len(d.recentEventsCopy()); n != 2 {
		t.Fatalf("%d events for one repeated refusal on each of two clusters", n)
	}
	d.resetOnce("c", "blocked")
	d.emitOnce("blocked", "fencing 10.0.0.1:3306", Event{Kind: EventFailoverBlocked, Cluster: "c"})
	evs := d.recentEventsCopy()
	if len(evs) != 3 || evs[2].Seq != 3 || evs[2].Monitor != "m1" || evs[2].At.IsZero() {
		t.Fatalf("after a reset: %+v", evs)
	}
}

// The real report script runs with MHA's arguments and only PATH in its
// environment: the daemon's may hold passwords.
func TestReportScriptRunsWithOnlyPath(t *testing.T) {
	dir := t.TempDir()
	out := dir + "/out"
	script := dir + "/report.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv > "+out+".env\nprintf '%s\\n' \"$@\" > "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MYHA_APP1_PASSWORD", "db-s3cr3t")
	n := newNotifier(NotifyConfig{ReportScript: script, ReportTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler), nil)
	rep := &failover.Report{Cluster: "app1", Kind: failover.KindSwitchover, OldPrimary: "10.0.0.1:3306", NewPrimary: "10.0.0.2:3306", Result: failover.ResultSuccess}
	n.deliver(context.Background(), finishedEvent(rep, false))
	args, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := os.ReadFile(out + ".env")
	if !strings.HasPrefix(string(args), "--orig_master_host=10.0.0.1\n--new_master_host=10.0.0.2\n--new_slave_hosts=\n--subject=Master switchover to 10.0.0.2:3306 succeeded") {
		t.Fatalf("args:\n%s", args)
	}
	if strings.Contains(string(env), "s3cr3t") || !strings.Contains(string(env), "PATH=") {
		t.Fatalf("environment:\n%s", env)
	}
}
