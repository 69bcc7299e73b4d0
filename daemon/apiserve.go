package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// refusalLogEvery spaces the log lines about refused sources: a scan or a
// flood from outside the allowlist must not flood the log too.
const refusalLogEvery = 10 * time.Second

// apiGate refuses requests from sources outside the allowlist
// (security.api_allow) with 403, before any token is looked at.
type apiGate struct {
	allow []netip.Prefix // empty: every source
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	lastLog time.Time
	quiet   int // refusals not logged since lastLog
}

func newAPIGate(allow []netip.Prefix, log *slog.Logger, now func() time.Time) *apiGate {
	return &apiGate{allow: allow, log: log, now: now}
}

// allowed reports whether a request from remote (host:port) may proceed.
func (g *apiGate) allowed(remote string) bool {
	if len(g.allow) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (g *apiGate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.allowed(r.RemoteAddr) {
			g.refused(r)
			writeError(w, http.StatusForbidden, codeForbidden, "this address may not use the API (security.api_allow)", nil, nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refused logs a refusal, at most once per refusalLogEvery, with how many
// went unlogged in between. Only the source and the path are logged: never
// headers, which may carry a token.
func (g *apiGate) refused(r *http.Request) {
	g.mu.Lock()
	now := g.now()
	if !g.lastLog.IsZero() && now.Sub(g.lastLog) < refusalLogEvery {
		g.quiet++
		g.mu.Unlock()
		return
	}
	quiet := g.quiet
	g.lastLog, g.quiet = now, 0
	g.mu.Unlock()
	g.log.Warn("API request refused: source not in security.api_allow", "from", r.RemoteAddr, "method", r.Method,
		"path", r.URL.Path, "refused_unlogged_since_last", quiet)
}

// apiAllowlist is the configured allowlist plus every monitor's address
// (followers forward changes to the leader's API). Monitor host names are
// resolved once, bounded; one that does not resolve is logged and left
// out. Empty when no allowlist is configured.
func apiAllowlist(ctx context.Context, allow []netip.Prefix, monitors []MonitorAddr, log *slog.Logger) []netip.Prefix {
	if len(allow) == 0 {
		return nil
	}
	out := append([]netip.Prefix(nil), allow...)
	for _, m := range monitors {
		if ip, err := netip.ParseAddr(m.Address); err == nil {
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", m.Address)
		cancel()
		if err != nil {
			log.Warn("security.api_allow: cannot resolve a monitor's address; its forwarded requests will be refused", "monitor", m.Name, "address", m.Address, "err", err)
			continue
		}
		for _, ip := range ips {
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		}
	}
	return out
}

// serveAPI serves h on ln, over HTTPS when cert is set. The key pair is
// loaded before serving, so a bad file is an error at start rather than
// an API that silently never answers. The server's own errors (TLS
// handshakes that fail) go to log.
func serveAPI(ln net.Listener, h http.Handler, cert *TLSFiles, log *slog.Logger) (*http.Server, error) {
	srv := newAPIServer(ln.Addr().String(), h)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	if cert == nil {
		go srv.Serve(ln)
		return srv, nil
	}
	pair, err := tls.LoadX509KeyPair(cert.Cert, cert.Key)
	if err != nil {
		return nil, fmt.Errorf("security.api_cert_file/api_key_file: %w", err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	go srv.ServeTLS(ln, "", "")
	return srv, nil
}
