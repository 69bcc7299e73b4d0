package failover

// The failover lock's owner check against topologytest's FAKE dialer: each
// server's answers are scripted, and every statement is recorded. The same
// case on real MariaDB servers is TestFailoverLockHeldByAnApplication in
// test/integration.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/myha/myha/topology"
	"github.com/myha/myha/topology/topologytest"
)

const holderQuery = "SELECT l.id AS id"

func holderRow(id, user, host, secs string) topology.Row {
	r := topology.Row{"id": id, "secs": secs}
	if user != "" {
		r["user"], r["host"] = user, host
	}
	return r
}

func TestAcquireLockDecisions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		account string
		script  func(s *topologytest.Server)
		taken   bool
		holder  bool // a myha (or unidentified) holder is respected
		killed  []int64
		squat   bool
		stmts   []string
	}{
		{"free", "myha", func(s *topologytest.Server) {}, true, false, nil, false,
			[]string{"SELECT GET_LOCK('L', 0) AS r"}},
		{"an application holds it: its session is ended, the lock taken", "myha", func(s *topologytest.Server) {
			s.OnPrefix("SELECT GET_LOCK('L', 0)").Return(topology.Row{"r": "0"})
			s.OnPrefix(holderQuery).Return(holderRow("77", "app", "10.0.0.9:5555", "30"))
		}, true, false, []int64{77}, false,
			[]string{"SELECT GET_LOCK('L', 0) AS r", "SELECT l.id AS id, p.USER AS user, p.HOST AS host, p.TIME AS secs FROM (SELECT IS_USED_LOCK(?) AS id) l LEFT JOIN information_schema.PROCESSLIST p ON p.ID = l.id",
				"KILL CONNECTION 77", "SELECT GET_LOCK('L', 2) AS r"}},
		{"another myha holds it: respected, nobody killed", "myha", func(s *topologytest.Server) {
			s.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "0"})
			s.OnPrefix(holderQuery).Return(holderRow("12", "myha", "10.0.0.5:4444", "45"))
		}, false, true, nil, false, []string{"SELECT GET_LOCK('L', 0) AS r", "SELECT l.id AS id, p.USER AS user, p.HOST AS host, p.TIME AS secs FROM (SELECT IS_USED_LOCK(?) AS id) l LEFT JOIN information_schema.PROCESSLIST p ON p.ID = l.id"}},
		{"holder not visible (no PROCESS): respected", "myha", func(s *topologytest.Server) {
			s.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "0"})
			s.OnPrefix(holderQuery).Return(holderRow("12", "", "", ""))
		}, false, true, nil, false, nil},
		{"no account configured: every holder is respected", "", func(s *topologytest.Server) {
			s.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "0"})
			s.OnPrefix(holderQuery).Return(holderRow("77", "app", "10.0.0.9:5555", "30"))
		}, false, true, nil, false, nil},
		{"the kill fails: go on without the lock, never blocked", "myha", func(s *topologytest.Server) {
			s.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "0"})
			s.OnPrefix(holderQuery).Return(holderRow("77", "app", "10.0.0.9:5555", "30"))
			s.OnPrefix("KILL").Fail(errors.New("Error 1095: You are not owner of thread 77"))
		}, false, false, nil, true, nil},
		{"an application that takes it back each time: bounded, then go on", "myha", func(s *topologytest.Server) {
			s.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "0"})
			s.OnPrefix(holderQuery).Return(holderRow("77", "app", "10.0.0.9:5555", "0"))
		}, false, false, []int64{77, 77, 77}, true, nil},
		{"released between the two reads: taken on the retry", "myha", func(s *topologytest.Server) {
			s.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "0"}).Times(1)
			s.OnPrefix(holderQuery).Return(topology.Row{})
		}, true, false, nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := topologytest.New()
			s := f.Server("db2:3306")
			tc.script(s)
			s.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "1"})
			q, _ := f.Dial(ctx, "db2:3306")
			var logs bytes.Buffer
			res, err := AcquireLock(ctx, q, maria, "db2:3306", "L", tc.account, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var killed []int64
			for _, k := range res.Killed {
				killed = append(killed, k.ConnID)
			}
			if res.Taken != tc.taken || (res.Holder != nil) != tc.holder || !slices.Equal(killed, tc.killed) || (res.Squatter != nil) != tc.squat {
				t.Fatalf("taken %v holder %v killed %v squatter %v", res.Taken, res.Holder, killed, res.Squatter)
			}
			if tc.stmts != nil && !slices.Equal(f.Statements("db2:3306"), tc.stmts) {
				t.Fatalf("statements:\n got %q\nwant %q", f.Statements("db2:3306"), tc.stmts)
			}
			// The lock name is a bound parameter, never spliced into SQL.
			for _, c := range f.Calls() {
				if strings.HasPrefix(c.Stmt, holderQuery) && (len(c.Args) != 1 || c.Args[0] != "L" || strings.Contains(c.Stmt, "'L'")) {
					t.Fatalf("holder query %q args %v", c.Stmt, c.Args)
				}
			}
			if len(tc.killed) > 0 || tc.squat {
				if out := logs.String(); !strings.Contains(out, "not myha's") || !strings.Contains(out, "connection=77") || !strings.Contains(out, "holder=app@10.0.0.9:5555") {
					t.Fatalf("no warning naming the account and connection:\n%s", out)
				}
			}
		})
	}
}

// An application account holding the lock on the candidate does not stop
// a failover: its session is ended, the failover completes, and the report
// says so.
func TestExecutorFailoverWithLockHeldByApplication(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-98", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindFailover})
	f := topologytest.New()
	db2 := f.Server("db2:3306")
	db2.OnPrefix("SELECT GET_LOCK('t', 0)").Return(topology.Row{"r": "0"})
	db2.OnPrefix(holderQuery).Return(holderRow("77", "app", "10.0.0.9:5555", "30"))
	scriptMariaDB(db2, "0-1-100")
	db3 := f.Server("db3:3306")
	followsAfterChange(db3, "2")
	scriptMariaDB(db3, "0-1-98")
	ex := fakeExecutor(f)
	ex.LockAccount = "myha"
	rep := ex.Execute(context.Background(), snap, &plan)
	if rep.Result != ResultSuccess || !rep.Promoted {
		t.Fatalf("result %s: %s", rep.Result, rep.Error)
	}
	if !slices.Contains(f.Statements("db2:3306"), "KILL CONNECTION 77") {
		t.Fatalf("the squatting session was not ended: %q", f.Statements("db2:3306"))
	}
	if !has(rep.Warnings, "ended the session of 'app'@'10.0.0.9:5555' (connection 77, 30 s)") {
		t.Fatalf("warnings %q", rep.Warnings)
	}
}

// Another myha holding the lock stops the failover before any change; the
// error and the log say who and for how long, each time.
func TestExecutorFailoverRespectsAnotherMyha(t *testing.T) {
	snap := deadPrimary(server("db2:3306", 2, "0-1-100", replicaOf("db1:3306", 1, "")), server("db3:3306", 3, "0-1-98", replicaOf("db1:3306", 1, "")))
	plan := Build(snap, pol, Request{Kind: KindFailover})
	f := topologytest.New()
	db2 := f.Server("db2:3306")
	db2.OnPrefix("SELECT GET_LOCK(").Return(topology.Row{"r": "0"})
	db2.OnPrefix(holderQuery).Return(holderRow("12", "myha", "10.0.0.5:4444", "45"))
	scriptMariaDB(db2, "0-1-100")
	scriptMariaDB(f.Server("db3:3306"), "0-1-98")
	ex := fakeExecutor(f)
	ex.LockAccount = "myha"
	var logs bytes.Buffer
	ex.Log = slog.New(slog.NewTextHandler(&logs, nil))
	for range 2 {
		rep := ex.Execute(context.Background(), snap, &plan)
		if rep.Result != ResultAborted || !strings.Contains(rep.Error, "another failover") ||
			!strings.Contains(rep.Error, "db2:3306 by 'myha'@'10.0.0.5:4444' (connection 12, 45 s)") {
			t.Fatalf("result %s: %s", rep.Result, rep.Error)
		}
	}
	if n := strings.Count(logs.String(), "held by myha's account"); n != 2 {
		t.Fatalf("%d log lines for 2 blocked attempts:\n%s", n, logs.String())
	}
	assertNothingWritable(t, f)
	for _, c := range f.Calls() {
		if strings.HasPrefix(c.Stmt, "KILL") || strings.HasPrefix(c.Stmt, "STOP") || strings.HasPrefix(c.Stmt, "CHANGE") {
			t.Fatalf("%s got %q while another myha held the lock", c.Addr, c.Stmt)
		}
	}
}

func TestLockChecks(t *testing.T) {
	snap := snapshot(server("db1:3306", 1, "0-1-5", writable), server("db2:3306", 2, "0-1-5", replicaOf("db1:3306", 1, "")),
		server("db3:3306", 3, "0-1-5", replicaOf("db1:3306", 1, "")), server("db4:3306", 4, "0-1-5", replicaOf("db1:3306", 1, "")))
	holders := map[string]*LockHolder{
		"db1:3306": {Server: "db1:3306", ConnID: 77, User: "app", Host: "10.0.0.9:5555", Seconds: 30},
		"db2:3306": {Server: "db2:3306", ConnID: 12, User: "myha", Host: "10.0.0.5:4444", Seconds: 45},
		"db3:3306": {Server: "db3:3306", ConnID: 13, User: "myha", Host: "10.0.0.5:4445", Seconds: 3600},
		"db4:3306": nil,
	}
	got := map[string]Check{}
	for _, c := range findChecks(RunChecks(CheckInput{Snapshot: snap, Policy: pol, LockHolders: holders, LockAccount: "myha"}), "failover_lock") {
		got[c.Server] = c
	}
	if c := got["db1:3306"]; c.Status != Warn || !strings.Contains(c.Message, "'app'@'10.0.0.9:5555' (connection 77, 30 s)") || !strings.Contains(c.Fix, "KILL 77") {
		t.Errorf("application holder: %+v", c)
	}
	if c := got["db2:3306"]; c.Status != OK || !strings.Contains(c.Message, "connection 12, 45 s") {
		t.Errorf("myha holder: %+v", c)
	}
	if c := got["db3:3306"]; c.Status != Warn || !strings.Contains(c.Message, "3600 s") {
		t.Errorf("myha holder for an hour: %+v", c)
	}
	if _, ok := got["db4:3306"]; ok || len(got) != 3 {
		t.Errorf("checks %+v", got)
	}
	free := findChecks(RunChecks(CheckInput{Snapshot: snap, Policy: pol, LockHolders: map[string]*LockHolder{"db1:3306": nil}}), "failover_lock")
	if len(free) != 1 || free[0].Status != OK {
		t.Errorf("free lock: %+v", free)
	}
}

func has(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
