package daemon

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/myha/myha/failover"
)

// API server bounds: every request is bounded in time and size. A change
// (failover, switchover) answers when it is done, so writes may take
// minutes; reads of a slow client are cut after apiReadTimeout.
const (
	apiReadTimeout  = 10 * time.Second
	apiWriteTimeout = 6 * time.Minute
	apiIdleTimeout  = 60 * time.Second
	apiMaxHeader    = 16 << 10
	apiMaxBody      = 64 << 10
)

// newAPIServer is an http.Server with every timeout set and bodies limited.
func newAPIServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: limitBody(h), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: apiReadTimeout,
		WriteTimeout: apiWriteTimeout, IdleTimeout: apiIdleTimeout, MaxHeaderBytes: apiMaxHeader}
}

// limitBody refuses request bodies over apiMaxBody (the API reads none).
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > apiMaxBody {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request body too large"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, apiMaxBody)
		h.ServeHTTP(w, r)
	})
}

// apiHandler is the whole API as served: the allowlist first, then panics
// recovered per request, then the routes.
func (d *Daemon) apiHandler(ctx context.Context) http.Handler {
	gate := newAPIGate(apiAllowlist(ctx, d.cfg.APIAllow, d.cfg.Monitors, d.log), d.log, d.now)
	return gate.wrap(recoverHandler(d.log, d.handler()))
}

// handler serves the HTTP API. /health and /leader are open; reads need
// the read (or write) token when one is configured; changes always need
// the write token and run on the leader (a follower forwards them).
func (d *Daemon) handler() http.Handler {
	open, mux := http.NewServeMux(), http.NewServeMux()
	readers := d.readAuth(mux)
	open.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "monitor": d.self.Name})
	})
	open.HandleFunc("GET /leader", func(w http.ResponseWriter, r *http.Request) {
		name, _ := d.leaderAPI()
		code := http.StatusServiceUnavailable
		if d.isLeader() {
			code = http.StatusOK
		}
		writeJSON(w, code, map[string]any{"monitor": d.self.Name, "leader": name, "is_leader": d.isLeader()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.met.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/clusters", func(w http.ResponseWriter, r *http.Request) {
		d.mu.RLock()
		var out []map[string]any
		for _, cm := range d.clusters {
			out = append(out, cm.status())
		}
		d.mu.RUnlock()
		sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]["name"]) < fmt.Sprint(out[j]["name"]) })
		name, _ := d.leaderAPI()
		writeJSON(w, http.StatusOK, map[string]any{"monitor": d.self.Name, "leader": name, "clusters": out, "insecure": d.cfg.Insecure})
	})
	mux.HandleFunc("GET /api/clusters/{name}/check", func(w http.ResponseWriter, r *http.Request) {
		cm := d.cluster(r.PathValue("name"))
		if cm == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such cluster"})
			return
		}
		cm.mu.Lock()
		snap, verdict := cm.snap, cm.verdict
		cm.mu.Unlock()
		plan := failover.Build(&snap, cm.policy(), failover.Request{Kind: failover.KindFailover, Hypothetical: true})
		checks := failover.RunChecks(failover.CheckInput{Snapshot: &snap, Policy: cm.cfg.Policy})
		checks = append(checks, failover.CandidateCheck(&plan))
		hb := failover.Check{Name: "replica_heartbeat", Status: failover.OK, Message: "every replica's heartbeat period lets its silence confirm a dead primary within failover.down_after"}
		if len(verdict.Warnings) > 0 {
			hb.Status, hb.Message, hb.Fix = failover.Warn, strings.Join(verdict.Warnings, "; "), "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=1 on each replica named"
		}
		checks = append(checks, hb, ServerMajorityCheck(len(cm.cfg.Spec.Servers)))
		if cm.cfg.Capture != nil {
			checks = append(checks, failover.CaptureCheck(&snap, cm.capturePositions(r.Context()))...)
		}
		if n := len(d.cfg.Monitors); n < 3 {
			checks = append(checks, failover.Check{Name: "monitors", Status: failover.Warn,
				Message: fmt.Sprintf("%d monitor(s) configured: with fewer than 3, losing one stops automatic failover or leaves no quorum", n),
				Fix:     "run three monitors on separate hosts"})
		}
		checks = cm.operatorChecks(checks)
		writeJSON(w, http.StatusOK, map[string]any{"name": cm.cfg.Spec.Name, "status": failover.Summarize(checks), "checks": checks, "plan": plan})
	})
	mux.HandleFunc("GET /api/failovers", func(w http.ResponseWriter, r *http.Request) {
		st := d.fsm.snapshot()
		writeJSON(w, http.StatusOK, map[string]any{"monitor": d.self.Name, "failovers": nonNilReports(st.History), "in_progress": st.Open, "journal": st.Journal})
	})
	mux.HandleFunc("POST /api/clusters/{name}/{action}", d.mutate)
	d.webRoutes(open, mux)
	open.Handle("/", readers)
	return open
}

// readAuth lets a request through when no read token is configured, or it
// carries the read or the write token. Writes check the write token again.
func (d *Daemon) readAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.cfg.APIReadToken != "" && !tokenOK(r, d.cfg.APIReadToken) && !tokenOK(r, d.cfg.APIToken) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is required (security.api_read_token_file)"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func tokenOK(r *http.Request, want string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func nonNilReports(r []failover.Report) []failover.Report {
	if r == nil {
		return []failover.Report{}
	}
	return r
}

func (d *Daemon) cluster(name string) *clusterMon {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.clusters[name]
}

// mutate runs failover, switchover, ack, pause, resume and maintenance: authenticated, on the leader,
// serialized with automatic failovers (same per-cluster guard and lock).
func (d *Daemon) mutate(w http.ResponseWriter, r *http.Request) {
	if !d.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is required (security.api_token_file)"})
		return
	}
	action := r.PathValue("action")
	cm := d.cluster(r.PathValue("name"))
	if cm == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such cluster"})
		return
	}
	if !d.isLeader() {
		d.forward(w, r)
		return
	}
	switch action {
	case "ack":
		if err := d.apply(command{Op: "ack", Cluster: cm.cfg.Spec.Name, At: d.now()}); err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"cluster": cm.cfg.Spec.Name, "acknowledged": true})
	case "failover", "switchover":
		req := failover.Request{Kind: failover.Kind(action), NewPrimary: r.URL.Query().Get("new_primary"), Force: r.URL.Query().Get("force") == "true"}
		rep, err := cm.failover(r.Context(), req, 0, false)
		if err != nil {
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "report": rep})
			return
		}
		code := http.StatusOK
		if rep.Result != failover.ResultSuccess && rep.Result != failover.ResultPartial {
			code = http.StatusConflict
		}
		writeJSON(w, code, rep)
	case "pause", "resume", "maintenance":
		d.operatorAction(w, r, cm, action)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action " + action})
	}
}

// authorized checks the write token; without one, changes over the API
// are off.
func (d *Daemon) authorized(r *http.Request) bool { return tokenOK(r, d.cfg.APIToken) }

// forward passes a change to the leader's API.
func (d *Daemon) forward(w http.ResponseWriter, r *http.Request) {
	name, addr := d.leaderAPI()
	if addr == "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no leader: the monitors have no quorum"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	scheme := "http://"
	if d.cfg.APICert != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, scheme+addr+r.URL.RequestURI(), nil)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	resp, err := d.apiClient().Do(req)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": fmt.Sprintf("forwarding to the leader %s: %v", name, err)})
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// apiClient reaches another monitor's API: bounded, and over HTTPS
// trusting the deployment's CA.
func (d *Daemon) apiClient() *http.Client {
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, TLSHandshakeTimeout: 5 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute, MaxIdleConns: 2, IdleConnTimeout: time.Minute}
	if d.cfg.APICert != nil && d.cfg.TLS != nil {
		if pool, _, err := loadTLS(*d.cfg.TLS); err == nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
