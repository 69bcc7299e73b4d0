package failover

// Executor failure paths against topologytest's FAKE dialer: no server is
// involved, every statement is scripted and logged. Real MariaDB failovers
// are tested in test/integration; these tests pin down what the executor
// does when a server misbehaves in ways a lab cannot easily produce.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myha/myha/topology"
	"github.com/myha/myha/topology/topologytest"
)

const (
	replPassword = "rpw"
	changeToDB2  = "CHANGE MASTER TO MASTER_HOST='db2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='rpw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1"
)

func fakeExecutor(f *topologytest.Fake) *Executor {
	return &Executor{Dialer: f, Repl: topology.Credentials{User: "repl", Password: replPassword},
		Policy: Policy{CatchupTimeout: 5 * time.Second, KillGrace: 100 * time.Millisecond}, StatementTimeout: 2 * time.Second, LockName: "t"}
}

// scriptMariaDB gives a fake MariaDB server the answers a healthy one gives:
// the failover lock is free, its IO thread is stopped having received pos,
// MASTER_GTID_WAIT succeeds at once, and it has applied pos. Rules added
// before this call take precedence.
func scriptMariaDB(s *topologytest.Server, pos string) {
	s.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "1"})
	s.On("SHOW ALL SLAVES STATUS").Return(topology.Row{"Connection_name": "", "Gtid_IO_Pos": pos,
		"Slave_IO_Running": "No", "Slave_SQL_Running": "Yes", "Master_Server_Id": "1"})
	s.OnPrefix("SELECT MASTER_GTID_WAIT(").Return(topology.Row{"r": "0"})
	s.OnPrefix("SELECT @@gtid_current_pos").Return(topology.Row{"pos": pos, "binlog_pos": pos, "slave_pos": pos})
}

// followsAfterChange makes a replica report both threads running against
// server_id newID once it has been sent CHANGE MASTER.
func followsAfterChange(s *topologytest.Server, newID string) {
	var changed atomic.Bool
	s.OnPrefix("CHANGE MASTER").Do(func(string) ([]topology.Row, error) { changed.Store(true); return nil, nil })
	s.On("SHOW ALL SLAVES STATUS").Do(func(string) ([]topology.Row, error) {
		if !changed.Load() {
			return []topology.Row{{"Connection_name": "", "Slave_IO_Running": "No", "Slave_SQL_Running": "Yes", "Master_Server_Id": "1"}}, nil
		}
		return []topology.Row{{"Connection_name": "", "Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Master_Server_Id": newID}}, nil
	})
}

// stepStatus maps "kind server" to the status of each executed step (steps
// of a parallel group are recorded in completion order).
func stepStatus(rep *Report) map[string]string {
	if rep == nil {
		return nil
	}
	m := map[string]string{}
	for _, s := range rep.Steps {
		m[string(s.Kind)+" "+s.Server] = s.Status
	}
	return m
}

// logTimeline shows the report as an operator would see it (with -v, or
// when the test fails).
func logTimeline(t *testing.T, rep *Report) {
	t.Helper()
	var b strings.Builder
	rep.WriteTimeline(&b)
	t.Log("\n" + b.String())
}

// assertNothingWritable checks that no statement opened any server for writes.
func assertNothingWritable(t *testing.T, f *topologytest.Fake) {
	t.Helper()
	for _, c := range f.Calls() {
		if strings.Contains(c.Stmt, "read_only=0") {
			t.Errorf("%s was made writable (%q) although the failover stopped before promotion", c.Addr, c.Stmt)
		}
	}
}

func assertSessionsClosed(t *testing.T, f *topologytest.Fake, failedDials map[string]int, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		if opened := f.Dials(a) - failedDials[a]; f.Closes(a) != opened {
			t.Errorf("%s: %d sessions opened, %d closed", a, opened, f.Closes(a))
		}
	}
}

// newRun sets up an execution without running it, to call one step
// directly. Steps run on their own goroutines under Execute, where a panic
// cannot be recovered by a test (it ends the whole process, the daemon
// included); called directly, a panic can be caught and reported.
func newRun(ex *Executor, snap *topology.Snapshot, plan *Plan) *run {
	return &run{e: ex, snap: snap, plan: plan, start: time.Now(), sess: map[string]topology.Querier{},
		rep: &Report{Cluster: plan.Cluster, Kind: plan.Kind, Steps: []StepResult{}, Warnings: []string{}}}
}

func findStep(t *testing.T, plan *Plan, kind StepKind) Step {
	t.Helper()
	for _, s := range plan.Steps {
		if s.Kind == kind {
			return s
		}
	}
	t.Fatalf("the plan has no %s step: %+v", kind, plan.Steps)
	return Step{}
}

// callStep runs a step function and turns a panic into a value.
func callStep(ctx context.Context, fn func(context.Context, Step) (string, error), s Step) (note string, err error, panicked any) {
	defer func() { panicked = recover() }()
	note, err = fn(ctx, s)
	return note, err, nil
}

func TestExecutorFakeHappyFailoverStatementOrder(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-98", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindFailover})
	if !plan.OK() || plan.NewPrimary != "db2:3306" {
		t.Fatalf("plan: %+v", plan)
	}
	f := topologytest.New()
	scriptMariaDB(f.Server("db2:3306"), "0-1-100")
	db3 := f.Server("db3:3306")
	followsAfterChange(db3, "2")
	scriptMariaDB(db3, "0-1-98")

	rep := fakeExecutor(f).Execute(context.Background(), snap, &plan)
	logTimeline(t, rep)
	if rep.Result != ResultSuccess || !rep.Promoted {
		t.Fatalf("result %s, promoted %v: %s %+v", rep.Result, rep.Promoted, rep.Error, rep.Steps)
	}
	want2 := []string{"SELECT GET_LOCK('t', 0) AS r", "SELECT @@global.read_only AS ro", "STOP SLAVE IO_THREAD", "SHOW ALL SLAVES STATUS",
		"SELECT MASTER_GTID_WAIT('0-1-100', 1.000) AS r",
		"SELECT @@gtid_current_pos AS pos, @@gtid_binlog_pos AS binlog_pos, @@gtid_slave_pos AS slave_pos", // never promote below the plan
		"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0"}
	if got := f.Statements("db2:3306"); !slices.Equal(got, want2) {
		t.Errorf("new primary:\n got %q\nwant %q", got, want2)
	}
	want3 := []string{"SELECT GET_LOCK('t', 0) AS r", "SELECT @@global.read_only AS ro", "STOP SLAVE IO_THREAD", "STOP SLAVE", changeToDB2, "START SLAVE", "SHOW ALL SLAVES STATUS"}
	if got := f.Statements("db3:3306"); !slices.Equal(got, want3) {
		t.Errorf("repointed replica:\n got %q\nwant %q", got, want3)
	}
	if f.Dials("db1:3306") == 0 {
		t.Error("the dead old primary was never tried for fencing")
	}
	if got := stepStatus(rep)["fence_old_primary db1:3306"]; got != "done" {
		t.Errorf("fence of an unreachable primary without shutdown_script: status %q, want done (with a note)", got)
	}
	for _, s := range rep.Steps {
		if strings.Contains(s.Note, replPassword) {
			t.Errorf("step %s shows the replication password: %s", s.Kind, s.Note)
		}
	}
	assertSessionsClosed(t, f, nil, "db2:3306", "db3:3306")
}

// catchUp reads the catch-up source's position from rows[0]
// (failover/execsteps.go:228). A server that answers with zero rows (a
// proxy, a failing information_schema, a fake) must give an error, not a
// panic — and certainly not an empty target, which waitGTID treats as
// "nothing to wait for".
func TestExecutorFakeCatchUpZeroRows(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-90", replicaOf("db1:3306", 1, ""), candidate))
	plan := Build(snap, pol, Request{Kind: KindFailover})
	if plan.NewPrimary != "db3:3306" || plan.CatchUpFrom != "db2:3306" {
		t.Fatalf("plan: new %s catch-up from %s", plan.NewPrimary, plan.CatchUpFrom)
	}
	f := topologytest.New()
	f.Server("db2:3306").OnPrefix("SELECT @@gtid_current_pos").Return() // zero rows
	scriptMariaDB(f.Server("db2:3306"), "0-1-100")
	scriptMariaDB(f.Server("db3:3306"), "0-1-90")
	r := newRun(fakeExecutor(f), snap, &plan)
	defer r.closeAll()

	t.Run("no panic", func(t *testing.T) {
		_, err, panicked := callStep(context.Background(), r.catchUp, findStep(t, &plan, StepCatchUp))
		if panicked != nil {
			t.Fatalf("catchUp panics on zero rows: indexes rows[0] of the source's GTID query without checking for zero rows (failover/execsteps.go:228); under Execute this panic kills the process mid-failover. panic: %v", panicked)
		}
		if err == nil {
			t.Fatal("catch-up succeeded although the source's position could not be read")
		}
		for _, s := range f.Statements("db3:3306") {
			if strings.HasPrefix(s, "CHANGE MASTER") {
				t.Errorf("db3 was repointed at the catch-up source with an unknown target: %q", s)
			}
		}
	})
}

// killWriters reads the old primary's final position from rows[0]
// (failover/execsteps.go:446). Zero rows must be an error: an empty final
// position would let wait_caught_up pass at once and promote a new primary
// that lacks the old primary's last writes.
func TestExecutorFakeKillWritersZeroRows(t *testing.T) {
	snap := snapshot(server("db1:3306", 1, "0-1-100", writable),
		server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindSwitchover})
	if !plan.OK() {
		t.Fatalf("plan: %v", plan.Blockers)
	}
	f := topologytest.New()
	f.Server("db1:3306") // every statement answers zero rows: no writer, and no position
	r := newRun(fakeExecutor(f), snap, &plan)
	defer r.closeAll()

	t.Run("no panic", func(t *testing.T) {
		_, err, panicked := callStep(context.Background(), r.killWriters, findStep(t, &plan, StepKillWriters))
		if panicked != nil {
			t.Fatalf("killWriters panics on zero rows: indexes rows[0] of the final-position query without checking for zero rows (failover/execsteps.go:446); under Execute this panic kills the process with the old primary read-only. panic: %v", panicked)
		}
		if err == nil {
			t.Fatalf("kill_writers succeeded without a final position (final %q): wait_caught_up would not wait", r.final)
		}
	})
}

// The new primary cannot be reached when the failover starts: the executor
// must stop before promotion, make nothing writable, repoint nobody, and say
// where it stopped.
func TestExecutorFakeNewPrimaryDialFails(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-98", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindFailover})
	if plan.NewPrimary != "db2:3306" {
		t.Fatalf("plan: %+v", plan)
	}
	f := topologytest.New()
	f.Server("db2:3306").FailDial(errors.New("dial tcp db2:3306: connect: connection refused"))
	scriptMariaDB(f.Server("db3:3306"), "0-1-98")

	rep := fakeExecutor(f).Execute(context.Background(), snap, &plan)
	logTimeline(t, rep)
	if rep.Result != ResultFailed || rep.Promoted {
		t.Fatalf("result %s, promoted %v, want failed before promotion: %s", rep.Result, rep.Promoted, rep.Error)
	}
	if !strings.HasPrefix(rep.SafeStop, "before promotion: no server was made writable") {
		t.Errorf("SafeStop = %q", rep.SafeStop)
	}
	if !strings.Contains(rep.SafeStop, "stop_replication_io on db3:3306") {
		t.Errorf("SafeStop does not list db3's stopped IO thread among the changes: %q", rep.SafeStop)
	}
	if !strings.Contains(rep.Error, "db2:3306") {
		t.Errorf("error does not name the new primary: %q", rep.Error)
	}
	st := stepStatus(rep)
	for step, want := range map[string]string{
		"fence_old_primary db1:3306":   "done",
		"stop_replication_io db3:3306": "done",
		"wait_relay_log db2:3306":      "failed",
	} {
		if st[step] != want {
			t.Errorf("%s: status %q, want %q (all: %v)", step, st[step], want, st)
		}
	}
	for _, k := range []string{"promote db2:3306", "repoint db3:3306"} {
		if _, ran := st[k]; ran {
			t.Errorf("%s ran after the new primary was found unreachable", k)
		}
	}
	assertNothingWritable(t, f)
	want3 := []string{"SELECT GET_LOCK('t', 0) AS r", "SELECT @@global.read_only AS ro", "STOP SLAVE IO_THREAD"}
	if got := f.Statements("db3:3306"); !slices.Equal(got, want3) {
		t.Errorf("db3:\n got %q\nwant %q", got, want3)
	}
	if got := f.Statements("db2:3306"); len(got) != 0 {
		t.Errorf("statements reached the unreachable db2: %q", got)
	}
	assertSessionsClosed(t, f, map[string]int{"db2:3306": f.Dials("db2:3306")}, "db2:3306", "db3:3306")
}

// Fencing a live primary (failover --force) fails: nothing else may happen.
func TestExecutorFakeFenceStatementFails(t *testing.T) {
	snap := snapshot(server("db1:3306", 1, "0-1-100", writable),
		server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindFailover, Force: true})
	if !plan.OK() || findStep(t, &plan, StepFence).Server != "db1:3306" {
		t.Fatalf("plan: %v %+v", plan.Blockers, plan.Steps)
	}
	f := topologytest.New()
	db1 := f.Server("db1:3306")
	db1.On("SET GLOBAL read_only=1").Fail(errors.New("Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction"))
	scriptMariaDB(db1, "0-1-100")
	scriptMariaDB(f.Server("db2:3306"), "0-1-100")
	scriptMariaDB(f.Server("db3:3306"), "0-1-100")

	rep := fakeExecutor(f).Execute(context.Background(), snap, &plan)
	logTimeline(t, rep)
	if rep.Result != ResultFailed || rep.Promoted {
		t.Fatalf("result %s, promoted %v: %s", rep.Result, rep.Promoted, rep.Error)
	}
	if !strings.HasPrefix(rep.SafeStop, "before promotion") || !strings.Contains(rep.Error, "fence_old_primary on db1:3306") || !strings.Contains(rep.Error, "Lock wait timeout") {
		t.Errorf("error %q, SafeStop %q", rep.Error, rep.SafeStop)
	}
	if len(rep.Steps) != 1 || rep.Steps[0].Kind != StepFence || rep.Steps[0].Status != "failed" {
		t.Errorf("steps after a failed fence: %+v", rep.Steps)
	}
	want1 := []string{"SELECT GET_LOCK('t', 0) AS r", "SET SESSION lock_wait_timeout=2", "SET GLOBAL read_only=1"}
	if got := f.Statements("db1:3306"); !slices.Equal(got, want1) {
		t.Errorf("old primary:\n got %q\nwant %q", got, want1)
	}
	for _, a := range []string{"db2:3306", "db3:3306"} {
		if got := f.Statements(a); !slices.Equal(got, []string{"SELECT GET_LOCK('t', 0) AS r", "SELECT @@global.read_only AS ro"}) {
			t.Errorf("%s was touched after the fence failed: %q", a, got)
		}
	}
	assertNothingWritable(t, f)
	assertSessionsClosed(t, f, nil, "db1:3306", "db2:3306", "db3:3306")
}

// The caller gives up (Ctrl-C, the daemon losing leadership) while the new
// primary is applying its relay log: the executor returns promptly, before
// promotion, with nothing writable.
func TestExecutorFakeCancelDuringRelayLogWait(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-98", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindFailover})
	f := topologytest.New()
	db2 := f.Server("db2:3306")
	db2.OnPrefix("SELECT MASTER_GTID_WAIT(").Block()
	scriptMariaDB(db2, "0-1-100")
	scriptMariaDB(f.Server("db3:3306"), "0-1-98")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *Report, 1)
	go func() { done <- fakeExecutor(f).Execute(ctx, snap, &plan) }()

	deadline, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	waiting := func(calls []topologytest.Call) bool {
		return slices.ContainsFunc(calls, func(c topologytest.Call) bool {
			return c.Addr == "db2:3306" && strings.HasPrefix(c.Stmt, "SELECT MASTER_GTID_WAIT(")
		})
	}
	if err := f.WaitFor(deadline, waiting); err != nil {
		t.Fatalf("the executor never reached MASTER_GTID_WAIT on db2: %v", err)
	}
	cancel()
	var rep *Report
	select {
	case rep = <-done:
	case <-deadline.Done():
		t.Fatal("Execute did not return after its context was cancelled")
	}
	logTimeline(t, rep)
	if rep.Result != ResultFailed || rep.Promoted {
		t.Fatalf("result %s, promoted %v: %s", rep.Result, rep.Promoted, rep.Error)
	}
	if !strings.Contains(rep.Error, context.Canceled.Error()) || !strings.HasPrefix(rep.SafeStop, "before promotion") {
		t.Errorf("error %q, SafeStop %q", rep.Error, rep.SafeStop)
	}
	if got := stepStatus(rep)["wait_relay_log db2:3306"]; got != "failed" {
		t.Errorf("wait_relay_log status %q, want failed", got)
	}
	assertNothingWritable(t, f)
	for _, c := range f.Calls() {
		if c.Addr == "db3:3306" && strings.HasPrefix(c.Stmt, "CHANGE MASTER") {
			t.Errorf("db3 was repointed after the cancel: %q", c.Stmt)
		}
	}
	assertSessionsClosed(t, f, nil, "db2:3306", "db3:3306")
}

// A CLI failover and the daemon race on one dead primary: the other one
// promoted db2 and released the lock between this one's discovery and its
// lock. Its plan (made when db2 was a read-only replica) is stale: once
// the lock is held it re-reads read_only, finds db2 writable, and stops
// before any change instead of promoting a second time.
func TestExecutorFakeStalePlanAfterARacingFailover(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-100", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindFailover})
	if !plan.OK() || plan.NewPrimary != "db2:3306" {
		t.Fatalf("plan: %+v", plan)
	}
	f := topologytest.New()
	for _, a := range []string{"db2:3306", "db3:3306"} {
		scriptMariaDB(f.Server(a), "0-1-100")
	}
	f.Server("db2:3306").On("SELECT @@global.read_only AS ro").Return(topology.Row{"ro": "0"}) // promoted meanwhile
	f.Server("db3:3306").On("SELECT @@global.read_only AS ro").Return(topology.Row{"ro": "1"})

	rep := fakeExecutor(f).Execute(context.Background(), snap, &plan)
	logTimeline(t, rep)
	if rep.Result != ResultAborted || rep.Promoted || len(rep.Steps) != 0 {
		t.Fatalf("result %s, promoted %v, %d steps: want aborted before any step", rep.Result, rep.Promoted, len(rep.Steps))
	}
	if !strings.Contains(rep.Error, "another failover") || !strings.Contains(rep.Error, "db2:3306 is writable now") {
		t.Errorf("error %q does not say another failover made db2 writable", rep.Error)
	}
	for _, a := range []string{"db2:3306", "db3:3306"} {
		for _, st := range f.Statements(a) {
			if !strings.HasPrefix(st, "SELECT") {
				t.Errorf("%s received %q after the stale plan was detected", a, st)
			}
		}
	}
	assertSessionsClosed(t, f, nil, "db2:3306", "db3:3306")
}
