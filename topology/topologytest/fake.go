// Package topologytest provides a FAKE topology.Dialer for unit tests only.
// It never talks to a server: each fake server answers statements from a
// script the test writes, and records every statement it receives, so a test
// can inject failures (a refused connection, a failing statement, zero rows,
// a statement that hangs until its context ends) and assert the exact order
// of what was sent. Production code must never import it.
//
// A server answers a statement with the first of its rules that matches and
// has uses left, in the order the rules were added. A statement no rule
// matches succeeds: Exec returns nil and Query returns zero rows. A dial to
// an address that was never declared with Server fails as refused.
package topologytest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/myha/myha/topology"
)

// ErrRefused is what dialing an undeclared server, or one set to FailDial
// with a nil error, returns.
var ErrRefused = errors.New("connection refused")

// Call is one statement a fake server received.
type Call struct {
	Addr  string
	Stmt  string
	Args  []any
	Query bool // Query (true) or Exec (false)
}

// Fake is a scripted topology.Dialer. Its zero value is not usable; call New.
// It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	servers map[string]*Server
	calls   []Call
	dials   map[string]int
	closes  map[string]int
	changed chan struct{} // closed and replaced whenever the log grows
}

// New returns a fake with no servers.
func New() *Fake {
	return &Fake{servers: map[string]*Server{}, dials: map[string]int{}, closes: map[string]int{}, changed: make(chan struct{})}
}

// Server declares (or returns the already declared) fake server at addr.
func (f *Fake) Server(addr string) *Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.servers[addr]; ok {
		return s
	}
	s := &Server{f: f, addr: addr}
	f.servers[addr] = s
	return s
}

// Dial opens a session to a declared server, or fails as scripted.
func (f *Fake) Dial(ctx context.Context, addr string) (topology.Querier, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials[addr]++
	s, ok := f.servers[addr]
	if !ok {
		return nil, &topology.ServerError{Addr: addr, Op: "connect", Err: ErrRefused}
	}
	if s.dialFail {
		return nil, &topology.ServerError{Addr: addr, Op: "connect", Err: s.dialErr}
	}
	return &querier{s: s}, nil
}

// Calls returns every statement received so far, on every server, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Statements returns the statements one server received, in order.
func (f *Fake) Statements(addr string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.Addr == addr {
			out = append(out, c.Stmt)
		}
	}
	return out
}

// Dials returns how many times addr was dialed (including failed dials).
func (f *Fake) Dials(addr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dials[addr]
}

// Closes returns how many sessions to addr were closed.
func (f *Fake) Closes(addr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closes[addr]
}

// WaitFor blocks until cond holds for the statement log, or ctx ends. cond
// is evaluated on each new statement, so a test can wait for "the executor
// is now blocked in MASTER_GTID_WAIT" without sleeping.
func (f *Fake) WaitFor(ctx context.Context, cond func([]Call) bool) error {
	for {
		f.mu.Lock()
		ok := cond(f.calls)
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a statement: %w", ctx.Err())
		}
	}
}

func (f *Fake) record(c Call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	close(f.changed)
	f.changed = make(chan struct{})
}

// Server is one fake server: how it answers dials and statements.
type Server struct {
	f        *Fake
	addr     string
	dialFail bool
	dialErr  error
	rules    []*Rule // guarded by f.mu
}

// FailDial makes every later dial fail with err (ErrRefused when nil).
func (s *Server) FailDial(err error) *Server {
	if err == nil {
		err = ErrRefused
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.dialFail, s.dialErr = true, err
	return s
}

// On adds a rule for statements equal to stmt.
func (s *Server) On(stmt string) *Rule {
	return s.add("= "+stmt, func(q string) bool { return q == stmt })
}

// OnPrefix adds a rule for statements starting with prefix.
func (s *Server) OnPrefix(prefix string) *Rule {
	return s.add("prefix "+prefix, func(q string) bool { return strings.HasPrefix(q, prefix) })
}

// OnRegexp adds a rule for statements matching the regular expression
// (which panics if invalid: it is written by the test).
func (s *Server) OnRegexp(expr string) *Rule {
	re := regexp.MustCompile(expr)
	return s.add("regexp "+expr, re.MatchString)
}

func (s *Server) add(desc string, match func(string) bool) *Rule {
	r := &Rule{mu: &s.f.mu, desc: desc, match: match}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.rules = append(s.rules, r)
	return r
}

// answer finds the rule for a statement, takes one use of it and returns
// what it answers (ok false when no rule matches).
func (s *Server) answer(stmt string) (reply, bool) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, r := range s.rules {
		if r.match(stmt) && (r.times == 0 || r.used < r.times) {
			r.used++
			return r.reply, true
		}
	}
	return reply{}, false
}

// Rule is a scripted answer to matching statements. Its setters may be
// called at any time, also while the code under test runs.
type Rule struct {
	mu    *sync.Mutex // the fake's
	desc  string
	match func(string) bool
	reply reply
	times int
	used  int
}

// reply is what a rule answers.
type reply struct {
	rows  []topology.Row
	err   error
	block bool
	fn    func(stmt string) ([]topology.Row, error)
}

func (r *Rule) set(f func()) *Rule {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	return r
}

// Return makes matching statements return these rows; with no rows, a
// Query returns an empty result (zero rows, no error).
func (r *Rule) Return(rows ...topology.Row) *Rule {
	return r.set(func() { r.reply = reply{rows: rows} })
}

// Fail makes matching statements fail with err, wrapped in a
// topology.ServerError as the real dialer does.
func (r *Rule) Fail(err error) *Rule { return r.set(func() { r.reply = reply{err: err} }) }

// Block makes matching statements hang until their context ends, then
// fail with the context's error (a hung server, a lock wait).
func (r *Rule) Block() *Rule { return r.set(func() { r.reply = reply{block: true} }) }

// Do answers matching statements with fn, for state that changes as the
// test goes (a replica that reports a new source after CHANGE MASTER). fn
// runs without the fake's lock held and may use the fake.
func (r *Rule) Do(fn func(stmt string) ([]topology.Row, error)) *Rule {
	return r.set(func() { r.reply = reply{fn: fn} })
}

// Times limits the rule to its next n matches; later statements fall
// through to the next matching rule. 0 (the default) means always.
func (r *Rule) Times(n int) *Rule { return r.set(func() { r.times = n }) }

// String describes the rule, for test failure messages.
func (r *Rule) String() string { return r.desc }

// querier is one session to a fake server.
type querier struct {
	s      *Server
	mu     sync.Mutex
	closed bool
}

func (q *querier) Query(ctx context.Context, stmt string, args ...any) ([]topology.Row, error) {
	return q.run(ctx, stmt, args, true)
}

func (q *querier) Exec(ctx context.Context, stmt string, args ...any) error {
	_, err := q.run(ctx, stmt, args, false)
	return err
}

func (q *querier) run(ctx context.Context, stmt string, args []any, isQuery bool) ([]topology.Row, error) {
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		return nil, q.fail(stmt, errors.New("sql: connection is already closed"))
	}
	q.s.f.record(Call{Addr: q.s.addr, Stmt: stmt, Args: args, Query: isQuery})
	r, ok := q.s.answer(stmt)
	if err := ctx.Err(); err != nil {
		return nil, q.fail(stmt, err)
	}
	switch {
	case !ok:
		return nil, nil
	case r.block:
		<-ctx.Done()
		return nil, q.fail(stmt, ctx.Err())
	case r.fn != nil:
		rows, err := r.fn(stmt)
		if err != nil {
			return nil, q.fail(stmt, err)
		}
		return copyRows(rows), nil
	case r.err != nil:
		return nil, q.fail(stmt, r.err)
	}
	return copyRows(r.rows), nil
}

// fail wraps err as the real dialer does: the server and the statement's
// first words.
func (q *querier) fail(stmt string, err error) error {
	words := strings.Fields(stmt)
	return &topology.ServerError{Addr: q.s.addr, Op: strings.Join(words[:min(3, len(words))], " "), Err: err}
}

func (q *querier) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	q.s.f.mu.Lock()
	q.s.f.closes[q.s.addr]++
	q.s.f.mu.Unlock()
	return nil
}

// copyRows gives the caller rows it may change without touching the script.
func copyRows(rows []topology.Row) []topology.Row {
	if rows == nil {
		return nil
	}
	out := make([]topology.Row, len(rows))
	for i, r := range rows {
		c := make(topology.Row, len(r))
		for k, v := range r {
			c[k] = v
		}
		out[i] = c
	}
	return out
}
