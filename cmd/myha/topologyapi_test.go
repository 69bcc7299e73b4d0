package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/config"
	"github.com/myha/myha/topology"
)

// A fake monitor's GET /api/v1/clusters (an httptest server, no daemon):
// the topology report of cluster app1 with the monitor's own fields beside
// it, taken 1.5 s before the monitor's clock.
const fakeClusters = `{"monitor": "mon2", "leader": "mon1", "insecure": false, "time": "2026-12-01T03:00:01.5Z",
 "clusters": [{"name": "app1", "primary": "10.0.0.1:3306", "taken_at": "2026-12-01T03:00:00Z", "took_ms": 2.5,
  "problems": [], "unlisted_replicas": [], "state": "healthy", "epoch": 4, "agreed_primary": "10.0.0.1:3306",
  "servers": [
   {"address": "10.0.0.1:3306", "role": "primary", "reachable": true, "version": "10.11.9-MariaDB", "read_only": false,
    "source": null, "io_running": null, "sql_running": null, "lag_seconds": null, "gtid_position": "0-1-10", "errant_gtids": [], "errors": []},
   {"address": "10.0.0.2:3306", "role": "replica", "reachable": true, "version": "10.11.9-MariaDB", "read_only": true,
    "source": "10.0.0.1:3306", "io_running": true, "io_state": "Yes", "sql_running": true, "lag_seconds": 0,
    "gtid_position": "0-1-10", "errant_gtids": [], "errors": []}]}]}`

// fakeCheck is a fake monitor's GET /api/v1/clusters/app1/check: one
// warning.
const fakeCheck = `{"name": "app1", "status": "warn", "plan": {},
 "checks": [{"name": "replication", "status": "ok", "server": "10.0.0.2:3306", "message": "both threads running"},
  {"name": "monitors", "status": "warn", "message": "1 monitor(s) configured", "fix": "run three monitors"}]}`

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// TestTopologyThroughMonitors: with a config holding no database password,
// topology --api skips a monitor that does not answer, reads the next one
// with the read token, and prints the tree and JSON of the direct command
// with the monitor's name and the snapshot's age. A wrong token stops with
// the API's message; no monitor answering names every monitor tried.
func TestTopologyThroughMonitors(t *testing.T) {
	dir := t.TempDir()
	const tok = "laptop-read-tok-7Zq"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+tok {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error": {"code": "unauthorized", "message": "a valid bearer token is required (security.api_read_token_file)", "blockers": []}}`))
			return
		}
		switch r.URL.Path {
		case "/api/v1/clusters":
			w.Write([]byte(fakeClusters))
		case "/api/v1/failovers":
			w.Write([]byte(`{"monitor": "mon2", "failovers": []}`))
		case "/api/v1/clusters/app1/check":
			w.Write([]byte(fakeCheck))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": {"code": "not_found", "message": "no API endpoint", "blockers": []}}`))
		}
	}))
	defer srv.Close()
	_, livePort, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	deadPort := closedPort(t)

	writeCfg := func(name, token, mon2Port string) string {
		tf := filepath.Join(dir, name+".token")
		os.WriteFile(tf, []byte(token+"\n"), 0o600)
		y := "security:\n  api_read_token_file: " + tf + "\n" +
			"monitors:\n  - name: mon1\n    address: 127.0.0.1\n    api_port: " + deadPort + "\n    gossip_port: 17001\n    raft_port: 17002\n" +
			"  - name: mon2\n    address: 127.0.0.1\n    api_port: " + mon2Port + "\n    gossip_port: 17003\n    raft_port: 17004\n" +
			"clusters:\n  - name: app1\n    user: myha\n    replication_user: repl\n    servers:\n      - address: 10.0.0.1\n      - address: 10.0.0.2\n"
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte(y), 0o600)
		return p
	}
	var all strings.Builder
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
		all.WriteString(out.String() + errb.String())
		return code, out.String() + errb.String()
	}
	good := writeCfg("laptop", tok, livePort)

	code, out := cli("topology", "--api", "--config", good)
	for _, want := range []string{
		"read from monitor mon2 at " + srv.URL + ": snapshot 1.5s old\n",
		"cluster app1   primary: 10.0.0.1:3306   (discovered in 2.5ms)\n",
		"10.0.0.1:3306  primary  10.11.9-MariaDB  RW  gtid 0-1-10\n",
		"└─ 10.0.0.2:3306  replica  10.11.9-MariaDB  ro  io:Yes sql:Yes  lag 0s  gtid 0-1-10\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("topology --api: exit %d, want %q in:\n%s", code, want, out)
		}
	}

	code, out = cli("topology", "--api", "--json", "--config", good)
	var v struct {
		Clusters []struct {
			Name    string  `json:"name"`
			Primary *string `json:"primary"`
			Servers []struct {
				Address string `json:"address"`
				Role    string `json:"role"`
			} `json:"servers"`
		} `json:"clusters"`
		Monitor struct {
			Name  string           `json:"name"`
			URL   string           `json:"url"`
			AgeMS map[string]int64 `json:"snapshot_age_ms"`
		} `json:"monitor"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("topology --api --json: exit %d, %v:\n%s", code, err, out)
	}
	if len(v.Clusters) != 1 || v.Clusters[0].Primary == nil || *v.Clusters[0].Primary != "10.0.0.1:3306" || len(v.Clusters[0].Servers) != 2 ||
		v.Clusters[0].Servers[1].Role != "replica" || v.Monitor.Name != "mon2" || v.Monitor.AgeMS["app1"] != 1500 {
		t.Fatalf("topology --api --json: %+v", v)
	}
	if strings.Contains(out, `"state"`) || strings.Contains(out, `"agreed_primary"`) {
		t.Errorf("the JSON carries the monitor's own fields, not the topology shape:\n%s", out)
	}

	// The URL given: that monitor only.
	if code, out = cli("topology", "--api", srv.URL, "--config", good); code != 0 || !strings.Contains(out, "read from monitor mon2 at "+srv.URL) {
		t.Errorf("topology --api URL: exit %d:\n%s", code, out)
	}

	// status and history through a monitor serve from this config too.
	if code, out = cli("history", "--daemon", srv.URL, "--config", good); code != 0 || !strings.Contains(out, "no failover recorded") {
		t.Errorf("history --daemon from a config without passwords: exit %d:\n%s", code, out)
	}
	if code, out = cli("status", "--daemon", srv.URL, "--config", good); code != 0 || !strings.Contains(out, "cluster app1: healthy") {
		t.Errorf("status --daemon from a config without passwords: exit %d:\n%s", code, out)
	}

	// The direct command needs the password, and says how to do without.
	if code, out = cli("topology", "--config", good); code != exitProblem || !strings.Contains(out, "clusters[0].password: missing") || !strings.Contains(out, "topology --api") {
		t.Errorf("direct topology without a password: exit %d:\n%s", code, out)
	}

	// A wrong token: the API's message, at the first monitor that answers.
	bad := writeCfg("wrong", "not-the-token", livePort)
	code, out = cli("topology", "--api", "--config", bad)
	if code != exitProblem || !strings.Contains(out, "monitor mon2") || !strings.Contains(out, "a valid bearer token is required (security.api_read_token_file)") {
		t.Errorf("wrong token: exit %d:\n%s", code, out)
	}

	// No monitor answering: each is named, with why.
	start := time.Now()
	none := writeCfg("none", tok, closedPort(t))
	code, out = cli("topology", "--api", "--config", none)
	if code != exitProblem || !strings.Contains(out, "no monitor answered; tried:") ||
		!strings.Contains(out, "mon1 (http://127.0.0.1:"+deadPort+")") || !strings.Contains(out, "mon2 (http://127.0.0.1:") || !strings.Contains(out, "connection refused") {
		t.Errorf("no monitor: exit %d:\n%s", code, out)
	}
	if time.Since(start) > 2*monitorReadTimeout {
		t.Errorf("refused connections took %s", time.Since(start))
	}
	// check --api: the monitor's checks, printed and exited as the
	// direct check (a warning: exit 1).
	code, out = cli("check", "--api", "--config", good)
	if code != exitWarn || !strings.Contains(out, "checked by monitor mon2 ("+srv.URL+") on its own snapshot\n") ||
		!strings.Contains(out, "WARN monitors") || !strings.Contains(out, "cluster app1 is healthy, with warnings: 0 failure(s), 1 warning(s)") {
		t.Errorf("check --api: exit %d:\n%s", code, out)
	}
	code, out = cli("check", "--api", "--json", "--config", good)
	var cr struct {
		Clusters []checkReport `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(out), &cr); err != nil || code != exitWarn || len(cr.Clusters) != 1 || cr.Clusters[0].Monitor == nil ||
		cr.Clusters[0].Monitor.Name != "mon2" || cr.Clusters[0].Status != "warn" {
		t.Errorf("check --api --json: exit %d, %v:\n%s", code, err, out)
	}
	if code, out = cli("check", "--api", "--config", none); code != exitCannot || !strings.Contains(out, "no monitor answered; tried:") {
		t.Errorf("check --api, no monitor: exit %d:\n%s", code, out)
	}
	if strings.Contains(all.String(), tok) {
		t.Fatal("the token in the CLI's output")
	}
}

func TestPickClustersAndAge(t *testing.T) {
	var ans apiClusters
	if err := json.Unmarshal([]byte(fakeClusters), &ans); err != nil {
		t.Fatal(err)
	}
	if _, err := pickClusters(ans, []string{"app1", "app2"}); err == nil || !strings.Contains(err.Error(), "does not watch cluster app2") {
		t.Errorf("missing cluster: %v", err)
	}
	ans.Clusters[0].TakenAt = time.Time{}
	if _, err := pickClusters(ans, []string{"app1"}); err == nil || !strings.Contains(err.Error(), "no snapshot of cluster app1 yet") {
		t.Errorf("no snapshot yet: %v", err)
	}
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	if got := snapshotAge(t0, t0.Add(2*time.Second), t0.Add(time.Hour)); got != 2*time.Second {
		t.Errorf("age on the monitor's clock: %s", got)
	}
	if got := snapshotAge(t0, time.Time{}, t0.Add(3*time.Second)); got != 3*time.Second {
		t.Errorf("age on ours when the monitor sends no time: %s", got)
	}
	if got := snapshotAge(t0, t0.Add(-time.Second), time.Time{}); got != 0 {
		t.Errorf("a snapshot from the future: %s", got)
	}
}

// A monitor that accepts the connection and never answers costs
// monitorReadTimeout, then the next one is tried.
func TestReadMonitorsBoundsEachMonitor(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer ok.Close()
	a := &app{configPath: filepath.Join(t.TempDir(), "none.yaml"), log: slog.New(slog.DiscardHandler)}
	start := time.Now()
	from, err := a.readMonitors(context.Background(), []monitorAPI{{Name: "slow", URL: hang.URL}, {Name: "fast", URL: ok.URL}}, "/x",
		func([]byte) error { return nil })
	took := time.Since(start)
	if err != nil || from.Name != "fast" || took < monitorReadTimeout || took > monitorReadTimeout+2*time.Second {
		t.Fatalf("from %v, err %v, after %s", from, err, took)
	}
}

// A no-primary report exits 1, as the direct command does.
func TestPrimaryInService(t *testing.T) {
	p := "a:1"
	r := topology.ClusterReport{Primary: &p, Servers: []topology.ServerReport{{Address: "a:1", Reachable: true}}}
	if !primaryInService(r) {
		t.Error("reachable primary not in service")
	}
	r.Servers[0].Reachable = false
	if primaryInService(r) {
		t.Error("unreachable primary in service")
	}
	if primaryInService(topology.ClusterReport{}) {
		t.Error("no primary in service")
	}
}

func TestMonitorAPIs(t *testing.T) {
	cfg := &config.Config{Monitors: []config.Monitor{{Name: "m1", Address: "10.0.0.1", APIPort: 8080}, {Name: "m2", Address: "fd00::2", APIPort: 9090}}}
	got, err := monitorAPIs(cfg, "")
	if err != nil || len(got) != 2 || got[0].URL != "http://10.0.0.1:8080" || got[1].URL != "http://[fd00::2]:9090" {
		t.Errorf("monitors over http: %v %v", got, err)
	}
	cfg.Security.APICertFile = "/etc/myha/tls/{name}.crt"
	if got, _ := monitorAPIs(cfg, ""); got[0].URL != "https://10.0.0.1:8080" {
		t.Errorf("api_cert_file set: %v", got)
	}
	if _, err := monitorAPIs(&config.Config{}, ""); err == nil || !strings.Contains(err.Error(), "lists no monitors") {
		t.Errorf("no monitors: %v", err)
	}
	for _, bad := range []string{"10.0.0.5:8080", "ftp://x", "http://", "http://h:8080/api/v1"} {
		if _, err := monitorAPIs(nil, bad); err == nil || !strings.Contains(err.Error(), "--api") {
			t.Errorf("--api %q accepted: %v", bad, err)
		}
	}
	if got, err := monitorAPIs(nil, "https://h:8080/"); err != nil || len(got) != 1 || got[0].URL != "https://h:8080" {
		t.Errorf("given URL: %v %v", got, err)
	}
}

// FuzzTopologyAnswer: whatever a monitor (or something posing as one)
// answers, decoding it, picking the clusters and drawing the tree never
// panics; a picked cluster always has a snapshot.
func FuzzTopologyAnswer(f *testing.F) {
	f.Add([]byte(fakeClusters))
	f.Add([]byte(`{"clusters": [{"name": "app1", "taken_at": "2026-12-01T03:00:00Z", "primary": "b:1", "servers": [{"address": "a:1", "source": "b:1", "co_primary_of": "b:1"}, {"address": "b:1", "source": "a:1", "reachable": true, "io_running": true}]}]}`))
	f.Add([]byte(`{"clusters": [{"name": "app1", "taken_at": "2026-12-01T03:00:00Z", "servers": [{"address": "a:1", "source": "a:1", "reachable": false, "errors": ["unreachable: "]}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var ans apiClusters
		if json.Unmarshal(body, &ans) != nil {
			return
		}
		reports, err := pickClusters(ans, []string{"app1"})
		if err != nil {
			return
		}
		if len(reports) != 1 || reports[0].TakenAt.IsZero() {
			t.Fatalf("picked %d reports without a snapshot", len(reports))
		}
		var b bytes.Buffer
		reports[0].WriteTree(&b)
		primaryInService(reports[0])
	})
}
