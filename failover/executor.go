package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/myha/myha/topology"
)

// Executor carries out a plan against real servers: each step bounded by a
// timeout, logged, timed, and reported. On an error it stops at a safe point
// and reports every server's state; a rerun continues from there.
type Executor struct {
	Dialer topology.Dialer
	// Repl is the account replicas use to connect to their new source.
	Repl topology.Credentials
	// ReplTLS is the cluster's TLS setting, which every repoint passes on
	// to the replica (MASTER_SSL and friends).
	ReplTLS topology.TLSSpec
	Policy  Policy
	Hooks   Hooks
	Store   *Store // failover records; nil records nothing
	Log     *slog.Logger
	// StatementTimeout bounds every statement that is not a wait.
	StatementTimeout time.Duration
	// Rediscover reads the topology again for the final state report.
	Rediscover func(ctx context.Context) topology.Snapshot
	// Progress is told about each step as it ends (a live timeline).
	Progress func(StepResult)
	// LockName overrides the advisory lock name (tests).
	LockName string
	// LockAccount is the account myha connects as (the cluster's admin
	// user): a failover lock held by any other account is not myha's and
	// is taken from it. Empty treats every holder as myha's.
	LockAccount string
	// Epoch numbers this failover when the caller keeps the records (the
	// daemon's raft log); 0 means the Store numbers it.
	Epoch int64
	// OnPromoted is called once the new primary takes writes (the daemon
	// commits that to raft before going on).
	OnPromoted func()
	// BeforePromote is called, in a failover, after the durable journal
	// records the intent to promote and before read_only=0; an error stops
	// the failover before promotion (the daemon commits the intent to raft
	// here). In a switchover it is called right after read_only=0, outside
	// the write-blocked window (the old primary is fenced and alive).
	BeforePromote func() error
	// Accounts are myha's own account names (admin, replication): they may
	// hold privileges that bypass read_only without being application
	// writers.
	Accounts []string
	// Crash is the failure-injection seam: called at every step boundary
	// ("before:<kind>@<server>", "after:<kind>@<server>") and inside the
	// steps that change several things ("promote:intent@<server>" after the
	// journal records it and before read_only=0, "promote:writable@<server>",
	// "repoint:changed@<server>" between CHANGE MASTER and START SLAVE).
	// The CLI wires it to MYHA_CRASH_AT (exit at once, like kill -9); nil
	// in production.
	Crash func(point string)
	// BeforeStep is a test seam for failure injection (kill a server just
	// before a step); nil in production.
	BeforeStep func(Step)
	Now        func() time.Time
}

// run is the state of one execution.
type run struct {
	e     *Executor
	snap  *topology.Snapshot
	plan  *Plan
	rep   *Report
	start time.Time
	mu    sync.Mutex
	sess  map[string]topology.Querier
	// dialects of servers learned from their live connection, for servers
	// that did not answer at discovery (a zero Dialect would send MySQL
	// syntax to MariaDB).
	dialects map[string]topology.Dialect
	final    string // switchover: the old primary's last GTID position
	locks    []topology.Querier
	blockT   time.Time
	// attached are replicas a switchover pointed at the new primary before
	// promotion; a rollback points them back.
	attached []string
	// globalLock is set while the switchover holds FLUSH TABLES WITH READ
	// LOCK on the old primary's working session.
	globalLock bool
}

// errNotFatal marks a step failure that does not stop the failover.
type errNotFatal struct{ error }

// Execute runs the plan. The snapshot must be the one the plan was built from.
func (e *Executor) Execute(ctx context.Context, snap *topology.Snapshot, plan *Plan) *Report {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	r := &run{e: e, snap: snap, plan: plan, start: now(), sess: map[string]topology.Querier{}, dialects: map[string]topology.Dialect{}}
	r.rep = &Report{Cluster: plan.Cluster, Kind: plan.Kind, OldPrimary: plan.OldPrimary, NewPrimary: plan.NewPrimary,
		Started: r.start.UTC(), Steps: []StepResult{}, Warnings: []string{}, FinalState: []ServerSummary{}}
	switch {
	case e.Epoch > 0:
		r.rep.Epoch = e.Epoch
	case e.Store != nil:
		r.rep.Epoch = e.Store.NextEpoch(plan.Cluster)
	}
	r.rep.ID = fmt.Sprintf("%s-%d-%s", plan.Cluster, r.rep.Epoch, r.start.UTC().Format("20060102T150405"))
	defer r.closeAll()
	r.execute(ctx)
	r.rep.DurationMS = msSince(r.start, time.Now())
	if e.Rediscover != nil && r.rep.Result != ResultAborted {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		s := e.Rediscover(fctx)
		cancel()
		r.rep.FinalState = summarize(&s)
		r.verify(&s)
	}
	if e.Store != nil && r.rep.Result != ResultAborted {
		if err := e.Store.Finish(plan.Cluster, r.rep); err != nil {
			r.rep.Warnings = append(r.rep.Warnings, "could not record the failover: "+err.Error())
		}
	}
	return r.rep
}

func (r *run) log() *slog.Logger {
	if r.e.Log != nil {
		return r.e.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *run) execute(ctx context.Context) {
	rep, plan := r.rep, r.plan
	if !plan.OK() {
		rep.Result, rep.Error = ResultAborted, "the plan is blocked: "+strings.Join(plan.Blockers, "; ")
		return
	}
	if err := r.lock(ctx); err != nil {
		rep.Result, rep.Error = ResultAborted, err.Error()
		return
	}
	// Pre hooks: any failure aborts before the first change.
	warns, err := r.e.Hooks.runShell(ctx, r.e.Hooks.Pre, hookEnv(rep, "pre"))
	rep.Warnings = append(rep.Warnings, warns...)
	if err == nil {
		err = r.mhaPre(ctx)
	}
	if err != nil {
		rep.Result, rep.Error = ResultAborted, err.Error()
		rep.SafeStop = "before any change: no server was touched"
		return
	}
	if r.e.Store != nil {
		j := &InProgress{ID: rep.ID, Epoch: rep.Epoch, Kind: plan.Kind, OldPrimary: plan.OldPrimary, NewPrimary: plan.NewPrimary, Started: rep.Started}
		if err := r.e.Store.SaveJournal(plan.Cluster, j); err != nil {
			rep.Result, rep.Error = ResultAborted, "cannot write the failover journal: "+err.Error()
			return
		}
	}

	r.warmSessions(ctx)
	if plan.Kind == KindSwitchover && r.semiSyncOn(plan.NewPrimary) {
		// Lossless semi-sync on the new primary, set now (harmless while it
		// is a replica) so the write-blocked window does not pay for it.
		if q, err := r.session(ctx, plan.NewPrimary); err == nil {
			if err := r.exec(ctx, q, r.dialect(plan.NewPrimary).SemiSyncLossless()); err != nil {
				rep.Warnings = append(rep.Warnings, "setting the semi-sync wait point AFTER_SYNC on the new primary: "+err.Error())
			}
		}
	}
	rep.Result = ResultSuccess
	if plan.Resume {
		rep.Promoted = true
	}
	steps := plan.Steps
	for i := 0; i < len(steps); {
		j := i + 1
		for steps[i].Group > 0 && j < len(steps) && steps[j].Group == steps[i].Group {
			j++
		}
		results := r.runGroup(ctx, steps[i:j])
		for _, res := range results {
			if res.err == nil {
				continue
			}
			var nf errNotFatal
			if errors.As(res.err, &nf) || rep.Promoted {
				// After promotion the cluster takes writes: go on, report it.
				rep.Result = ResultPartial
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s on %s: %v", res.step.Kind, res.step.Server, res.err))
				continue
			}
			r.safeStop(ctx, res.step, res.err)
			return
		}
		i = j
	}
	if rep.Result == ResultPartial {
		rep.Error = "the new primary takes writes, but some steps failed (see warnings)"
	}
	warns, err = r.e.Hooks.runShell(ctx, r.e.Hooks.Post, hookEnv(rep, "post"))
	rep.Warnings = append(rep.Warnings, warns...)
	if err != nil {
		rep.Warnings = append(rep.Warnings, "post hook: "+err.Error())
	}
}

type groupResult struct {
	step Step
	err  error
}

// runGroup runs one step, or a group of parallel steps, and records them.
func (r *run) runGroup(ctx context.Context, steps []Step) []groupResult {
	out := make([]groupResult, len(steps))
	var wg sync.WaitGroup
	for i, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.e.BeforeStep != nil {
				r.e.BeforeStep(s)
			}
			r.crash("before:" + string(s.Kind) + "@" + s.Server)
			t0 := time.Now()
			note, err := r.runStep(ctx, s)
			r.crash("after:" + string(s.Kind) + "@" + s.Server)
			status := "done"
			var nf errNotFatal
			switch {
			case err != nil && errors.As(err, &nf):
				status, note = "warning", joinNote(note, err.Error())
			case err != nil:
				status, note = "failed", joinNote(note, err.Error())
			case strings.HasPrefix(note, "skipped"):
				status = "skipped"
			}
			res := StepResult{Step: s, StartMS: msSince(r.start, t0), DurationMS: msSince(t0, time.Now()), Status: status, Note: note}
			r.mu.Lock()
			r.rep.Steps = append(r.rep.Steps, res)
			r.mu.Unlock()
			r.log().Info("step", "cluster", r.plan.Cluster, "kind", s.Kind, "server", s.Server, "status", status, "ms", res.DurationMS, "note", note)
			if r.e.Progress != nil {
				r.e.Progress(res)
			}
			out[i] = groupResult{step: s, err: err}
		}()
	}
	wg.Wait()
	return out
}

func (r *run) crash(point string) {
	if r.e.Crash != nil {
		r.e.Crash(point)
	}
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// safeStop ends a failover that cannot go on, undoing a switchover's fence
// when nothing was promoted, and says exactly where it stopped.
func (r *run) safeStop(ctx context.Context, s Step, err error) {
	rep := r.rep
	rep.Result, rep.Error = ResultFailed, fmt.Sprintf("%s on %s: %v", s.Kind, s.Server, err)
	done := r.changesSoFar()
	if r.e.Store != nil {
		j := &InProgress{ID: rep.ID, Epoch: rep.Epoch, Kind: r.plan.Kind, OldPrimary: r.plan.OldPrimary, NewPrimary: r.plan.NewPrimary,
			Started: rep.Started, Promoted: rep.Promoted, LastStep: fmt.Sprintf("%s on %s", s.Kind, s.Server)}
		if jerr := r.e.Store.SaveJournal(r.plan.Cluster, j); jerr != nil {
			rep.Warnings = append(rep.Warnings, "could not update the journal: "+jerr.Error())
		}
	}
	if r.plan.Kind == KindSwitchover && !rep.Promoted {
		if rerr := r.rollbackSwitchover(ctx); rerr != nil {
			rep.SafeStop = fmt.Sprintf("before promotion; ROLLBACK FAILED: %v: the old primary %s may still be read-only: if it answers, SET GLOBAL read_only=0 on it to take writes again; if it is dead, run myha failover", rerr, r.plan.OldPrimary)
			return
		}
		rep.Result = ResultRolledBack
		r.mu.Lock()
		n := len(r.attached)
		r.mu.Unlock()
		rep.SafeStop = fmt.Sprintf("rolled back before promotion: %s is writable again", r.plan.OldPrimary)
		if n > 0 {
			rep.SafeStop += fmt.Sprintf("; the %d replica(s) already attached to %s replicate from it again", n, r.plan.NewPrimary)
		}
		return
	}
	if !rep.Promoted {
		rep.SafeStop = "before promotion: no server was made writable. Changes made: " + orNone(done) +
			". Run the same command again to continue: it re-reads the topology and picks the best remaining candidate."
		return
	}
	rep.SafeStop = fmt.Sprintf("after promotion: %s takes writes. Changes made: %s. Run the same command again to finish repointing.", r.plan.NewPrimary, orNone(done))
}

func (r *run) changesSoFar() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, s := range r.rep.Steps {
		if s.Status == "done" || s.Status == "warning" {
			parts = append(parts, fmt.Sprintf("%s on %s", s.Kind, s.Server))
		}
	}
	return strings.Join(parts, ", ")
}

// lock takes the cluster's failover lock on every reachable server and holds
// it until the end, so two myha processes never change one cluster at once.
// A holder with another account than myha's is ended and never blocks (see
// lock.go); one with myha's own account stops the failover before any
// change, naming it and how long it has held the lock.
func (r *run) lock(ctx context.Context) error {
	name := r.e.LockName
	if name == "" {
		name = LockName(r.plan.Cluster)
	}
	var held []string
	var lockedAt []*topology.ServerView // the server of each r.locks entry
	for i := range r.snap.Servers {
		v := &r.snap.Servers[i]
		if !v.Reachable {
			continue
		}
		q, err := r.dial(ctx, v.Spec.Address)
		if err != nil {
			continue // it died since discovery; steps will see it
		}
		sctx, cancel := context.WithTimeout(ctx, r.e.StatementTimeout+3*time.Second) // GetLockWait waits up to 2s
		res, err := AcquireLock(sctx, q, v.Dialect, v.Spec.Address, name, r.e.LockAccount, r.log())
		cancel()
		for _, k := range res.Killed {
			r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("%s: ended the session of %s that held myha's failover lock (an account that is not myha's)", v.Spec.Address, k))
		}
		switch {
		case err != nil:
			q.Close()
			return fmt.Errorf("cannot take the failover lock on %s: %v", v.Spec.Address, err)
		case res.Taken:
			r.locks = append(r.locks, q)
			lockedAt = append(lockedAt, v)
		case res.Squatter != nil:
			q.Close()
			r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("%s: the failover lock is held by %s, an account that is not myha's, which could not be ended: going on without the lock on this server", v.Spec.Address, res.Squatter))
		default:
			q.Close()
			held = append(held, v.Spec.Address+" by "+res.Holder.String())
			r.log().Warn("the failover lock is held by myha's account: another failover or switchover is running (or a vanished myha left it); not changing anything",
				"cluster", r.plan.Cluster, "server", v.Spec.Address, "connection", res.Holder.ConnID, "host", res.Holder.Host, "held_s", res.Holder.Seconds)
		}
	}
	if len(held) > 0 {
		return fmt.Errorf("another failover of cluster %s is running: its lock %q is held on %s; nothing was changed "+
			"(if no myha failover or switchover runs, end the holder with KILL <connection>)", r.plan.Cluster, name, strings.Join(held, ", "))
	}
	return r.recheck(ctx, lockedAt)
}

// recheck re-reads read_only on every locked server once the lock is held
// (VTOrc's lock → refresh → re-analyse): a server that was read-only in
// the snapshot the plan came from and is writable now was promoted by
// someone else meanwhile (a CLI failover racing the daemon, which held the
// lock and released it between this one's discovery and its lock).
// Executing the stale plan would promote a second server.
func (r *run) recheck(ctx context.Context, locked []*topology.ServerView) error {
	for i, v := range locked {
		if !v.ReadOnly && !v.SuperReadOnly {
			continue // writable already when the plan was made
		}
		rows, err := r.query(ctx, r.locks[i], "SELECT @@global.read_only AS ro")
		if err != nil {
			return fmt.Errorf("cannot re-read read_only on %s after taking the failover lock: %v; nothing was changed", v.Spec.Address, err)
		}
		if len(rows) == 1 && rows[0]["ro"] == "0" {
			return fmt.Errorf("another failover or switchover of cluster %s changed it since it was read: %s is writable now, read-only when this plan was made; nothing was changed (run the command again: it plans from the cluster as it is now)", r.plan.Cluster, v.Spec.Address)
		}
	}
	return nil
}

// warmSessions opens the working connection to every reachable server the
// plan touches, in parallel, so no step pays for a connect in the middle of
// a write-blocked window.
func (r *run) warmSessions(ctx context.Context) {
	var wg sync.WaitGroup
	seen := map[string]bool{}
	for _, s := range r.plan.Steps {
		for _, addr := range []string{s.Server, s.Source} {
			if v := r.view(addr); addr != "" && !seen[addr] && v != nil && v.Reachable {
				seen[addr] = true
				wg.Add(1)
				go func() { defer wg.Done(); r.session(ctx, addr) }()
			}
		}
	}
	wg.Wait()
}

func (r *run) closeAll() {
	for _, q := range r.locks {
		q.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.sess {
		q.Close()
	}
}

func (r *run) dial(ctx context.Context, addr string) (topology.Querier, error) {
	if v := r.view(addr); v != nil && !v.Reachable {
		// Known down (killed, cut): try, but do not wait a full connect
		// timeout for a server that is probably gone.
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		return r.e.Dialer.Dial(dctx, addr)
	}
	return r.e.Dialer.Dial(ctx, addr)
}

// session returns the executor's working connection to a server.
func (r *run) session(ctx context.Context, addr string) (topology.Querier, error) {
	r.mu.Lock()
	q := r.sess[addr]
	r.mu.Unlock()
	if q != nil {
		return q, nil
	}
	q, err := r.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if v := r.view(addr); v == nil || v.Dialect.Flavor == "" {
		// Not known from discovery: ask the server before sending it
		// anything flavor-specific.
		rows, err := r.query(ctx, q, topology.VersionQuery)
		if err != nil || len(rows) == 0 {
			q.Close()
			return nil, fmt.Errorf("cannot tell its server flavor and version: %v", orNone(errText(err)))
		}
		d, err := topology.DialectFor(rows[0]["version"], rows[0]["comment"])
		if err != nil {
			q.Close()
			return nil, err
		}
		r.mu.Lock()
		r.dialects[addr] = d
		r.mu.Unlock()
	}
	r.mu.Lock()
	if old := r.sess[addr]; old != nil {
		r.mu.Unlock()
		q.Close()
		return old, nil
	}
	r.sess[addr] = q
	r.mu.Unlock()
	return q, nil
}

// dialect is a server's SQL dialect: from discovery, else from its live
// connection (session learns it), else the cluster's (another server's).
func (r *run) dialect(addr string) topology.Dialect {
	if v := r.view(addr); v != nil && v.Dialect.Flavor != "" {
		return v.Dialect
	}
	r.mu.Lock()
	d, ok := r.dialects[addr]
	r.mu.Unlock()
	if ok {
		return d
	}
	for _, v := range r.snap.Servers {
		if v.Dialect.Flavor != "" {
			return v.Dialect
		}
	}
	return topology.Dialect{}
}

func errText(err error) string {
	if err == nil {
		return "no answer"
	}
	return err.Error()
}

func (r *run) timeout() time.Duration {
	if r.e.StatementTimeout > 0 {
		return r.e.StatementTimeout
	}
	return 5 * time.Second
}

func (r *run) exec(ctx context.Context, q topology.Querier, stmts ...string) error {
	for _, s := range stmts {
		sctx, cancel := context.WithTimeout(ctx, r.timeout())
		err := q.Exec(sctx, s)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *run) query(ctx context.Context, q topology.Querier, stmt string) ([]topology.Row, error) {
	sctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	return q.Query(sctx, stmt)
}

func (r *run) view(addr string) *topology.ServerView {
	v, _ := r.snap.Server(addr)
	return v
}

func splitHostPort(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 3306
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// summarize turns a snapshot into the report's final-state table.
func summarize(s *topology.Snapshot) []ServerSummary {
	var out []ServerSummary
	for _, v := range s.Servers {
		ss := ServerSummary{Address: v.Spec.Address, Reachable: v.Reachable, Writable: v.Reachable && !v.ReadOnly && !v.SuperReadOnly,
			Source: v.Source}
		if v.Reachable {
			ss.Position = v.ExecutedPosition().String()
		}
		if c, ok := v.PrimaryConn(); ok {
			ss.IORunning, ss.SQLRunning = c.IORunning(), c.SQLRunning
			if v.Source == "" {
				ss.Source = c.Source()
			}
		}
		if len(v.Problems) > 0 {
			ss.Note = strings.Join(v.Problems, "; ")
		}
		out = append(out, ss)
	}
	return out
}

// verify checks the outcome a user cares about: one writable server, the
// new one, and every repointed replica replicating from it.
func (r *run) verify(s *topology.Snapshot) {
	rep := r.rep
	var writers []string
	for _, v := range s.Servers {
		if v.Reachable && !v.ReadOnly && !v.SuperReadOnly {
			writers = append(writers, v.Spec.Address)
		}
	}
	if len(writers) > 1 {
		rep.Warnings = append(rep.Warnings, "MORE THAN ONE WRITABLE SERVER: "+strings.Join(writers, ", "))
		if rep.Result == ResultSuccess {
			rep.Result = ResultPartial
		}
	}
	if !rep.Promoted {
		return
	}
	if len(writers) == 0 || writers[0] != rep.NewPrimary && len(writers) == 1 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("after the failover the writable server is %v, not %s", writers, rep.NewPrimary))
	}
	// Every server the plan repointed, and every server that points at the
	// new primary now, must replicate from it with both threads running.
	check := map[string]bool{}
	for _, st := range r.plan.Steps {
		if st.Kind == StepRepoint || st.Kind == StepAttach {
			check[st.Server] = true
		}
	}
	for _, v := range s.Servers {
		if v.Source == rep.NewPrimary && v.Spec.Address != rep.NewPrimary {
			check[v.Spec.Address] = true
		}
	}
	// And nobody else may be left stopped without the plan saying so (a
	// replica an earlier, interrupted run left halfway).
	lost := map[string]bool{r.plan.OldPrimary: true, rep.NewPrimary: true}
	for _, l := range r.plan.LostReplicas {
		lost[l.Address] = true
	}
	for _, v := range s.Servers {
		if !v.Reachable || lost[v.Spec.Address] || check[v.Spec.Address] {
			continue
		}
		if c, ok := v.PrimaryConn(); !ok || !c.IORunning() || !c.SQLRunning {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s is not replicating (both threads running) and the plan did not leave it behind: repoint it to %s", v.Spec.Address, rep.NewPrimary))
			if rep.Result == ResultSuccess {
				rep.Result = ResultPartial
			}
		}
	}
	for _, sv := range s.Servers {
		if !check[sv.Spec.Address] {
			continue
		}
		v, ok := s.Server(sv.Spec.Address)
		if !ok || !v.Reachable {
			continue
		}
		c, ok := v.PrimaryConn()
		if !ok || v.Source != rep.NewPrimary || !c.IORunning() || !c.SQLRunning {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s does not replicate from %s with both threads running", v.Spec.Address, rep.NewPrimary))
			if rep.Result == ResultSuccess {
				rep.Result = ResultPartial
			}
		}
	}
}

// LockName is the advisory lock every failover and switchover of a cluster
// holds on every server while it runs.
func LockName(cluster string) string { return "myha_failover_" + cluster }
