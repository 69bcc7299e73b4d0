package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/myha/myha/failover"
)

// handler serves the HTTP API. Reads are open; changes need the bearer
// token and run on the leader (a follower forwards them).
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "monitor": d.self.Name})
	})
	mux.HandleFunc("GET /leader", func(w http.ResponseWriter, r *http.Request) {
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
		writeJSON(w, http.StatusOK, map[string]any{"monitor": d.self.Name, "leader": name, "clusters": out})
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
		plan := failover.Build(&snap, cm.cfg.Policy, failover.Request{Kind: failover.KindFailover, Hypothetical: true})
		checks := failover.RunChecks(failover.CheckInput{Snapshot: &snap, Policy: cm.cfg.Policy})
		checks = append(checks, failover.CandidateCheck(&plan))
		hb := failover.Check{Name: "replica_heartbeat", Status: failover.OK, Message: "every replica's heartbeat period lets its silence confirm a dead primary within failover.down_after"}
		if len(verdict.Warnings) > 0 {
			hb.Status, hb.Message, hb.Fix = failover.Warn, strings.Join(verdict.Warnings, "; "), "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=1 on each replica named"
		}
		checks = append(checks, hb, ServerMajorityCheck(len(cm.cfg.Spec.Servers)))
		if n := len(d.cfg.Monitors); n < 3 {
			checks = append(checks, failover.Check{Name: "monitors", Status: failover.Warn,
				Message: fmt.Sprintf("%d monitor(s) configured: with fewer than 3, losing one stops automatic failover or leaves no quorum", n),
				Fix:     "run three monitors on separate hosts"})
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": cm.cfg.Spec.Name, "status": failover.Summarize(checks), "checks": checks, "plan": plan})
	})
	mux.HandleFunc("GET /api/failovers", func(w http.ResponseWriter, r *http.Request) {
		st := d.fsm.snapshot()
		writeJSON(w, http.StatusOK, map[string]any{"monitor": d.self.Name, "failovers": nonNilReports(st.History), "in_progress": st.Open, "journal": st.Journal})
	})
	mux.HandleFunc("POST /api/clusters/{name}/{action}", d.mutate)
	return mux
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

// mutate runs failover, switchover and ack: authenticated, on the leader,
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
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action " + action})
	}
}

func (d *Daemon) authorized(r *http.Request) bool {
	if d.cfg.APIToken == "" {
		return false // no token configured: changes over the API are off
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(d.cfg.APIToken)) == 1
}

// forward passes a change to the leader's API.
func (d *Daemon) forward(w http.ResponseWriter, r *http.Request) {
	name, addr := d.leaderAPI()
	if addr == "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no leader: the monitors have no quorum"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+r.URL.RequestURI(), nil)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": fmt.Sprintf("forwarding to the leader %s: %v", name, err)})
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
