package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/myha/myha/topology"
)

// Panics are bugs, but a monitor that dies on one stops watching every
// cluster. Every goroutine fed by the network or by database servers runs
// under guard or supervise: a panic is logged with its stack and the rest of
// the daemon carries on.

// guard runs f and turns a panic into a logged error. It reports whether f
// panicked.
func guard(log *slog.Logger, what string, f func(), attrs ...any) (panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
			log.Error("recovered from a panic: "+what, append(attrs, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))...)
		}
	}()
	f()
	return false
}

// supervise runs f until ctx ends, restarting it after a panic (after
// backoff, so a panic on every input does not spin).
func supervise(ctx context.Context, log *slog.Logger, what string, backoff time.Duration, f func(context.Context), attrs ...any) {
	for {
		if !guard(log, what, func() { f(ctx) }, attrs...) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// recoverHandler answers 500 instead of letting a panic in a handler reach
// net/http (which would log it outside slog and drop the connection).
func recoverHandler(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("recovered from a panic in an HTTP handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, codeInternal, "internal error (logged)", nil, nil)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// recoverDialer turns a panic in a database driver (a server sending
// absurd answers) into an error for that server alone: the driver runs in
// discovery's per-server goroutines, where a panic would end the process.
type recoverDialer struct {
	inner topology.Dialer
	log   *slog.Logger
}

func panicErr(log *slog.Logger, addr, op string, p any) error {
	err := fmt.Errorf("%s: %s: driver panic: %v", addr, op, p)
	if log != nil {
		log.Error("recovered from a panic talking to a server", "server", addr, "op", op, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}
	return err
}

func (d recoverDialer) Dial(ctx context.Context, addr string) (q topology.Querier, err error) {
	defer func() {
		if p := recover(); p != nil {
			q, err = nil, panicErr(d.log, addr, "connect", p)
		}
	}()
	q, err = d.inner.Dial(ctx, addr)
	if err != nil || q == nil {
		return q, err
	}
	return recoverQuerier{inner: q, addr: addr, log: d.log}, nil
}

type recoverQuerier struct {
	inner topology.Querier
	addr  string
	log   *slog.Logger
}

func (q recoverQuerier) Query(ctx context.Context, stmt string, args ...any) (rows []topology.Row, err error) {
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, panicErr(q.log, q.addr, "query", p)
		}
	}()
	return q.inner.Query(ctx, stmt, args...)
}

func (q recoverQuerier) Exec(ctx context.Context, stmt string, args ...any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicErr(q.log, q.addr, "exec", p)
		}
	}()
	return q.inner.Exec(ctx, stmt, args...)
}

func (q recoverQuerier) Close() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicErr(q.log, q.addr, "close", p)
		}
	}()
	return q.inner.Close()
}
