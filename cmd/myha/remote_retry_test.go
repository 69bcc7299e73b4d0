package main

// A change monitor 1 received (and, for all the CLI knows, ran) but whose
// answer was lost (a monitor restart, the API's write timeout on a long
// switchover) is not sent again to monitor 2, which would forward it to
// the leader as a second switchover; the CLI says to look before retrying.
// FAKE monitors (httptest). Found by review.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestSwitchoverNotResentAfterALostAnswer(t *testing.T) {
	dir := t.TempDir()
	const tok = "op-tok-7Rk"
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var first, second atomic.Int32
	m1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.Add(1) // the request arrived: the monitor may have run it
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close() // the answer is lost
	}))
	defer m1.Close()
	m2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		second.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"error":{"code":"blocked","message":"second switchover planned","blockers":[]}}`)
	}))
	defer m2.Close()
	cfg := fakeMonitorsConfig(t, dir, "c.yaml", []string{"127.0.0.1:3306", "127.0.0.1:3307"}, portOf(m1.URL), portOf(m2.URL))
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"switchover", "--cluster", "app1", "--yes", "--config", cfg}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	t.Logf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	if first.Load() == 1 && second.Load() > 0 {
		t.Fatalf("the switchover monitor 1 received (answer lost) was sent again to monitor 2 (%d time(s)): a second switchover", second.Load())
	}
	if code != exitProblem || !strings.Contains(errb.String(), "answer was lost") || !strings.Contains(errb.String(), "myha status") || strings.Contains(errb.String(), "run it again with --local") {
		t.Fatalf("a lost answer: exit %d, want %d and advice to check status, not --local\n%s", code, exitProblem, errb.String())
	}
}

// A switchover the leader ran to "partial" (the new primary takes writes,
// a replica was not repointed) exits 1 through the monitors as with
// --local (README: "1 done with problems"). FAKE monitor. Found by review.
func TestPartialThroughMonitorsExitsOne(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"app1-3","epoch":3,"cluster":"app1","kind":"switchover","old_primary":"127.0.0.1:3306","new_primary":"127.0.0.1:3307","result":"partial","promoted":true,"error":"the new primary takes writes, but some steps failed (see warnings)","steps":[],"warnings":["repoint on 127.0.0.1:3308 failed"]}`)
	}))
	defer m.Close()
	cfg := fakeMonitorsConfig(t, dir, "c.yaml", []string{"127.0.0.1:3306", "127.0.0.1:3307", "127.0.0.1:3308"}, portOf(m.URL))
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"switchover", "--cluster", "app1", "--yes", "--config", cfg}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if code != exitWarn {
		t.Fatalf("partial switchover through the monitors: exit %d, want %d (README: 1 done with problems)\n%s\n%s", code, exitWarn, out.String(), errb.String())
	}
}
