package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// hookEvent is what the test reads of a notified event.
type hookEvent struct {
	Seq        uint64 `json:"seq"`
	Kind       string `json:"kind"`
	Cluster    string `json:"cluster"`
	Monitor    string `json:"monitor"`
	OldPrimary string `json:"old_primary"`
	NewPrimary string `json:"new_primary"`
	To         string `json:"to"`
	Report     *struct {
		Steps []json.RawMessage `json:"steps"`
	} `json:"report"`
}

// hookReceiver is a real HTTP webhook receiver in the test process,
// listening on the lab bridge's address (the monitors' hosts reach it). It
// can hang (take requests and never answer), be down (nothing listens)
// or be up (answer 200 and record the event).
type hookReceiver struct {
	addr string
	mu   sync.Mutex
	srv  *http.Server
	hang bool
	got  []hookEvent // answered 200, in arrival order
	hung int         // requests taken while hanging
	keys []string    // the secret header of each delivered event
}

func (r *hookReceiver) handle(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	hang := r.hang
	if hang {
		r.hung++
	}
	r.mu.Unlock()
	if hang {
		<-req.Context().Done() // never answers; ends when the server closes
		return
	}
	var ev hookEvent
	if err := json.NewDecoder(req.Body).Decode(&ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got, r.keys = append(r.got, ev), append(r.keys, req.Header.Get("X-Hook-Key"))
	r.mu.Unlock()
}

func (r *hookReceiver) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; the kernel may hold it briefly.
	waitFor(t, "the receiver's port", 5*time.Second, func() bool { ln, err = net.Listen("tcp", r.addr); return err == nil })
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

// down closes the listener and every connection (hung requests included).
func (r *hookReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *hookReceiver) delivered() []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookEvent{}, r.got...)
}

// The webhook on a real failover: kill -9 of the primary on a lab with
// agents and a VIP. The receiver first hangs (takes the POSTs and never
// answers): the failover must not wait for it. Then it is down (nothing
// listens) for a while, then up: every event of the failover arrives,
// retried, in order — suspect, dead, failover started, the VIP lease
// moving to the new primary, failover finished with its timeline.
func TestWebhookRecordsAFailover(t *testing.T) {
	ctx := context.Background()
	v := startVIPLab(t, lab.Options{Servers: 3})
	must(t, v.CreateWriteTable(ctx, "w"))

	const secret = "hook-s3cr3t-value"
	secretFile := filepath.Join(v.dir, "hook.secret")
	must(t, os.WriteFile(secretFile, []byte(secret+"\n"), 0o600))
	port, err := lab.FreePort()
	must(t, err)
	rcv := &hookReceiver{addr: net.JoinHostPort(fmt.Sprintf("198.18.%d.1", v.ID), fmt.Sprint(port)), hang: true}
	rcv.start(t)
	t.Cleanup(rcv.down)
	const hookTimeout = 10 * time.Second
	b, _ := readFile(v.cfg)
	writeFile(v.cfg, strings.Replace(b, "clusters:\n", fmt.Sprintf("notify:\n  webhook:\n    url: http://%s/hook\n    auth_header: X-Hook-Key\n"+
		"    auth_value_file: %s\n    timeout: %s\n    retries: 12\nclusters:\n", rcv.addr, secretFile, hookTimeout), 1))
	for _, h := range v.mons {
		v.kill(h.Name)
		v.start(t, h)
	}
	v.waitHealthy(t)
	v.waitHolder(t, "db1", 20*time.Second)

	// The receiver hangs: the failover runs as fast as without it.
	killed := time.Now()
	must(t, v.Server("db1").Kill())
	rep := v.oneFailoverEverywhere(t)
	recorded := time.Since(killed) - time.Second // oneFailoverEverywhere waits 1 s for a second failover
	if rep.Result != "success" {
		t.Fatalf("failover: %+v", rep)
	}
	rcv.mu.Lock()
	hung, early := rcv.hung, len(rcv.got)
	rcv.mu.Unlock()
	if hung == 0 || early != 0 {
		t.Fatalf("the receiver should have taken a POST and answered none: hung %d, answered %d", hung, early)
	}
	if recorded >= hookTimeout {
		t.Fatalf("kill → failover recorded took %s with a hanging webhook (timeout %s): the failover waited for it", recorded, hookTimeout)
	}
	t.Logf("receiver hanging: kill -9 → failover recorded on every monitor in %s (webhook timeout %s, %d POST(s) hanging); new primary writable %vms after the failover started",
		recorded.Round(time.Millisecond), hookTimeout, hung, ptr(rep.WritableAfterMS))

	// Down for a while: the hung POST breaks, retries are refused.
	rcv.down()
	rcv.mu.Lock()
	rcv.hang = false
	rcv.mu.Unlock()
	time.Sleep(3 * time.Second) // the receiver stays down this long (the scenario, not a wait for a condition)
	back := time.Now()
	rcv.start(t)
	var got []hookEvent
	waitFor(t, "every event of the failover at the receiver", 60*time.Second, func() bool {
		got = rcv.delivered()
		for _, e := range got {
			if e.Kind == "failover_finished" {
				return true
			}
		}
		return false
	})
	t.Logf("receiver back: the failover's events arrived within %s", time.Since(back).Round(time.Millisecond))

	var kinds []string
	first := map[string]int{}
	for i, e := range got {
		kinds = append(kinds, e.Kind)
		if _, ok := first[e.Kind]; !ok {
			first[e.Kind] = i
		}
		if rcv.keys[i] != secret {
			t.Errorf("event %d without the secret header", i)
		}
	}
	t.Logf("events in arrival order: %s", strings.Join(kinds, " → "))
	order := []string{"primary_suspect", "primary_dead", "failover_started", "failover_finished"}
	for i, k := range order {
		if _, ok := first[k]; !ok {
			t.Fatalf("no %s event: %v", k, kinds)
		}
		if i > 0 && first[order[i-1]] > first[k] {
			t.Fatalf("%s before %s: %v", k, order[i-1], kinds)
		}
	}
	lease, ok := first["lease_moved"]
	if !ok || got[lease].To != rep.NewPrimary || lease < first["failover_started"] {
		t.Fatalf("lease_moved to %s after failover_started: %v (%+v)", rep.NewPrimary, kinds, got)
	}
	fin := got[first["failover_finished"]]
	if fin.NewPrimary != rep.NewPrimary || fin.Report == nil || len(fin.Report.Steps) == 0 {
		t.Fatalf("failover_finished without the timeline: %+v", fin)
	}
	seen := map[uint64]bool{}
	monitors := map[string]bool{}
	for _, e := range got {
		monitors[e.Monitor] = true
		seen[e.Seq] = true
	}
	if len(monitors) != 1 {
		t.Fatalf("events from %v: only the leader notifies", monitors)
	}
	// The VIP really moved with the lease.
	newP := map[string]string{v.Server("db2").Addr(): "db2", v.Server("db3").Addr(): "db3"}[rep.NewPrimary]
	v.waitHolder(t, newP, 15*time.Second)

	// The secret never reaches the monitors' logs.
	for _, h := range v.mons {
		b, err := os.ReadFile(v.logs[h.Name].Name())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Fatalf("the webhook secret is in %s's log", h.Name)
		}
	}
	t.Logf("%d events delivered (%d distinct), from %v", len(got), len(seen), monitors)
}
