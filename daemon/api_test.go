package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAPITokensAndLimits(t *testing.T) {
	tm := startMonitorsWith(t, 1, nil, func(c *Config) { c.APIToken, c.APIReadToken = "write-tok", "read-tok" })
	d := tm.ds[0]
	eventually(t, "leadership", 10*time.Second, func() bool { return d.isLeader() })
	h := newAPIServer("x", recoverHandler(d.log, d.handler())).Handler
	do := func(method, path, tok, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), "write-tok") || strings.Contains(rec.Body.String(), "read-tok") {
			t.Fatalf("%s %s: a token in the answer", method, path)
		}
		return rec.Code
	}
	for _, c := range []struct {
		method, path, tok string
		want              int
	}{
		{"GET", "/health", "", 200},
		{"GET", "/leader", "", 200},
		{"GET", "/api/clusters", "", 401},
		{"GET", "/api/clusters", "wrong", 401},
		{"GET", "/api/clusters", "read-tok", 200},
		{"GET", "/api/clusters", "write-tok", 200},
		{"GET", "/api/failovers", "", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "read-tok", 200},
		{"POST", "/api/clusters/none/ack", "", 401},
		{"POST", "/api/clusters/none/ack", "read-tok", 401}, // reads do not write
		{"POST", "/api/clusters/none/ack", "write-tok", 404},
	} {
		if got := do(c.method, c.path, c.tok, ""); got != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.tok, got, c.want)
		}
	}
	if got := do("POST", "/api/clusters/none/ack", "write-tok", strings.Repeat("x", apiMaxBody+1)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", got)
	}
	s := newAPIServer("x", h)
	if s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 || s.ReadHeaderTimeout == 0 || s.MaxHeaderBytes == 0 {
		t.Fatalf("API server without every bound: %+v", s)
	}
}

// Without a read token reads are open, but writes still need the write
// token, and with no write token configured changes are off.
func TestAPIWritesAlwaysNeedTheWriteToken(t *testing.T) {
	tm := startMonitorsWith(t, 1, nil, nil)
	d := tm.ds[0]
	h := d.handler()
	for _, tok := range []string{"", "anything"} {
		req := httptest.NewRequest("POST", "/api/clusters/x/failover", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("token %q: %d", tok, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/failovers", nil))
	if rec.Code != 200 {
		t.Fatalf("open read: %d", rec.Code)
	}
}

// A daemon refuses to start without a gossip key or raft TLS unless
// insecure is set explicitly.
func TestDaemonRefusesInsecureWithoutOptIn(t *testing.T) {
	mons := []MonitorAddr{{Name: "m", Address: "127.0.0.1", GossipPort: 1, RaftPort: 2}}
	if _, err := New(Config{Self: "m", Monitors: mons, TLS: &TLSFiles{}}); err == nil || !strings.Contains(err.Error(), "gossip_key_file") {
		t.Fatalf("no gossip key: %v", err)
	}
	if _, err := New(Config{Self: "m", Monitors: mons, GossipKey: make([]byte, 32)}); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("no TLS: %v", err)
	}
	if _, err := New(Config{Self: "m", Monitors: mons, Insecure: true}); err != nil {
		t.Fatalf("insecure opt-in refused: %v", err)
	}
}

// The clusters list carries the monitor's clock, so a client tells each
// snapshot's age (time - taken_at) on one clock: myha topology --api.
func TestClustersListCarriesTheMonitorsClock(t *testing.T) {
	tm := startMonitorsWith(t, 1, nil, nil)
	eventually(t, "leadership", 10*time.Second, func() bool { return tm.ds[0].isLeader() })
	rec := httptest.NewRecorder()
	tm.ds[0].handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/clusters", nil))
	var v struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v: %s", rec.Code, err, rec.Body.String())
	}
	if d := time.Since(v.Time); d < -time.Minute || d > time.Minute {
		t.Fatalf("time %v is not the monitor's clock", v.Time)
	}
}
