package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myha/myha/topology"
)

// syncBuffer is a log sink tests can read while handlers write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With security.api_allow set, a source outside it gets 403 on every
// path, even /health and even with the write token; an allowed source and
// the monitors' own addresses (followers forwarding) get through.
func TestAPIAllowlistRefusesOtherSources(t *testing.T) {
	var logs syncBuffer
	allow := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	tm := startMonitorsWith(t, 1, nil, func(c *Config) {
		c.APIToken, c.APIAllow = "write-tok", allow
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	d := tm.ds[0]
	eventually(t, "leadership", 10*time.Second, func() bool { return d.isLeader() })
	h := d.apiHandler(context.Background())
	do := func(from, method, path, tok string) int {
		req := httptest.NewRequest(method, path, nil)
		req.RemoteAddr = from
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, c := range []struct {
		from, method, path, tok string
		want                    int
	}{
		{"198.51.100.9:4000", "GET", "/health", "", 403},
		{"198.51.100.9:4000", "GET", "/api/clusters", "", 403},
		{"198.51.100.9:4000", "POST", "/api/clusters/none/ack", "write-tok", 403},
		{"[2001:db9::1]:4000", "GET", "/health", "", 403},
		{"garbage", "GET", "/health", "", 403},
		{"192.0.2.7:4000", "GET", "/health", "", 200},
		{"192.0.2.7:4000", "GET", "/api/clusters", "", 200},
		{"192.0.2.7:4000", "POST", "/api/clusters/none/ack", "", 401}, // allowed, still needs the token
		{"192.0.2.7:4000", "POST", "/api/clusters/none/ack", "write-tok", 404},
		{"[2001:db8::5]:4000", "GET", "/health", "", 200},
		{"[::ffff:192.0.2.8]:4000", "GET", "/health", "", 200},
		{"127.0.0.1:4000", "GET", "/health", "", 200}, // the monitor's own address (startMonitorsWith: 127.0.0.1)
	} {
		if got := do(c.from, c.method, c.path, c.tok); got != c.want {
			t.Errorf("%s %s from %s: %d, want %d", c.method, c.path, c.from, got, c.want)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "source not in security.api_allow") || !strings.Contains(out, "198.51.100.9") {
		t.Fatalf("no log line for the refusal:\n%s", out)
	}
	if strings.Contains(out, "write-tok") {
		t.Fatal("a token in the log")
	}
}

// A flood from outside the allowlist makes one log line per
// refusalLogEvery, which counts the refusals it did not log.
func TestAPIAllowlistRefusalsAreNotSpammy(t *testing.T) {
	var logs syncBuffer
	now := time.Unix(1000, 0)
	g := newAPIGate([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	h := g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("a refused request reached the API") }))
	flood := func(n int) {
		for i := 0; i < n; i++ {
			req := httptest.NewRequest("GET", "/api/clusters", nil)
			req.RemoteAddr = "203.0.113.5:999"
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	flood(1000)
	if n := strings.Count(logs.String(), "API request refused"); n != 1 {
		t.Fatalf("%d log lines for 1000 refusals within %s, want 1", n, refusalLogEvery)
	}
	now = now.Add(refusalLogEvery)
	flood(1)
	out := logs.String()
	if n := strings.Count(out, "API request refused"); n != 2 || !strings.Contains(out, "refused_unlogged_since_last=999") {
		t.Fatalf("after %s: %d lines:\n%s", refusalLogEvery, n, out)
	}
}

// The agent's health endpoints stay plain HTTP for HAProxy, with no
// token: they must carry nothing secret. The answer is agentStatus and
// nothing else, whose fields are pinned here (a new field must be checked
// for secrets before it is added to this list); no answer contains the
// database passwords or the gossip key, whatever the method.
func TestAgentEndpointsCarryNoSecrets(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	ag := &Agent{cfg: AgentConfig{Server: "198.18.0.11:3306", GossipKey: key, Cluster: ClusterConfig{
		Spec: topology.ClusterSpec{Name: "app1", Credentials: topology.Credentials{User: "myha", Password: "admin-pw-Zq9"}},
		Repl: topology.Credentials{User: "repl", Password: "repl-pw-Xk7"}}}}
	ag.local = topology.ServerState{Reachable: true, ServerID: 11, Error: "Error 1045: Access denied for user 'myha'@'198.18.0.1' (using password: YES)"}
	ag.lease = LeaseMsg{Primary: "198.18.0.11:3306", Epoch: 3}
	ag.leaseOK, ag.holding = true, true

	var fields []string
	ty := reflect.TypeOf(agentStatus{})
	for i := 0; i < ty.NumField(); i++ {
		fields = append(fields, strings.Split(ty.Field(i).Tag.Get("json"), ",")[0])
	}
	sort.Strings(fields)
	want := "agreed_primary epoch error failsafe followers gtid_position io_running lag_seconds lease_fresh maintenance reachable read_only role server source sql_running vip_held"
	if got := strings.Join(fields, " "); got != want {
		t.Fatalf("agentStatus fields changed:\n got %s\nwant %s\n(check the new ones carry no secret, then update this list)", got, want)
	}

	srv := newAgentServer("x", recoverHandler(slog.New(slog.DiscardHandler), ag.handler()), slog.New(slog.DiscardHandler))
	if srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.ReadHeaderTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("agent HTTP server without every bound: %+v", srv)
	}
	secrets := []string{"admin-pw-Zq9", "repl-pw-Xk7", string(key), base64.StdEncoding.EncodeToString(key)}
	for _, path := range []string{"/primary", "/master", "/replica", "/replica?lag=5", "/read-only", "/health", "/readiness", "/liveness"} {
		for _, method := range []string{"GET", "HEAD", "OPTIONS", "POST"} {
			rec := httptest.NewRecorder()
			srv.Handler.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
			body := rec.Body.String()
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Fatalf("%s %s: a secret in the answer: %s", method, path, body)
				}
			}
			if path == "/liveness" || method == "HEAD" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, body)
			}
			for k := range m {
				if !strings.Contains(" "+want+" ", " "+k+" ") {
					t.Fatalf("%s %s: field %q is not an agentStatus field", method, path, k)
				}
			}
		}
	}
	rec := httptest.NewRecorder()
	srv.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/primary", nil))
	if rec.Code != 200 {
		t.Fatalf("/primary of the leased, writable primary: %d", rec.Code)
	}
}
