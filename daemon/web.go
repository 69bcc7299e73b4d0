package daemon

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"path"

	"github.com/myha/myha/failover"
)

// The live page (index.html, app.js, app.css) is compiled into the binary:
// no CDN, no external font, nothing fetched at run time but this API.
//
//go:embed web
var webFiles embed.FS

// webPolicy confines the page to this origin: scripts and styles only from
// the embedded files (no inline code), requests only to this API, no
// framing. Data from servers (versions, errors) is put in the page as
// text, never as markup.
const webPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webAsset is one embedded file as served.
type webAsset struct {
	body  []byte
	ctype string
	etag  string
}

// webAssets reads the embedded files once per handler.
func webAssets() map[string]webAsset {
	out := map[string]webAsset{}
	entries, _ := webFiles.ReadDir("web")
	for _, e := range entries {
		b, err := webFiles.ReadFile("web/" + e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[e.Name()] = webAsset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}

func serveAsset(w http.ResponseWriter, r *http.Request, a webAsset) {
	h := w.Header()
	h.Set("Content-Security-Policy", webPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidated each load: a monitor upgraded in place serves its own page.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.ctype)
	w.Write(a.body)
}

// webRoutes adds the page and what it reads. The page's files are open
// (they hold no data); the endpoints it reads follow the read-token rule
// of every other GET; its actions are the API's own POSTs, which need the
// write token and run on the leader.
//
// Tokens: the page sends the token in the Authorization header on every
// request, the live stream included — it reads GET /api/events with
// fetch() and a stream reader rather than EventSource, which cannot set
// headers. So no second kind of credential exists: no token in a URL
// (URLs end up in proxy and access logs, browser history and Referer
// headers), no cookie (a cookie is sent by the browser on requests other
// sites make, which would need CSRF defences on every POST), no ticket
// store to bound and expire. The page keeps the token in sessionStorage:
// gone when the tab closes, never sent to another origin.
func (d *Daemon) webRoutes(open, reads *http.ServeMux) {
	assets := webAssets()
	open.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { serveAsset(w, r, assets["index.html"]) })
	open.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.PathValue("file")]
		if !ok || r.PathValue("file") == "index.html" {
			http.NotFound(w, r)
			return
		}
		serveAsset(w, r, a)
	})
	hub := newEventHub(d.log, d.webKey, d.webEvents)
	apiRoute(reads, "GET", "/events", hub.serve)
	apiRoute(reads, "GET", "/access", d.access)
	apiRoute(reads, "GET", "/clusters/{name}/plan", d.plan)
}

// access tells the page what the token it holds allows: reads (it got
// here) and whether changes are possible, so a read-only page shows no
// action at all. The POSTs check the write token again whatever this says.
func (d *Daemon) access(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"monitor": d.self.Name, "read": true, "write": d.authorized(r),
		"read_token_required": d.cfg.APIReadToken != "", "writes_enabled": d.cfg.APIToken != ""})
}

// plan answers GET /api/clusters/{name}/plan?kind=switchover&new_primary=
// with the plan `myha switchover --dry-run` prints: the same planner, from
// this monitor's latest snapshot. It changes nothing; the leader plans
// again from a fresh discovery when asked to act, and refuses then if the
// cluster no longer allows it.
func (d *Daemon) plan(w http.ResponseWriter, r *http.Request) {
	cm := d.cluster(r.PathValue("name"))
	if cm == nil {
		noCluster(w, r.PathValue("name"))
		return
	}
	kind := failover.Kind(r.URL.Query().Get("kind"))
	switch kind {
	case "":
		kind = failover.KindSwitchover
	case failover.KindSwitchover, failover.KindFailover:
	default:
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("kind %q: use switchover or failover", kind), nil, nil)
		return
	}
	np := r.URL.Query().Get("new_primary")
	if np != "" && !hasServer(cm, np) {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("new_primary %s is not a server of cluster %s (use host:port as in the config)", np, cm.cfg.Spec.Name), nil, nil)
		return
	}
	p, age, ok := cm.planPreview(kind, np)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "this monitor has not probed the cluster yet; try again in a second", nil, nil)
		return
	}
	var text bytes.Buffer
	p.WriteText(&text)
	writeJSON(w, http.StatusOK, map[string]any{"plan": p, "text": text.String(), "ok": p.OK(), "snapshot_age_ms": age.Milliseconds()})
}

func hasServer(cm *clusterMon, addr string) bool {
	for _, s := range cm.cfg.Spec.Servers {
		if s.Address == addr {
			return true
		}
	}
	return false
}
