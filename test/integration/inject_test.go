package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
	"github.com/myha/myha/test/lab"
	topo "github.com/myha/myha/topology"
)

// The candidate dies mid-failover: the executor (the same one the CLI runs,
// in-process so the kill can be timed) must stop at a safe point with no
// server writable; the CLI run again must then complete with the next
// candidate.
func TestFailoverCandidateDiesMidway(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfgPath := haConfig(t, l, "", nil)
	db2, db3 := l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.Server("db1").Exec(ctx, "INSERT INTO lab.w VALUES (1, NOW(6)), (2, NOW(6))"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, l.Server("db1").Kill())

	cfg, c, spec, dialer := inProcess(t, cfgPath)
	pol := failover.Policy{MaxLag: c.Failover.MaxLag, CatchupTimeout: 5 * time.Second}
	snap, plan := planWhenConfirmed(t, spec, dialer, pol)
	if plan.NewPrimary != db2.Addr() {
		t.Fatalf("plan chose %s, want db2 (blockers %v)", plan.NewPrimary, plan.Blockers)
	}
	ex := &failover.Executor{
		Dialer: dialer, Repl: topo.Credentials{User: lab.ReplUser, Password: lab.ReplPass}, Policy: pol,
		Store:      &failover.Store{Dir: cfg.StateDir},
		Rediscover: func(ctx context.Context) topo.Snapshot { return topo.Discover(ctx, spec, dialer) },
		BeforeStep: func(s failover.Step) {
			if s.Kind == failover.StepWaitApplied && s.Server == db2.Addr() {
				db2.Kill()
			}
		},
	}
	rep := ex.Execute(ctx, &snap, &plan)
	if rep.Result != failover.ResultFailed || rep.Promoted || !strings.Contains(rep.SafeStop, "before promotion: no server was made writable") {
		t.Fatalf("candidate died: result %s promoted %v safe stop %q error %q", rep.Result, rep.Promoted, rep.SafeStop, rep.Error)
	}
	for _, s := range rep.FinalState {
		if s.Writable {
			t.Fatalf("%s writable after a safe stop", s.Address)
		}
	}
	t.Logf("safe stop: %s", rep.SafeStop)

	// Run the command again: it plans afresh and promotes db3.
	r := myha(t, "failover", "--cluster", "lab", "--yes", "--config", cfgPath)
	if r.code != 0 || !strings.Contains(r.stdout, "SUCCESS") || !strings.Contains(r.stdout, "new primary: "+db3.Addr()) ||
		!strings.Contains(r.stdout, "stopped before promotion") {
		t.Fatalf("rerun (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if ro := mustQ(t, db3, "SELECT @@read_only"); ro != "0" {
		t.Fatal("db3 not writable after the rerun")
	}
	if n := mustQ(t, db3, "SELECT COUNT(*) FROM lab.w"); n != "2" {
		t.Fatalf("db3 has %s rows, want 2", n)
	}
	if _, err := os.Stat(cfg.StateDir + "/lab/in-progress.json"); err == nil {
		t.Fatal("journal left behind after a finished failover")
	}
}

// The switchover's new primary dies just before it is made writable: the
// replicas were already attached to it (before writes opened), so the
// switchover rolls back — they go back to the old primary, which takes
// writes again — instead of waiting out verify timeouts with no writer.
func TestSwitchoverTargetDiesRollsBack(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfgPath := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	w := l.StartWriter("w", db1, 10*time.Millisecond, false)
	must(t, w.WaitAcked(20, 10*time.Second))

	cfg, c, spec, dialer := inProcess(t, cfgPath)
	pol := failover.Policy{MaxLag: c.Failover.MaxLag, CatchupTimeout: 5 * time.Second, KillGrace: 200 * time.Millisecond}
	snap := topo.Discover(ctx, spec, dialer)
	plan := failover.Build(&snap, pol, failover.Request{Kind: failover.KindSwitchover, NewPrimary: db2.Addr()})
	if !plan.OK() {
		t.Fatalf("switchover plan blocked: %v", plan.Blockers)
	}
	ex := &failover.Executor{
		Dialer: dialer, Repl: topo.Credentials{User: lab.ReplUser, Password: lab.ReplPass}, Policy: pol,
		Store:      &failover.Store{Dir: cfg.StateDir},
		Rediscover: func(ctx context.Context) topo.Snapshot { return topo.Discover(ctx, spec, dialer) },
		BeforeStep: func(s failover.Step) {
			if s.Kind == failover.StepPromote {
				db2.Kill()
			}
		},
	}
	rep := ex.Execute(ctx, &snap, &plan)
	if rep.Result != failover.ResultRolledBack || rep.Promoted {
		t.Fatalf("target died before promotion: result %s promoted %v safe stop %q error %q", rep.Result, rep.Promoted, rep.SafeStop, rep.Error)
	}
	must(t, w.WaitAcked(len(w.Acked())+20, 10*time.Second)) // writes resumed on db1
	w.Stop()
	if ro := mustQ(t, db1, "SELECT @@read_only"); ro != "0" {
		t.Fatal("db1 not writable after the rollback")
	}
	must(t, l.WaitReplicatedFrom(ctx, db1, 10*time.Second))
	if src, err := db3.SlaveStatus(ctx, "Master_Host"); err != nil || src != db1.IP {
		t.Fatalf("db3 replicates from %q after the rollback (%v), want db1", src, err)
	}
	for _, s := range []*lab.Server{db1, db3} {
		if missing, err := w.Missing(ctx, s); err != nil || len(missing) > 0 {
			t.Fatalf("%s lacks %d acknowledged rows (%v)", s.Name, len(missing), err)
		}
	}
	t.Logf("rolled back: %s", rep.SafeStop)
}

// inProcess loads a lab config for tests that run the executor in-process
// (to time a failure exactly): the config, its cluster, the cluster spec
// and a dialer.
func inProcess(t *testing.T, cfgPath string) (*config.Config, config.Cluster, topo.ClusterSpec, topo.SQLDialer) {
	t.Helper()
	cfg, err := config.LoadFile(cfgPath, config.Options{})
	must(t, err)
	c := cfg.Clusters[0]
	spec := topo.ClusterSpec{Name: c.Name, Credentials: topo.Credentials{User: c.User, Password: c.Password.Value()},
		ConnectTimeout: c.ConnectTimeout, ReadTimeout: c.ReadTimeout}
	for _, s := range c.Servers {
		spec.Servers = append(spec.Servers, topo.ServerSpec{Address: s.Address})
	}
	return cfg, c, spec, topo.SQLDialer{Credentials: spec.Credentials, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second}
}

// The old primary was down at discovery and answers again when the
// failover fences it: the fence must speak its dialect (MariaDB has no
// super_read_only; a zero dialect sent MySQL syntax and failed the
// failover), so it is fenced and the failover completes.
func TestFailoverFencesAReturningPrimaryInItsDialect(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfgPath := haConfig(t, l, "", nil)
	db1 := l.Server("db1")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, db1.Exec(ctx, "INSERT INTO lab.w VALUES (1, NOW(6))"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db1.Kill())
	cfg, c, spec, dialer := inProcess(t, cfgPath)
	pol := failover.Policy{MaxLag: c.Failover.MaxLag, CatchupTimeout: 5 * time.Second}
	snap, plan := planWhenConfirmed(t, spec, dialer, pol)
	if !plan.OK() {
		t.Fatalf("plan blocked: %v", plan.Blockers)
	}
	ex := &failover.Executor{
		Dialer: dialer, Repl: topo.Credentials{User: lab.ReplUser, Password: lab.ReplPass}, Policy: pol,
		Store:      &failover.Store{Dir: cfg.StateDir},
		Rediscover: func(ctx context.Context) topo.Snapshot { return topo.Discover(ctx, spec, dialer) },
		BeforeStep: func(s failover.Step) {
			if s.Kind == failover.StepFence {
				must(t, db1.Start(ctx)) // back, read-only as configured, before the fence
			}
		},
	}
	rep := ex.Execute(ctx, &snap, &plan)
	if rep.Result != failover.ResultSuccess || !rep.Promoted {
		t.Fatalf("failover with the old primary back at the fence: %s %q (steps %+v)", rep.Result, rep.Error, rep.Steps)
	}
	for _, s := range rep.Steps {
		if s.Kind == failover.StepFence && !strings.Contains(s.Note, "read_only=1") {
			t.Fatalf("the returning old primary was not fenced over SQL: %q", s.Note)
		}
	}
	if ro := mustQ(t, db1, "SELECT @@read_only"); ro != "1" {
		t.Fatal("the old primary is writable after the failover")
	}
}

// planWhenConfirmed discovers and plans a dead-primary failover until the
// replicas have noticed the kill (the plan rightly refuses before).
func planWhenConfirmed(t *testing.T, spec topo.ClusterSpec, dialer topo.SQLDialer, pol failover.Policy) (topo.Snapshot, failover.Plan) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; {
		snap := topo.Discover(ctx, spec, dialer)
		plan := failover.Build(&snap, pol, failover.Request{Kind: failover.KindFailover})
		if plan.OK() || time.Now().After(deadline) {
			return snap, plan
		}
		time.Sleep(50 * time.Millisecond) // replicas have not noticed the kill yet
	}
}
