package daemon

// The live page's server side: the hub and the SSE stream are tested here
// against a real net/http server with a FAKE state source (a counter); the
// endpoints against one in-process monitor watching test/fakeserver
// MariaDB endpoints (FAKES). The page itself is tested in a real Chromium
// against real servers in test/integration (TestWebPage).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

// fakeState is a FAKE hub source: its payload is whatever the test sets.
type fakeState struct {
	mu       sync.Mutex
	version  int
	payload  string
	produced atomic.Int64
}

func (f *fakeState) set(p string) {
	f.mu.Lock()
	f.version++
	f.payload = p
	f.mu.Unlock()
}

func (f *fakeState) key() changeKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return changeKey{urgent: fmt.Sprint(f.version)}
}

func (f *fakeState) produce() []sseEvent {
	f.produced.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return []sseEvent{{"overview", []byte(f.payload)}}
}

// sseReader reads one stream's events (name, data) and comments.
type sseReader struct {
	resp *http.Response
	ch   chan [2]string
}

func openStream(t *testing.T, ctx context.Context, url string, tok string) (*sseReader, int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	r := &sseReader{resp: resp, ch: make(chan [2]string, 100)}
	go func() {
		defer close(r.ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, ":"):
				r.ch <- [2]string{":", line}
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				r.ch <- [2]string{name, strings.TrimPrefix(line, "data: ")}
			}
		}
	}()
	return r, 200
}

// next returns the next event or comment, failing after timeout.
func (r *sseReader) next(t *testing.T, timeout time.Duration) [2]string {
	t.Helper()
	select {
	case ev, ok := <-r.ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("nothing on the stream for %s", timeout)
	}
	return [2]string{}
}

func (r *sseReader) close() { r.resp.Body.Close() }

func TestEventStreamPushesChangesAndIsBounded(t *testing.T) {
	src := &fakeState{}
	src.set(`{"n":1}`)
	hub := newEventHub(slog.New(slog.DiscardHandler), src.key, src.produce)
	hub.maxClients, hub.tick, hub.heartbeat = 2, 20*time.Millisecond, 100*time.Millisecond
	// The API server's bounds, with a read timeout short enough to prove
	// the stream outlives it.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(hub.serve))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 200*time.Millisecond, 300*time.Millisecond
	srv.Start()
	defer srv.Close()
	ctx := t.Context()

	a, code := openStream(t, ctx, srv.URL, "")
	if code != 200 {
		t.Fatalf("first stream: %d", code)
	}
	if ev := a.next(t, 2*time.Second); ev != [2]string{"overview", `{"n":1}`} {
		t.Fatalf("first event: %q", ev)
	}
	b, _ := openStream(t, ctx, srv.URL, "")
	if ev := b.next(t, 2*time.Second); ev[1] != `{"n":1}` {
		t.Fatalf("a second stream starts with the current state: %q", ev)
	}
	// Beyond the bound: refused with 503, the others unharmed.
	if _, code := openStream(t, ctx, srv.URL, ""); code != http.StatusServiceUnavailable {
		t.Fatalf("third stream over a bound of 2: %d, want 503", code)
	}
	src.set(`{"n":2}`)
	for _, r := range []*sseReader{a, b} {
		for {
			ev := r.next(t, 2*time.Second)
			if ev[0] == ":" {
				continue
			}
			if ev[1] != `{"n":2}` {
				t.Fatalf("pushed: %q", ev)
			}
			break
		}
	}
	// The same payload under a new key is not sent again; heartbeats keep
	// coming, past the server's read and write timeouts.
	src.set(`{"n":2}`)
	deadline := time.Now().Add(time.Second)
	beats := 0
	for time.Now().Before(deadline) {
		ev := a.next(t, time.Second)
		if ev[0] != ":" {
			t.Fatalf("an unchanged payload was sent again: %q", ev)
		}
		beats++
	}
	if beats < 5 {
		t.Fatalf("%d heartbeats in 1 s at a 100 ms period", beats)
	}
	// A closed stream frees its place.
	b.close()
	waitUntil(t, "the closed stream to leave", func() bool { return hub.clientCount() == 1 })
	c, code := openStream(t, ctx, srv.URL, "")
	if code != 200 {
		t.Fatalf("after one left: %d", code)
	}
	c.close()
	a.close()
	// Nobody listening: the hub stops sampling and building payloads.
	waitUntil(t, "every stream to leave", func() bool { return hub.clientCount() == 0 })
	time.Sleep(50 * time.Millisecond) // a loop told to stop may finish its tick
	n := src.produced.Load()
	src.set(`{"n":3}`)
	time.Sleep(10 * hub.tick) // would be several ticks of a running loop
	if got := src.produced.Load(); got != n {
		t.Fatalf("payloads built with no client: %d → %d", n, got)
	}
}

func TestEventStreamLifetimeEnds(t *testing.T) {
	src := &fakeState{}
	src.set(`{}`)
	hub := newEventHub(slog.New(slog.DiscardHandler), src.key, src.produce)
	hub.lifetime = 300 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(hub.serve))
	defer srv.Close()
	r, _ := openStream(t, t.Context(), srv.URL, "")
	r.next(t, time.Second)
	select {
	case _, ok := <-r.ch:
		for ok {
			_, ok = <-r.ch
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the stream outlived its lifetime")
	}
	waitUntil(t, "the ended stream to leave", func() bool { return hub.clientCount() == 0 })
}

// A reader that does not read holds one pending payload per event name,
// the latest, however many states went by.
func TestSlowStreamKeepsOnlyTheLatestState(t *testing.T) {
	c := &sseClient{notify: make(chan struct{}, 1), pending: map[string][]byte{}}
	for i := range 10000 {
		c.offer(sseEvent{"overview", fmt.Appendf(nil, "%d", i)})
		c.offer(sseEvent{"failovers", fmt.Appendf(nil, "f%d", i)})
	}
	got := c.take()
	if len(got) != 2 || string(got[0].data) != "9999" || string(got[1].data) != "f9999" {
		t.Fatalf("pending after 10000 states: %d events, %q", len(got), got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
}

// fakeWebCluster is three FAKE MariaDB servers: a primary and two replicas.
func fakeWebCluster(t *testing.T) ClusterConfig {
	t.Helper()
	primary, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Close() })
	var specs = []topology.ServerSpec{{Address: primary.Addr()}}
	for id := 2; id <= 3; id++ {
		r, err := fakeserver.Start("myha", "pw", fakeMaria(id, primary, "Yes"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		specs = append(specs, topology.ServerSpec{Address: r.Addr()})
	}
	spec := topology.ClusterSpec{Name: "c", Credentials: topology.Credentials{User: "myha", Password: "pw"},
		ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, Servers: specs}
	return ClusterConfig{Spec: spec, Policy: failover.Policy{MaxLag: time.Minute, CatchupTimeout: 2 * time.Second},
		Interval: 100 * time.Millisecond, DownAfter: 300 * time.Millisecond, BlockPeriod: time.Hour, Auto: true}
}

// The page's endpoints follow the API's token rules: the page's files are
// open and hold no data; the stream, the access answer and the plan need
// the read (or write) token; the page learns it may act only with the
// write token, and the POSTs refuse anything else.
func TestWebEndpointsTokenRules(t *testing.T) {
	cc := fakeWebCluster(t)
	tm := startMonitorsWith(t, 1, []ClusterConfig{cc}, func(c *Config) { c.APIToken, c.APIReadToken = "write-tok", "read-tok" })
	d := tm.ds[0]
	eventually(t, "leadership", 10*time.Second, func() bool { return d.isLeader() })
	srv := httptest.NewServer(recoverHandler(d.log, d.handler()))
	defer srv.Close()
	get := func(path, tok string) (int, string, http.Header) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, p := range []string{"/", "/ui/app.js", "/ui/app.css"} {
		code, body, hdr := get(p, "")
		if code != 200 || len(body) < 100 || !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") || hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("GET %s without a token: %d %q %v", p, code, body[:min(len(body), 80)], hdr)
		}
	}
	if code, _, _ := get("/ui/nothing.js", ""); code != 404 {
		t.Fatalf("unknown asset: %d", code)
	}
	for _, c := range []struct {
		path, tok string
		want      int
	}{
		{"/api/events", "", 401},
		{"/api/events", "wrong", 401},
		{"/api/access", "", 401},
		{"/api/clusters/c/plan", "", 401},
		{"/api/clusters/c/plan", "read-tok", 200},
		{"/api/clusters/c/plan?kind=switchover&new_primary=" + cc.Spec.Servers[1].Address, "write-tok", 200},
		{"/api/clusters/c/plan?kind=reboot", "read-tok", 400},
		{"/api/clusters/c/plan?new_primary=10.9.9.9:3306", "read-tok", 400},
		{"/api/clusters/none/plan", "read-tok", 404},
	} {
		var code int
		var body string
		deadline := time.Now().Add(5 * time.Second)
		for {
			code, body, _ = get(c.path, c.tok)
			if code != 503 || time.Now().After(deadline) { // 503: not probed yet
				break
			}
			time.Sleep(50 * time.Millisecond) // polling for the first probe
		}
		if code != c.want {
			t.Errorf("GET %s with %q: %d, want %d: %s", c.path, c.tok, code, c.want, body)
		}
		if strings.Contains(body, "write-tok") || strings.Contains(body, "read-tok") {
			t.Fatalf("%s: a token in the answer", c.path)
		}
	}
	var acc struct{ Read, Write bool }
	for tok, wantWrite := range map[string]bool{"read-tok": false, "write-tok": true} {
		_, body, _ := get("/api/access", tok)
		if err := json.Unmarshal([]byte(body), &acc); err != nil || !acc.Read || acc.Write != wantWrite {
			t.Fatalf("/api/access with %s: %s", tok, body)
		}
	}
	// The plan is the CLI's dry-run text for the chosen replica.
	_, body, _ := get("/api/clusters/c/plan?kind=switchover&new_primary="+cc.Spec.Servers[2].Address, "read-tok")
	var pl struct {
		OK   bool   `json:"ok"`
		Text string `json:"text"`
		Plan struct {
			NewPrimary string `json:"new_primary"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(body), &pl); err != nil || pl.Plan.NewPrimary != cc.Spec.Servers[2].Address ||
		!strings.Contains(pl.Text, "Switchover plan for cluster c") || !strings.Contains(pl.Text, "new primary: "+cc.Spec.Servers[2].Address) {
		t.Fatalf("plan: %v %s", err, body)
	}
	// A read token cannot act, whatever the page shows.
	req, _ := http.NewRequest("POST", srv.URL+"/api/clusters/c/switchover", nil)
	req.Header.Set("Authorization", "Bearer read-tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("POST with the read token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	// The stream with the read token: the overview names the primary.
	r, code := openStream(t, t.Context(), srv.URL+"/api/events", "read-tok")
	if code != 200 {
		t.Fatalf("stream with the read token: %d", code)
	}
	defer r.close()
	primary := cc.Spec.Servers[0].Address
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev := r.next(t, 5*time.Second)
		if ev[0] == "overview" {
			var ov struct {
				Monitor  string `json:"monitor"`
				Monitors []struct {
					Name string `json:"name"`
				} `json:"monitors"`
				Clusters []struct {
					Name    string  `json:"name"`
					Primary *string `json:"primary"`
					State   string  `json:"state"`
				} `json:"clusters"`
			}
			if err := json.Unmarshal([]byte(ev[1]), &ov); err != nil {
				t.Fatal(err)
			}
			if len(ov.Clusters) == 1 && ov.Clusters[0].Primary != nil && *ov.Clusters[0].Primary == primary && ov.Clusters[0].State == "healthy" && len(ov.Monitors) == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no overview naming the healthy primary")
		}
	}
}

// No CDN, no external font, nothing fetched from elsewhere: the embedded
// files name no other origin, and their weight is logged.
func TestWebAssetsAreSelfContained(t *testing.T) {
	ext := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(\s*['"]?[a-z]+:`)
	total := 0
	for name, a := range webAssets() {
		total += len(a.body)
		if m := ext.Find(a.body); m != nil {
			t.Errorf("%s refers to another origin: %q", name, m)
		}
	}
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		if _, ok := webAssets()[name]; !ok {
			t.Fatalf("%s not embedded", name)
		}
	}
	t.Logf("page weight: %d bytes uncompressed (index.html + app.js + app.css)", total)
}

// pacedState is a FAKE state whose every probe is a routine change and
// whose payloads take cost to build; urgent bumps the urgent key.
type pacedState struct {
	cost     time.Duration
	urgentN  atomic.Int64
	routineN atomic.Int64
	produced atomic.Int64
}

func (p *pacedState) key() changeKey {
	return changeKey{urgent: fmt.Sprint(p.urgentN.Load()), routine: fmt.Sprint(p.routineN.Add(1))}
}

func (p *pacedState) produce() []sseEvent {
	time.Sleep(p.cost) // the cost of building a large overview
	return []sseEvent{{"overview", fmt.Appendf(nil, `{"u":%d,"b":%d}`, p.urgentN.Load(), p.produced.Add(1))}}
}

// At a thousand clusters some cluster has a new probe at every tick: the
// overview is rebuilt only as often as its cost allows, while a verdict or
// a raft decision still goes out at the next tick.
func TestEventStreamPacesRoutineChangesByCost(t *testing.T) {
	src := &pacedState{cost: 150 * time.Millisecond}
	hub := newEventHub(slog.New(slog.DiscardHandler), src.key, src.produce)
	hub.tick, hub.heartbeat = 10*time.Millisecond, time.Hour
	srv := httptest.NewServer(http.HandlerFunc(hub.serve))
	defer srv.Close()
	r, _ := openStream(t, t.Context(), srv.URL, "")
	defer r.close()
	r.next(t, 5*time.Second)
	first := time.Now()
	r.next(t, 10*time.Second) // a routine rebuild
	gap := time.Since(first)
	// 20 × a build of ≥150 ms, capped at maxRoutineGap: a slower machine
	// only makes the gap longer.
	if gap < maxRoutineGap-100*time.Millisecond {
		t.Fatalf("routine changes rebuilt %s apart with a 150 ms build; want about %s", gap, maxRoutineGap)
	}
	at := time.Now()
	src.urgentN.Add(1)
	ev := r.next(t, 10*time.Second)
	if !strings.Contains(ev[1], `"u":1`) {
		t.Fatalf("after an urgent change: %q", ev)
	}
	if took := time.Since(at); took >= maxRoutineGap-100*time.Millisecond {
		t.Fatalf("an urgent change waited %s, as long as a routine one", took)
	}
}
