package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/myha/myha/topology"
)

// poolDialer keeps each server's probe connection open between probes:
// a fresh connection per server per interval (TCP, handshake, login,
// session setup) was most of a probe's cost, and thousands of servers make
// thousands of logins a second. It serves the prober only; failovers and
// corrections dial their own sessions.
//
// Detection keeps its bounds: the first statement on a reused connection
// must answer within the connect timeout, so a server cut off is reported
// as fast as a connect that times out (as a connect error); one that
// closed the session (a restart, wait_timeout) is redialled at once and
// the statement sent again on the new session; a server that failed its
// last probe is always dialled afresh (through the fast-fail dialer); and
// a connection that saw an error other than the server's own answer to a
// statement (a broken or timed-out session) is closed, never reused. The
// check rides on the probe's first query: a separate SELECT 1 was a fifth
// of a routine probe's round trips. A write (Exec) still gets its own
// SELECT 1 first: it may take longer than a connect, and it is never
// sent twice.
type poolDialer struct {
	inner   topology.Dialer
	failing func(string) bool
	check   time.Duration // the connect timeout
	now     func() time.Time

	mu   sync.Mutex
	idle map[string]pooledConn
}

type pooledConn struct {
	q     topology.Querier
	since time.Time
}

// poolMaxAge recycles connections, so settings that apply at login (a
// server's new certificate, a changed account) reach the prober in time.
const poolMaxAge = time.Minute

func newPoolDialer(inner topology.Dialer, failing func(string) bool, check time.Duration, now func() time.Time) *poolDialer {
	if check <= 0 {
		check = time.Second
	}
	return &poolDialer{inner: inner, failing: failing, check: check, now: now, idle: map[string]pooledConn{}}
}

// Dial implements topology.Dialer.
func (p *poolDialer) Dial(ctx context.Context, addr string) (topology.Querier, error) {
	p.mu.Lock()
	c, ok := p.idle[addr]
	delete(p.idle, addr)
	p.mu.Unlock()
	if ok && (p.failing(addr) || p.now().Sub(c.since) > poolMaxAge) {
		c.q.Close()
		ok = false
	}
	if ok {
		return &pooled{Querier: c.q, p: p, addr: addr, since: c.since, reused: true, unverified: true}, nil
	}
	q, err := p.inner.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &pooled{Querier: q, p: p, addr: addr, since: p.now()}, nil
}

// verify runs the first statement on a reused session: within the connect
// timeout, and on a new session if the kept one turns out closed.
func (c *pooled) verify(ctx context.Context, run func(context.Context, topology.Querier) error) error {
	c.unverified = false
	cctx, cancel := context.WithTimeout(ctx, c.p.check)
	err := run(cctx, c.Querier)
	timedOut := cctx.Err() != nil
	cancel()
	if err == nil || topology.MySQLErrorNumber(err) != 0 {
		return err // the server answered: the session is alive
	}
	c.Querier.Close()
	c.broken, c.closed = false, false
	if timedOut || ctx.Err() != nil {
		// No answer within the connect timeout: what a fresh connect to
		// a cut-off server reports too, in the same time.
		c.closed = true
		return &topology.ServerError{Addr: c.addr, Op: "connect", Err: err}
	}
	// The session was closed (a restart, wait_timeout): dial again.
	q, derr := c.p.inner.Dial(ctx, c.addr)
	if derr != nil {
		c.closed = true
		return derr
	}
	c.Querier, c.since, c.reused = q, c.p.now(), false
	err = run(ctx, q)
	c.fail(err)
	return err
}

// closeAll closes the idle connections (the cluster monitor stops).
func (p *poolDialer) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string]pooledConn{}
	p.mu.Unlock()
	for _, c := range idle {
		c.q.Close()
	}
}

// idleCount is how many connections wait for the next probe.
func (p *poolDialer) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// pooled is a connection lent to one probe: Close returns it to the pool
// unless a statement failed on it.
type pooled struct {
	topology.Querier
	p      *poolDialer
	addr   string
	since  time.Time
	broken bool
	closed bool
	// reused is set when the session was kept from an earlier probe.
	reused bool
	// unverified: a reused session whose first statement is still to come.
	unverified bool
}

// Reused implements topology.ReusedSession: a probe on a new session
// (a reconnect) re-reads the slow-changing facts at once.
func (c *pooled) Reused() bool { return c.reused }

func (c *pooled) Query(ctx context.Context, q string, args ...any) ([]topology.Row, error) {
	if c.closed {
		return nil, &topology.ServerError{Addr: c.addr, Op: "query", Err: errPooledClosed}
	}
	var rows []topology.Row
	if c.unverified {
		err := c.verify(ctx, func(ctx context.Context, s topology.Querier) (err error) {
			rows, err = s.Query(ctx, q, args...)
			return err
		})
		return rows, err
	}
	rows, err := c.Querier.Query(ctx, q, args...)
	c.fail(err)
	return rows, err
}

func (c *pooled) Exec(ctx context.Context, q string, args ...any) error {
	if c.closed {
		return &topology.ServerError{Addr: c.addr, Op: "exec", Err: errPooledClosed}
	}
	if c.unverified {
		// A write (the write probe's heartbeat, the fence's read_only)
		// may rightly take longer than a connect: the liveness check is
		// a statement of its own here, and the write gets the caller's
		// whole bound and is sent once, on a session known alive.
		if err := c.verify(ctx, func(ctx context.Context, s topology.Querier) error {
			_, err := s.Query(ctx, "SELECT 1")
			return err
		}); err != nil {
			return err
		}
	}
	err := c.Querier.Exec(ctx, q, args...)
	c.fail(err)
	return err
}

var errPooledClosed = errors.New("probe session closed")

// fail marks the session broken unless the server itself answered with an
// error (a statement it refused leaves the session usable).
func (c *pooled) fail(err error) {
	if err != nil && topology.MySQLErrorNumber(err) == 0 {
		c.broken = true
	}
}

func (c *pooled) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.broken {
		return c.Querier.Close()
	}
	c.p.mu.Lock()
	_, taken := c.p.idle[c.addr]
	if !taken {
		c.p.idle[c.addr] = pooledConn{q: c.Querier, since: c.since}
	}
	c.p.mu.Unlock()
	if taken {
		return c.Querier.Close()
	}
	return nil
}
