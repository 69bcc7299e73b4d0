package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The CLI sends ack, pause, resume and maintenance to the config's
// monitors in order, skipping one that does not answer (mon1 here: a
// closed port) for the next (an httptest server standing in for a
// monitor's API: a fake, it only records requests). When none answers, ack
// says to use --local and what that risks; pause says there is no local
// mode. --local ack warns that the monitors' block stays.
func TestCLIGoesThroughTheMonitors(t *testing.T) {
	dir := t.TempDir()
	const tok = "op-tok-7Rk"
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"cluster":"app1","paused":true}`)
	}))
	defer srv.Close()
	_, livePort, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	_, deadPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()

	writeCfg := func(name string, ports ...string) string {
		return fakeMonitorsConfig(t, dir, name, []string{"127.0.0.1:3306", "127.0.0.1:3307"}, ports...)
	}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	both := writeCfg("both.yaml", deadPort, livePort)
	if code, out, errs := cli("pause", "--cluster", "app1", "--for", "2h", "--reason", "upgrade", "--config", both); code != 0 || !strings.Contains(out, "Manual failover and switchover") {
		t.Fatalf("pause through the second monitor: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := cli("maintenance", "on", "--cluster", "app1", "--server", "127.0.0.1:3307", "--config", both); code != 0 {
		t.Fatalf("maintenance: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := cli("maintenance", "on", "--cluster", "app1", "--server", "127.0.0.1:3399", "--config", both); code != exitProblem || !strings.Contains(errs, "not a server of cluster app1") {
		t.Fatalf("maintenance of an unknown server: exit %d\n%s", code, errs)
	}
	if code, out, errs := cli("ack", "--cluster", "app1", "--config", both); code != 0 || !strings.Contains(out, "acknowledged through the monitors") {
		t.Fatalf("ack: exit %d\n%s\n%s", code, out, errs)
	}
	mu.Lock()
	want := []string{
		"POST /api/v1/clusters/app1/pause?for=2h0m0s&reason=upgrade Bearer " + tok,
		"POST /api/v1/clusters/app1/maintenance?server=127.0.0.1%3A3307&state=on Bearer " + tok,
		"POST /api/v1/clusters/app1/ack Bearer " + tok,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the monitor received:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mu.Unlock()

	none := writeCfg("none.yaml", deadPort)
	if code, _, errs := cli("ack", "--cluster", "app1", "--config", none); code != exitProblem || !strings.Contains(errs, "no monitor answered") || !strings.Contains(errs, "--local") || !strings.Contains(errs, "bypasses the monitors") {
		t.Fatalf("ack with no monitor answering: exit %d\n%s", code, errs)
	}
	if code, _, errs := cli("pause", "--cluster", "app1", "--config", none); code != exitProblem || !strings.Contains(errs, "no local mode") {
		t.Fatalf("pause with no monitor answering: exit %d\n%s", code, errs)
	}
	if code, out, errs := cli("ack", "--cluster", "app1", "--local", "--config", none); code != 0 || !strings.Contains(errs, "the monitors' block stays in force") || !strings.Contains(out, "acknowledged in") {
		t.Fatalf("ack --local: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := cli("pause", "--cluster", "app1", "--for", "3600", "--config", both); code != exitProblem || !strings.Contains(errs, "unit") {
		t.Fatalf("pause --for without a unit: exit %d\n%s", code, errs)
	}
}
