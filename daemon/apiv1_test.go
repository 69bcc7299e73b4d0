package daemon

// These tests run a monitor in one process on FAKES (in-memory raft and
// gossip, test/fakeserver MariaDB endpoints): they check the API's paths,
// bodies, error shape and operations; test/integration drives the same
// API against real servers.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

type apiAnswer struct {
	code int
	body map[string]any
	raw  string
}

func callAPI(t *testing.T, h http.Handler, method, path, tok, body string) apiAnswer {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := apiAnswer{code: rec.Code, raw: rec.Body.String()}
	json.Unmarshal(rec.Body.Bytes(), &a.body)
	return a
}

// errorCode returns the answer's error.code, failing when the error is
// not in the API's one shape.
func (a apiAnswer) errorCode(t *testing.T) string {
	t.Helper()
	e, ok := a.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("answer %d is not {\"error\": {...}}: %s", a.code, a.raw)
	}
	if _, ok := e["message"].(string); !ok {
		t.Fatalf("error without a message: %s", a.raw)
	}
	if _, ok := e["blockers"].([]any); !ok {
		t.Fatalf("error without a blockers list: %s", a.raw)
	}
	return e["code"].(string)
}

// apiFakeCluster is a healthy fake cluster of three: a primary and two
// replicas.
func apiFakeCluster(t *testing.T) (ClusterConfig, []*fakeserver.Server) {
	t.Helper()
	p, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := fakeserver.Start("myha", "pw", fakeMaria(2, p, "Yes"))
	r3, _ := fakeserver.Start("myha", "pw", fakeMaria(3, p, "Yes"))
	t.Cleanup(func() { p.Close(); r2.Close(); r3.Close() })
	spec := topology.ClusterSpec{Name: "c", Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second,
		Servers: []topology.ServerSpec{{Address: p.Addr()}, {Address: r2.Addr()}, {Address: r3.Addr()}}}
	return ClusterConfig{Spec: spec, Policy: failover.Policy{MaxLag: time.Minute, CatchupTimeout: 2 * time.Second}, Repl: topology.Credentials{User: "repl", Password: "r"},
		Interval: 100 * time.Millisecond, DownAfter: 300 * time.Millisecond, BlockPeriod: time.Hour, Auto: true, Fencing: FencingBestEffort}, []*fakeserver.Server{p, r2, r3}
}

// Every API endpoint answers under /api/v1/... and under the old /api/...
// alias, with the same body.
func TestAPIVersionedPathsAndAliases(t *testing.T) {
	cc, _ := apiFakeCluster(t)
	tm := startMonitorsWith(t, 1, []ClusterConfig{cc}, func(c *Config) { c.APIToken = "w" })
	d := tm.ds[0]
	eventually(t, "leadership", 10*time.Second, func() bool { return d.isLeader() && d.caughtUp.Load() })
	eventually(t, "a probe", 10*time.Second, func() bool { _, _, ok := d.cluster("c").planPreview(failover.KindSwitchover, ""); return ok })
	h := d.handler()
	for _, p := range []string{"/clusters", "/clusters/c/check", "/failovers", "/access", "/clusters/c/plan?kind=switchover"} {
		v1 := callAPI(t, h, "GET", "/api/v1"+p, "", "")
		old := callAPI(t, h, "GET", "/api"+p, "", "")
		if v1.code != 200 || old.code != 200 {
			t.Errorf("GET %s: /api/v1 %d, /api %d: %s", p, v1.code, old.code, v1.raw)
		}
		if v1.body == nil || len(v1.body) != len(old.body) {
			t.Errorf("GET %s: the alias answers differently:\n%s\n%s", p, v1.raw, old.raw)
		}
	}
	for _, prefix := range []string{"/api/v1", "/api"} {
		if a := callAPI(t, h, "POST", prefix+"/clusters/c/ack", "w", ""); a.code != 200 {
			t.Errorf("POST %s/clusters/c/ack: %d %s", prefix, a.code, a.raw)
		}
	}
}

// Errors have one shape with stable codes, and a change's parameters come
// from a JSON body (unknown fields refused) or the query.
func TestAPIErrorsAndJSONBodies(t *testing.T) {
	cc, srvs := apiFakeCluster(t)
	tm := startMonitorsWith(t, 1, []ClusterConfig{cc}, func(c *Config) { c.APIToken = "w" })
	d := tm.ds[0]
	eventually(t, "leadership", 10*time.Second, func() bool { return d.isLeader() && d.caughtUp.Load() })
	eventually(t, "a healthy primary", 10*time.Second, func() bool { return d.cluster("c").status()["state"] == StateHealthy })
	h := newAPIServer("x", recoverHandler(d.log, d.handler())).Handler
	for _, c := range []struct {
		method, path, tok, body string
		status                  int
		code                    string
		in                      string // the message names this
	}{
		{"POST", "/api/v1/clusters/c/failover", "", "", 401, codeUnauthorized, "api_token_file"},
		{"POST", "/api/v1/clusters/c/failover", "nope", "", 401, codeUnauthorized, ""},
		{"POST", "/api/v1/clusters/nope/failover", "w", "", 404, codeNotFound, "nope"},
		{"POST", "/api/v1/clusters/c/reboot", "w", "", 404, codeNotFound, "reboot"},
		{"GET", "/api/v1/clusters/nope/check", "", "", 404, codeNotFound, "nope"},
		{"GET", "/api/v1/operations/unknown", "", "", 404, codeNotFound, "unknown"},
		{"GET", "/api/v1/no/such/endpoint", "", "", 404, codeNotFound, "/api/v1/no/such/endpoint"},
		{"POST", "/api/v1/clusters/c/switchover", "w", `{"new_primary": "x:1", "forse": true}`, 400, codeBadRequest, "forse"},
		{"POST", "/api/v1/clusters/c/switchover", "w", `{"new_primary": `, 400, codeBadRequest, "JSON body"},
		{"POST", "/api/v1/clusters/c/switchover", "w", `{"force": true} {}`, 400, codeBadRequest, "one object"},
		{"POST", "/api/v1/clusters/c/switchover", "w", `{"new_primary": "10.9.9.9:3306"}`, 400, codeBadRequest, "10.9.9.9:3306"},
		{"POST", "/api/v1/clusters/c/switchover?new_primary=10.9.9.9:3306", "w", "", 400, codeBadRequest, "10.9.9.9:3306"},
		{"POST", "/api/v1/clusters/c/switchover?force=true", "w", `{"force": false}`, 400, codeBadRequest, "force differs"},
		{"POST", "/api/v1/clusters/c/switchover?async=maybe", "w", "", 400, codeBadRequest, "async"},
		{"POST", "/api/v1/clusters/c/ack", "w", strings.Repeat("x", apiMaxBody+1), 413, codeTooLarge, "bytes"},
		// A failover of a primary that answers is blocked by the planner:
		// nothing changes, and each blocker is listed.
		{"POST", "/api/v1/clusters/c/failover", "w", `{"new_primary": "` + srvs[1].Addr() + `"}`, 409, codeBlocked, "blocked"},
	} {
		a := callAPI(t, h, c.method, c.path, c.tok, c.body)
		if a.code != c.status {
			t.Errorf("%s %s %.80s: status %d, want %d: %s", c.method, c.path, c.body, a.code, c.status, a.raw)
			continue
		}
		if got := a.errorCode(t); got != c.code {
			t.Errorf("%s %s: code %q, want %q: %s", c.method, c.path, got, c.code, a.raw)
		}
		if !strings.Contains(a.raw, c.in) {
			t.Errorf("%s %s: the error does not say %q: %s", c.method, c.path, c.in, a.raw)
		}
		if c.code == codeBlocked && len(a.body["error"].(map[string]any)["blockers"].([]any)) == 0 {
			t.Errorf("blocked without blockers: %s", a.raw)
		}
	}
	if h := d.fsm.snapshot().History; len(h) != 0 {
		t.Fatalf("a refused request changed something: %+v", h)
	}
}

// async=true (query or JSON) answers 202 with an operation id at once; the
// operation is polled until it ends and then carries its outcome.
func TestAPIAsyncOperation(t *testing.T) {
	cc, srvs := apiFakeCluster(t)
	tm := startMonitorsWith(t, 1, []ClusterConfig{cc}, func(c *Config) { c.APIToken = "w" })
	d := tm.ds[0]
	eventually(t, "leadership", 10*time.Second, func() bool { return d.isLeader() && d.caughtUp.Load() })
	eventually(t, "a healthy primary", 10*time.Second, func() bool { return d.cluster("c").status()["state"] == StateHealthy })
	h := d.handler()
	for _, req := range []struct{ path, body string }{
		{"/api/v1/clusters/c/failover?async=true", ""},
		{"/api/v1/clusters/c/failover", `{"async": true, "new_primary": "` + srvs[2].Addr() + `"}`},
	} {
		a := callAPI(t, h, "POST", req.path, "w", req.body)
		op, _ := a.body["operation"].(map[string]any)
		if a.code != http.StatusAccepted || op == nil || op["id"] == "" {
			t.Fatalf("POST %s %s: %d %s", req.path, req.body, a.code, a.raw)
		}
		id := op["id"].(string)
		var final map[string]any
		eventually(t, "the operation to end", 10*time.Second, func() bool {
			g := callAPI(t, h, "GET", "/api/v1/operations/"+id, "", "")
			final, _ = g.body["operation"].(map[string]any)
			return g.code == 200 && final != nil && final["state"] != opRunning
		})
		e, _ := final["error"].(map[string]any)
		if final["state"] != opFailed || e == nil || e["code"] != codeBlocked || len(e["blockers"].([]any)) == 0 {
			t.Fatalf("operation %s: %+v", id, final)
		}
	}
}

// The store keeps the last maxOperations operations and forgets older ones.
func TestOperationsAreBounded(t *testing.T) {
	s := newOpStore(3)
	now := time.Unix(0, 0)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, s.start("c", "failover", now).ID)
	}
	for i, id := range ids {
		_, ok := s.get(id)
		if want := i >= 2; ok != want {
			t.Fatalf("operation %d kept=%v, want %v", i, ok, want)
		}
	}
	s.finish(ids[4], &failover.Report{Result: failover.ResultSuccess}, nil, now)
	if op, _ := s.get(ids[4]); op.State != opSucceeded || op.Report == nil || op.Finished == nil {
		t.Fatalf("finished: %+v", op)
	}
	s.finish(ids[0], nil, &apiError{Code: codeFailed}, now) // forgotten: ignored
	if len(s.ops) != 3 || len(s.order) != 3 {
		t.Fatalf("store holds %d/%d", len(s.ops), len(s.order))
	}
}

// /health/live answers while the process is up; /health/ready says 503
// with every reason until the config is loaded, gossip joined and raft has
// a leader, then 200. /health stays as it was.
func TestHealthLiveAndReady(t *testing.T) {
	mons := []MonitorAddr{{Name: "m1", Address: "127.0.0.1"}, {Name: "m2", Address: "127.0.0.2"}}
	d, err := New(Config{Self: "m1", Monitors: mons, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	h := d.handler()
	if a := callAPI(t, h, "GET", "/health/live", "", ""); a.code != 200 || a.body["status"] != "live" {
		t.Fatalf("live: %d %s", a.code, a.raw)
	}
	a := callAPI(t, h, "GET", "/health/ready", "", "")
	if a.code != 503 || a.body["status"] != "not_ready" {
		t.Fatalf("ready before start: %d %s", a.code, a.raw)
	}
	for _, want := range []string{"not loaded", "gossip", "raft"} {
		if !strings.Contains(a.raw, want) {
			t.Errorf("not-ready reasons lack %q: %s", want, a.raw)
		}
	}
	if a := callAPI(t, h, "GET", "/health", "", ""); a.code != 200 || a.body["status"] != "ok" {
		t.Fatalf("/health: %d %s", a.code, a.raw)
	}

	tm := startMonitors(t, 3, nil)
	eventually(t, "one leader", 10*time.Second, func() bool { return len(tm.leaders(nil)) == 1 })
	for _, d := range tm.ds {
		eventually(t, fmt.Sprintf("%s ready", d.self.Name), 10*time.Second, func() bool {
			return callAPI(t, d.handler(), "GET", "/health/ready", "", "").code == 200
		})
	}
}

// FuzzParseAction: any body and query either parse or give an error, never
// a panic; what parses is what the body said.
func FuzzParseAction(f *testing.F) {
	for _, s := range []struct{ q, body string }{
		{"", ""}, {"new_primary=a:1&force=true", ""}, {"", `{"new_primary":"a:1","force":true,"async":true}`},
		{"force=true", `{"force":false}`}, {"", `{"x":1}`}, {"", `{} {}`}, {"async=maybe", ""}, {"", `[1,2]`}, {"", `{"new_primary":null}`},
	} {
		f.Add(s.q, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, q string, body []byte) {
		r := httptest.NewRequest("POST", "/api/v1/clusters/c/switchover", nil)
		r.URL.RawQuery = q
		p, err := parseAction(r, body)
		if err != nil {
			return
		}
		var b actionBody
		if json.Unmarshal(body, &b) == nil && b.NewPrimary != nil && *b.NewPrimary != p.NewPrimary {
			t.Fatalf("body said new_primary %q, parsed %q", *b.NewPrimary, p.NewPrimary)
		}
	})
}

// Before raft starts (the API listens first), every read answers and a
// change says there is no leader: nothing dereferences the missing node.
func TestAPIBeforeRaftStarts(t *testing.T) {
	mons := []MonitorAddr{{Name: "m1", Address: "127.0.0.1"}, {Name: "m2", Address: "127.0.0.2"}}
	d, err := New(Config{Self: "m1", Monitors: mons, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	h := recoverHandler(d.log, d.handler())
	for _, p := range []string{"/api/v1/clusters", "/leader", "/api/v1/failovers", "/metrics"} {
		if a := callAPI(t, h, "GET", p, "", ""); a.code >= 500 && a.code != http.StatusServiceUnavailable {
			t.Errorf("GET %s before raft: %d %s", p, a.code, a.raw)
		}
	}
	if name, addr := d.leaderAPI(); name != "" || addr != "" {
		t.Fatalf("leaderAPI before raft: %q %q", name, addr)
	}
}
