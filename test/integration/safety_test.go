package integration

// Data-safety cases on real servers: the replicas DBAs really run (errant,
// filtered, file/position, without log_slave_updates, lagging candidates,
// two GTID domains, semi-sync) with the primary killed, and crashes of the
// failover command at its promotion boundaries. Each asserts what a user
// cares about: every row a surviving replica received is on the new primary
// or the plan refused and said why, no errant GTID spread, exactly one
// writable server, survivors replicating.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// planOrRefusal runs `myha failover` until the replicas have noticed the
// kill and returns its result, whether it ran or was blocked.
func planOrRefusal(t *testing.T, env []string, args ...string) result {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := myhaEnv(t, env, args...)
		if strings.Contains(r.stdout+r.stderr, "still replicate from it") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // replicas have not noticed the kill yet
			continue
		}
		return r
	}
}

// writables lists the servers that accept writes now.
func writables(t *testing.T, l *lab.Lab) []string {
	t.Helper()
	var out []string
	for _, s := range l.Servers {
		if !s.Running() {
			continue
		}
		if ro, err := s.QueryString(context.Background(), "SELECT @@read_only"); err == nil && ro == "0" {
			out = append(out, s.Name)
		}
	}
	return out
}

func insertRows(t *testing.T, s *lab.Server, table string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		must(t, s.Exec(context.Background(), fmt.Sprintf("INSERT INTO lab.%s VALUES (%d, NOW(6))", table, i)))
	}
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// slaveField reads one column of SHOW SLAVE STATUS.
func slaveField(t *testing.T, s *lab.Server, col string) string {
	t.Helper()
	v, err := s.SlaveStatus(context.Background(), col)
	must(t, err)
	return v
}

// A replica with a local (errant) write must not be promoted when the
// primary is dead, and its errant GTID must reach no other server.
func TestFailoverSkipsErrantReplicaWithDeadPrimary(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	insertRows(t, db1, "w", 1, 20)
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	// A DBA's "quick fix" on db2, with binary logging on: errant.
	must(t, db2.Exec(ctx, "INSERT INTO lab.w VALUES (999999, NOW(6))"))
	must(t, db1.Kill())

	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if rep.NewPrimary != db3.Addr() || !rep.Promoted {
		t.Fatalf("want db3 promoted (db2 is errant): exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	if n := mustQ(t, db3, "SELECT COUNT(*) FROM lab.w WHERE id = 999999"); n != "0" {
		t.Fatal("db2's errant row reached db3")
	}
	if pos := mustQ(t, db3, "SELECT @@gtid_binlog_pos"); strings.Contains(pos, fmt.Sprintf("-%d-", db2.ServerID)) {
		t.Fatalf("db2's errant GTID is in db3's binlog position %s", pos)
	}
	if n := mustQ(t, db3, "SELECT COUNT(*) FROM lab.w"); n != "20" {
		t.Fatalf("db3 has %s rows, want 20", n)
	}
	if w := writables(t, l); len(w) != 1 || w[0] != "db3" {
		t.Fatalf("writable servers %v, want [db3]", w)
	}
	if !strings.Contains(r.stdout, "errant") {
		t.Fatalf("the report does not say db2 was left behind as errant:\n%s", r.stdout)
	}
}

// A replica with replication filters holds every GTID and not every row: it
// must not be promoted.
func TestFailoverSkipsFilteredReplica(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, db2.Exec(ctx, "STOP SLAVE", "SET GLOBAL replicate_wild_ignore_table='lab.skip%'", "START SLAVE"))
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.CreateWriteTable(ctx, "skip"))
	insertRows(t, db1, "w", 1, 10)
	insertRows(t, db1, "skip", 1, 10)
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db1.Kill())

	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if rep.NewPrimary != db3.Addr() {
		t.Fatalf("want db3 promoted (db2 is filtered): exit %d %+v\n%s", r.code, rep, r.stdout)
	}
	if n := mustQ(t, db3, "SELECT COUNT(*) FROM lab.skip"); n != "10" {
		t.Fatalf("new primary has %s rows of lab.skip, want 10", n)
	}
	if w := writables(t, l); len(w) != 1 || w[0] != "db3" {
		t.Fatalf("writable servers %v, want [db3]", w)
	}
}

// A MariaDB replica on file/position replication that received more than
// any GTID replica: its relay log cannot be waited for by GTID, and
// repointing it would discard it. The failover must refuse and say so,
// changing nothing.
func TestFailoverRefusesToDropFilePositionRelayLog(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	insertRows(t, db1, "w", 1, 5)
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	// db2 as MHA leaves it: file/position. Its SQL thread lags (stopped);
	// db3 stopped receiving a while ago.
	must(t, db2.Exec(ctx, "STOP SLAVE", "CHANGE MASTER TO MASTER_USE_GTID=no", "START SLAVE"))
	must(t, db2.Exec(ctx, "STOP SLAVE SQL_THREAD"))
	must(t, db3.Exec(ctx, "STOP SLAVE IO_THREAD"))
	insertRows(t, db1, "w", 6, 40)
	waitFor(t, "db2 receives db1's last write", 10*time.Second, func() bool {
		m, err := db1.MasterStatus(ctx)
		if err != nil {
			return false
		}
		f, _ := db2.SlaveStatus(ctx, "Master_Log_File")
		p, _ := db2.SlaveStatus(ctx, "Read_Master_Log_Pos")
		return f+":"+p == m
	})
	readBefore := slaveField(t, db2, "Read_Master_Log_Pos")
	must(t, db1.Kill())

	r := planOrRefusal(t, nil, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stdout, "file/position") || !strings.Contains(r.stdout, db2.Addr()) || !strings.Contains(r.stdout, "would be lost") {
		t.Fatalf("failover must refuse to drop db2's relay log (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if w := writables(t, l); len(w) != 0 {
		t.Fatalf("a refused failover changed something: writable %v", w)
	}
	if got := slaveField(t, db2, "Read_Master_Log_Pos"); got != readBefore || slaveField(t, db2, "Using_Gtid") != "No" {
		t.Fatalf("db2's relay log was touched: read position %s → %s", readBefore, got)
	}
	if n := mustQ(t, db3, "SELECT COUNT(*) FROM lab.w"); n != "5" {
		t.Fatalf("db3 has %s rows: the test setup did not leave it behind", n)
	}
}

// The most advanced replica runs without log_slave_updates: its binlog
// lacks what it replicated, so nobody can catch up from it and promoting
// another server loses what only it received. The plan must refuse unless
// the operator accepts the loss, and name what would be lost.
func TestFailoverRefusesLossFromReplicaWithoutLogSlaveUpdates(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, db2.Restart(ctx, "--log-slave-updates=0"))
	must(t, db2.Exec(ctx, "START SLAVE"))
	insertRows(t, db1, "w", 1, 5)
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db3.Exec(ctx, "STOP SLAVE IO_THREAD"))
	insertRows(t, db1, "w", 6, 30)
	must(t, db2.Exec(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, 10)", quoteLit(mustQ(t, db1, "SELECT @@gtid_binlog_pos")))))
	must(t, db1.Kill())

	r := planOrRefusal(t, nil, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stdout, "would be lost") || !strings.Contains(r.stdout, "log_slave_updates is off") || !strings.Contains(r.stdout, "--accept-loss") {
		t.Fatalf("failover must refuse to lose what only db2 received (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if w := writables(t, l); len(w) != 0 {
		t.Fatalf("a refused failover changed something: writable %v", w)
	}
	if n := mustQ(t, db2, "SELECT COUNT(*) FROM lab.w"); n != "30" {
		t.Fatalf("db2 has %s rows, want 30", n)
	}
}

// candidateBehind builds the chaos case: the candidate's SQL thread is
// stopped while writes go on (the other replica applies them all), then the
// primary is killed.
func candidateBehind(t *testing.T, failoverYAML string) (*lab.Lab, string, *lab.Writer) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, failoverYAML, map[*lab.Server]string{l.Server("db2"): "candidate: true"})
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, l.Server("db2").Exec(ctx, "STOP SLAVE SQL_THREAD"))
	w := l.StartWriter("w", l.Server("db1"), 5*time.Millisecond, false)
	must(t, w.WaitAcked(200, 20*time.Second))
	w.Stop()
	must(t, l.Server("db3").Exec(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, 10)", quoteLit(mustQ(t, l.Server("db1"), "SELECT @@gtid_binlog_pos")))))
	must(t, l.Server("db1").Kill())
	return l, cfg, w
}

// The candidate's SQL thread is stopped and its IO thread keeps receiving:
// the failover must start the SQL thread before it stops the IO thread
// (which would discard the relay log) and never promote below what the
// candidate received. Every acknowledged row survives.
func TestFailoverCandidateWithStoppedSQLThreadKeepsEveryRow(t *testing.T) {
	l, cfg, w := candidateBehind(t, "      max_backlog: -1\n")
	db2, db3 := l.Server("db2"), l.Server("db3")
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || rep.NewPrimary != db2.Addr() {
		t.Fatalf("want the candidate db2 promoted: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	assertSurvivors(t, l, cfg, w, db2, db2, db3)
}

// The same candidate with the default-like backlog bound: too far behind to
// apply quickly, it is not promoted; the up-to-date replica is, and nothing
// is lost.
func TestFailoverBackloggedCandidateNotPromoted(t *testing.T) {
	l, cfg, w := candidateBehind(t, "      max_backlog: 50\n")
	db2, db3 := l.Server("db2"), l.Server("db3")
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || rep.NewPrimary != db3.Addr() {
		t.Fatalf("want db3 promoted (db2 has a backlog over max_backlog): exit %d %+v\n%s", r.code, rep, r.stdout)
	}
	assertSurvivors(t, l, cfg, w, db3, db3, db2)
}

// Writes in two GTID domains at the moment of the kill: every row of both
// survives on every server.
func TestFailoverTwoGTIDDomains(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.CreateWriteTable(ctx, "d1"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db1.Exec(ctx, "SET GLOBAL gtid_domain_id=1"))
	w := l.StartWriter("d1", db1, 5*time.Millisecond, false) // new sessions: domain 1
	must(t, w.WaitAcked(20, 10*time.Second))
	must(t, db1.Exec(ctx, "SET GLOBAL gtid_domain_id=0"))
	w0 := l.StartWriter("w", db1, 5*time.Millisecond, false)
	must(t, w0.WaitAcked(50, 10*time.Second))
	must(t, db1.Kill())
	w.Stop()
	w0.Stop()
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || !rep.Promoted {
		t.Fatalf("failover: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	newP, other := db2, db3
	if rep.NewPrimary == db3.Addr() {
		newP, other = db3, db2
	}
	assertSurvivors(t, l, cfg, w0, newP, newP, other)
	for _, s := range []*lab.Server{newP, other} {
		if missing, err := w.Missing(ctx, s); err != nil || len(missing) > 0 {
			t.Fatalf("%s lacks %d domain-1 rows (%v)", s.Name, len(missing), err)
		}
	}
	if pos := mustQ(t, newP, "SELECT @@gtid_binlog_pos"); !strings.Contains(pos, "1-") {
		t.Fatalf("the test wrote nothing in domain 1: %s", pos)
	}
}

// Semi-sync survives a dead-primary failover: the new primary has the
// primary side on, lossless (AFTER_SYNC), although the old one cannot be
// asked.
func TestFailoverKeepsSemiSyncAfterDeadPrimary(t *testing.T) {
	l, cfg := labWithTable(t, lab.Options{Servers: 3, SemiSync: true}, "")
	must(t, l.Server("db1").Kill())
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || !rep.Promoted {
		t.Fatalf("failover: exit %d %+v", r.code, rep)
	}
	newP := l.Server("db2")
	if rep.NewPrimary == l.Server("db3").Addr() {
		newP = l.Server("db3")
	}
	if on := mustQ(t, newP, "SELECT @@rpl_semi_sync_master_enabled"); on != "1" {
		t.Fatal("semi-sync primary side is off on the new primary: acknowledged writes are no longer protected")
	}
	if wp := mustQ(t, newP, "SELECT @@rpl_semi_sync_master_wait_point"); wp != "AFTER_SYNC" {
		t.Fatalf("wait point %s, want AFTER_SYNC", wp)
	}
}

// Another server is already writable while the primary is dead (an
// interrupted earlier failover, a DBA): promoting a third would make two
// writers. The plan must refuse.
func TestFailoverRefusesWhenAnotherServerIsWritable(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	must(t, l.Server("db1").Kill())
	must(t, l.Server("db3").Exec(ctx, "SET GLOBAL read_only=0"))
	r := planOrRefusal(t, nil, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stdout, "already writable") {
		t.Fatalf("failover must refuse with db3 writable (exit %d):\n%s", r.code, r.stdout)
	}
	if w := writables(t, l); len(w) != 1 || w[0] != "db3" {
		t.Fatalf("writable servers %v, want only db3 (untouched)", w)
	}
}

// chaosSample is the boundaries CI runs; MYHA_CHAOS=full (make chaos) runs
// every boundary of the plan: before and after each step on each server,
// and the points inside promote and repoint.
var chaosSample = []string{"after:fence_old_primary", "after:stop_replication_io", "promote:intent", "promote:writable", "after:promote", "repoint:changed"}

// writerSampler records, every 50 ms, which servers accept writes
// (read_only=0) and fails the test on two at once.
type writerSampler struct {
	stop    chan struct{}
	done    chan struct{}
	samples int
	overlap []string
}

func sampleWriters(t *testing.T, l *lab.Lab) *writerSampler {
	s := &writerSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			var w []string
			for _, srv := range l.Servers {
				if !srv.Running() {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				ro, err := srv.QueryString(ctx, "SELECT @@read_only")
				cancel()
				if err == nil && ro == "0" {
					w = append(w, srv.Name)
				}
			}
			s.samples++
			if len(w) > 1 {
				s.overlap = append(s.overlap, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), w))
			}
		}
	}()
	return s
}

func (s *writerSampler) check(t *testing.T) {
	t.Helper()
	close(s.stop)
	<-s.done
	if len(s.overlap) > 0 {
		t.Fatalf("two writable servers in %d of %d samples: %v", len(s.overlap), s.samples, s.overlap)
	}
	t.Logf("sampler: %d samples, 0 with two writers", s.samples)
}

// chaosPoints lists the boundaries of the plan a failover would follow now.
func chaosPoints(t *testing.T, cfg string) []string {
	t.Helper()
	r := planOrRefusal(t, nil, "failover", "--cluster", "lab", "--dry-run", "--json", "--config", cfg)
	var out struct {
		Plan struct {
			Steps []struct{ Kind, Server string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Plan.Steps) == 0 {
		t.Fatalf("dry run (exit %d): %v\n%s", r.code, err, r.stdout)
	}
	var pts []string
	for _, st := range out.Plan.Steps {
		pts = append(pts, "before:"+st.Kind+"@"+st.Server, "after:"+st.Kind+"@"+st.Server)
		switch st.Kind {
		case "promote":
			pts = append(pts, "promote:intent@"+st.Server, "promote:writable@"+st.Server)
		case "repoint":
			pts = append(pts, "repoint:changed@"+st.Server)
		}
	}
	return pts
}

// The failover command is killed at a boundary of its plan (CI: a fixed
// sample around promotion; make chaos: every boundary); run again, it
// finishes the first promotion (never a second), repoints a half-repointed
// replica, and loses no acknowledged row; no sample ever sees two writers.
func TestChaosFailoverBoundaries(t *testing.T) {
	points := chaosSample
	if os.Getenv("MYHA_CHAOS") == "full" {
		points = nil // computed from the first lab's plan
	}
	run := func(t *testing.T, point string) {
		ctx := context.Background()
		l := lab.New(t, lab.Options{Servers: 3})
		cfg := haConfig(t, l, "", nil)
		must(t, l.CreateWriteTable(ctx, "w"))
		must(t, l.WaitReplicated(ctx, 10*time.Second))
		w := l.StartWriter("w", l.Server("db1"), 5*time.Millisecond, false)
		must(t, w.WaitAcked(50, 10*time.Second))
		must(t, l.Server("db1").Kill())
		w.Stop()
		s := sampleWriters(t, l)

		r := planOrRefusal(t, []string{"MYHA_CRASH_AT=" + point}, "failover", "--cluster", "lab", "--yes", "--json", "--config", cfg)
		if r.code != 97 {
			t.Fatalf("the injected crash at %s did not happen (exit %d):\n%s\n%s", point, r.code, r.stdout, r.stderr)
		}
		firstNew := ""
		if b, err := os.ReadFile(stateDir(t, cfg) + "/lab/in-progress.json"); err == nil {
			var j struct {
				NewPrimary string `json:"new_primary"`
				Promoted   bool   `json:"promoted"`
			}
			json.Unmarshal(b, &j)
			if j.Promoted {
				firstNew = j.NewPrimary
			}
		}
		rep, r2 := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
		if r2.code != 0 || rep.Result != "success" {
			t.Fatalf("rerun after a crash at %s: exit %d %+v\n%s", point, r2.code, rep, r2.stderr)
		}
		if firstNew != "" && rep.NewPrimary != firstNew {
			t.Fatalf("a second promotion: the crashed run had promoted %s, the rerun %s", firstNew, rep.NewPrimary)
		}
		s.check(t)
		newP, other := l.Server("db2"), l.Server("db3")
		if rep.NewPrimary == other.Addr() {
			newP, other = other, newP
		}
		assertSurvivors(t, l, cfg, w, newP, newP, other)
	}
	if points == nil {
		l := lab.New(t, lab.Options{Servers: 3})
		must(t, l.Server("db1").Kill())
		points = chaosPoints(t, haConfig(t, l, "", nil))
		// Lab addresses differ between labs: match on the step, not the server.
		seen := map[string]bool{}
		var kinds []string
		for _, p := range points {
			if k := p[:strings.Index(p, "@")]; !seen[k] {
				seen[k] = true
				kinds = append(kinds, k)
			}
		}
		points = kinds
		l.Close()
	}
	t.Logf("%d boundaries", len(points))
	for _, point := range points {
		t.Run(strings.ReplaceAll(point, ":", "_"), func(t *testing.T) { run(t, point) })
	}
}

// stateDir reads the state_dir line haConfig wrote.
func stateDir(t *testing.T, cfg string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "state_dir: "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no state_dir in the config")
	return ""
}

// An application account holding READ ONLY ADMIN (what GRANT ALL gives on
// MariaDB 10.11) writes through read_only: check names it. The semi-sync
// wait point AFTER_COMMIT is not lossless: check says so.
func TestCheckPrivilegedAccountsAndWaitPoint(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3, SemiSync: true})
	cfg := writeConfig(t, l)
	db1 := l.Server("db1")
	must(t, db1.Exec(ctx, "CREATE USER 'app_admin'@'%' IDENTIFIED BY 'x'", "GRANT ALL PRIVILEGES ON *.* TO 'app_admin'@'%'"))
	// Prove the premise on the real server: read_only does not stop it.
	must(t, db1.Exec(ctx, "SET GLOBAL read_only=1"))
	if err := l.AsUser(ctx, db1, "app_admin", "x", "CREATE DATABASE IF NOT EXISTS privileged_write"); err != nil {
		t.Fatalf("premise: an account with READ ONLY ADMIN should write through read_only: %v", err)
	}
	must(t, db1.Exec(ctx, "SET GLOBAL read_only=0", "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_COMMIT"))
	c, _ := check(t, cfg)
	st, msg := c.status("privileged_accounts", db1.Addr())
	if st != "warn" || !strings.Contains(msg, "app_admin") {
		t.Fatalf("privileged_accounts on db1: %s %q", st, msg)
	}
	if strings.Contains(msg, "'"+lab.AdminUser+"'") || strings.Contains(msg, "'"+lab.ReplUser+"'") {
		t.Fatalf("myha's own accounts reported as application accounts: %q", msg)
	}
	if st, msg := c.status("semi_sync", db1.Addr()); st != "warn" || !strings.Contains(msg, "AFTER_COMMIT") {
		t.Fatalf("semi_sync on db1 with AFTER_COMMIT: %s %q", st, msg)
	}
}

// The active side of a co-primary pair dies: the pair is known only from
// what was seen while it answered (myha check, the daemon's probes), and
// the passive side takes over — catching up first, as it had fallen behind.
func TestFailoverCoPrimaryRememberedAfterActiveDies(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3, CoPrimary: true})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db2.Exec(ctx, "STOP SLAVE IO_THREAD"))
	insertRows(t, db1, "w", 1, 20)
	must(t, db3.Exec(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, 10)", quoteLit(mustQ(t, db1, "SELECT @@gtid_binlog_pos")))))
	if r := myha(t, "check", "--config", cfg); r.code > 1 && !strings.Contains(r.stdout, "co-primary") {
		t.Fatalf("check before the kill (exit %d):\n%s", r.code, r.stdout)
	}
	must(t, db1.Kill())

	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || rep.NewPrimary != db2.Addr() {
		t.Fatalf("want the passive co-primary db2 promoted: exit %d %+v\n%s", r.code, rep, r.stdout)
	}
	if n := mustQ(t, db2, "SELECT COUNT(*) FROM lab.w"); n != "20" {
		t.Fatalf("db2 has %s rows after catching up, want 20", n)
	}
	assertSurvivors(t, l, cfg, nil, db2, db2, db3)
}

// A primary configured to start writable (read_only=0 on its command line,
// as in a my.cnf without read_only) would take writes after a crash and
// restart before anything fences it: check fails it by name.
func TestCheckFailsServersThatStartWritable(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := writeConfig(t, l)
	db1, db2 := l.Server("db1"), l.Server("db2")
	must(t, db1.Restart(ctx, "--read-only=0"))
	c, code := check(t, cfg)
	if st, msg := c.status("read_only_at_start", db1.Addr()); st != "fail" || !strings.Contains(msg, "starts writable") || code != 2 {
		t.Fatalf("read_only_at_start on db1 (exit %d): %s %q", code, st, msg)
	}
	if st, msg := c.status("read_only_at_start", db2.Addr()); st != "ok" {
		t.Fatalf("read_only_at_start on db2, started with --read-only=1: %s %q", st, msg)
	}
}

// An application account with READ ONLY ADMIN keeps writing to the old
// primary through a switchover: read_only does not stop it, the global
// read lock held from the final position until the new primary takes
// writes does. Every row acknowledged before the new primary became
// writable is on it. (Writes such an account sends to the old primary
// afterwards are writes to a replica: errant, and reported as such.)
func TestSwitchoverStopsPrivilegedWriters(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3, SemiSync: true})
	cfg := haConfig(t, l, "", nil)
	db1, db2 := l.Server("db1"), l.Server("db2")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, db1.Exec(ctx, "CREATE USER 'app_admin'@'%' IDENTIFIED BY 'x'", "GRANT ALL PRIVILEGES ON *.* TO 'app_admin'@'%'"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	w := l.StartWriterAs("app_admin", "x", "w", db1, 2*time.Millisecond, false)
	must(t, w.WaitAcked(30, 10*time.Second))

	r := myha(t, "switchover", "--cluster", "lab", "--new-primary", db2.Addr(), "--yes", "--json", "--config", cfg)
	w.Stop()
	var rep struct {
		ReportJSON
		Started time.Time `json:"started"`
	}
	json.Unmarshal([]byte(r.stdout), &rep)
	if r.code > 1 || !rep.Promoted || rep.WritableAfterMS == nil {
		t.Fatalf("switchover: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	if !strings.Contains(r.stdout, "global read lock held") {
		t.Fatalf("the switchover did not lock out the privileged writer:\n%s", r.stdout)
	}
	writable := rep.Started.Add(time.Duration(*rep.WritableAfterMS * float64(time.Millisecond)))
	before := w.AckedBefore(writable)
	missing, err := w.MissingOf(ctx, db2, before)
	must(t, err)
	if len(missing) > 0 {
		t.Fatalf("%d of %d rows acknowledged on the old primary before the new one took writes are missing there: %v", len(missing), len(before), first(missing, 10))
	}
	t.Logf("%d rows acknowledged before the promotion, all on the new primary; write-blocked window %.1f ms", len(before), *rep.WriteBlockedMS)
}

// A delayed replica (MASTER_DELAY) received more than the others: it is
// neither promoted nor used as a catch-up source (its relay log applies
// only an hour later), and what only it received is named as a loss: the
// failover refuses at once instead of waiting out catchup_timeout with no
// writable server.
func TestFailoverDelayedReplicaIsNotACatchUpSource(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "      catchup_timeout: 20s\n", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	insertRows(t, db1, "w", 1, 5)
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db3.Exec(ctx, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=3600", "START SLAVE"))
	must(t, db2.Exec(ctx, "STOP SLAVE IO_THREAD"))
	insertRows(t, db1, "w", 6, 20)
	want := mustQ(t, db1, "SELECT @@gtid_binlog_pos")
	waitFor(t, "db3 receives everything", 10*time.Second, func() bool {
		got, err := db3.SlaveStatus(ctx, "Gtid_IO_Pos")
		return err == nil && got == want
	})
	must(t, db1.Kill())

	start := time.Now()
	r := planOrRefusal(t, nil, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stdout, "delayed") || !strings.Contains(r.stdout, "would be lost") {
		t.Fatalf("failover must refuse, naming the delayed replica (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if w := writables(t, l); len(w) != 0 {
		t.Fatalf("a refused failover changed something: writable %v", w)
	}
	t.Logf("refused in %s", time.Since(start).Round(time.Millisecond))
}

// myha failover --force on a live primary whose replicas have not yet
// received its last transactions (their link stalled): fencing reads the
// final position and every replica receives up to it before its IO thread
// stops. Every acknowledged row is on the new primary.
func TestFailoverForceOnLivePrimaryWaitsForItsLastTransactions(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	l.RequireNetns(t)
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	// The replicas' links to db1 drop packets: db1 keeps committing
	// (asynchronous replication), nothing reaches them.
	must(t, db2.Host.DropFrom(ctx, &db1.Host))
	must(t, db3.Host.DropFrom(ctx, &db1.Host))
	insertRows(t, db1, "w", 1, 30)
	must(t, db2.Host.HealDrops(ctx))
	must(t, db3.Host.HealDrops(ctx))

	r := myha(t, "failover", "--cluster", "lab", "--force", "--yes", "--json", "--config", cfg)
	var rep ReportJSON
	json.Unmarshal([]byte(r.stdout), &rep)
	if !rep.Promoted {
		t.Fatalf("forced failover: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	newP := db2
	if rep.NewPrimary == db3.Addr() {
		newP = db3
	}
	if n := mustQ(t, newP, "SELECT COUNT(*) FROM lab.w"); n != "30" {
		t.Fatalf("new primary %s has %s of the 30 rows db1 committed before it was fenced", newP.Name, n)
	}
	if w := writables(t, l); len(w) != 1 || w[0] != newP.Name {
		t.Fatalf("writable servers %v, want [%s]", w, newP.Name)
	}
}

// A replica whose SQL thread stopped, then its IO thread too, holds in its
// relay log transactions nobody else received; starting either thread
// discards them (MariaDB). The failover must name that loss and refuse.
func TestFailoverRefusesToDropAStrandedRelayLog(t *testing.T) {
	ctx := context.Background()
	l, cfg := labWithTable(t, lab.Options{Servers: 3}, "")
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, db3.Exec(ctx, "STOP SLAVE SQL_THREAD"))
	must(t, db2.Exec(ctx, "STOP SLAVE IO_THREAD"))
	insertRows(t, db1, "w", 1, 30)
	want := mustQ(t, db1, "SELECT @@gtid_binlog_pos")
	waitFor(t, "db3 receives everything", 10*time.Second, func() bool {
		got, err := db3.SlaveStatus(ctx, "Gtid_IO_Pos")
		return err == nil && got == want
	})
	must(t, db3.Exec(ctx, "STOP SLAVE IO_THREAD"))
	must(t, db1.Kill())
	r := planOrRefusal(t, nil, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stdout, "both stopped") || !strings.Contains(r.stdout, db3.Addr()) {
		t.Fatalf("failover must refuse to lose db3's relay log (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if w := writables(t, l); len(w) != 0 {
		t.Fatalf("a refused failover changed something: writable %v", w)
	}
}

// With gtid_strict_mode=0 a replica's local write can share its seq_no
// with a later replicated GTID: its positions no longer show it, its
// binlog state does. It is errant, with the primary alive and dead, and
// is not promoted.
func TestFailoverSeesErrantWritesWithoutStrictMode(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	insertRows(t, db1, "w", 1, 5)
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db2.Exec(ctx, "SET GLOBAL gtid_strict_mode=0"))
	must(t, db2.Exec(ctx, "INSERT INTO lab.w VALUES (999999, NOW(6))"))
	insertRows(t, db1, "w", 6, 10)
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	if v := topology(t, cfg).server(t, db2.Addr()); len(v.Errant) == 0 {
		t.Fatalf("db2's local write is not reported errant with the primary alive: %+v", v)
	}
	must(t, db1.Kill())
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if rep.NewPrimary != db3.Addr() {
		t.Fatalf("want db3 promoted (db2 holds an errant write): exit %d %+v\n%s", r.code, rep, r.stdout)
	}
	if n := mustQ(t, db3, "SELECT COUNT(*) FROM lab.w WHERE id = 999999"); n != "0" {
		t.Fatal("db2's errant row reached db3")
	}
}

// myha failover --force on a live primary while an account with READ ONLY
// ADMIN writes: read_only alone does not stop it, the global read lock held
// for the whole failover does. Every row acknowledged before the command
// ended is on the new primary, and the report warns that the old primary
// takes that account's writes again afterwards.
func TestFailoverForceHoldsOffPrivilegedWriters(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db1 := l.Server("db1")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, db1.Exec(ctx, "CREATE USER 'app_admin'@'%' IDENTIFIED BY 'x'", "GRANT ALL PRIVILEGES ON *.* TO 'app_admin'@'%'"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	w := l.StartWriterAs("app_admin", "x", "w", db1, 2*time.Millisecond, false)
	must(t, w.WaitAcked(30, 10*time.Second))
	r := myha(t, "failover", "--cluster", "lab", "--force", "--yes", "--json", "--config", cfg)
	w.Stop()
	var rep struct {
		ReportJSON
		Started    time.Time `json:"started"`
		DurationMS float64   `json:"duration_ms"`
	}
	json.Unmarshal([]byte(r.stdout), &rep)
	if !rep.Promoted {
		t.Fatalf("forced failover: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	newP := l.Server("db2")
	if rep.NewPrimary == l.Server("db3").Addr() {
		newP = l.Server("db3")
	}
	// The lock is held until the command has verified the outcome; every
	// write acknowledged during the failover's steps must be on the new
	// primary (later ones are writes to a server that is no longer primary).
	ended := rep.Started.Add(time.Duration(rep.DurationMS * float64(time.Millisecond)))
	before := w.AckedBefore(ended)
	missing, err := w.MissingOf(ctx, newP, before)
	must(t, err)
	if len(missing) > 0 {
		t.Fatalf("%d of %d rows acknowledged before the failover's steps ended are not on the new primary %s: %v", len(missing), len(before), newP.Name, first(missing, 10))
	}
	if !strings.Contains(strings.Join(rep.Warnings, " "), "bypass read_only") {
		t.Fatalf("no warning about the privileged account: %v", rep.Warnings)
	}
}

// The servers run with NO_BACKSLASH_ESCAPES and the replication password
// holds a backslash: every statement myha sends quotes it right (its
// sessions pin sql_mode), so a switchover leaves every replica connected.
func TestSwitchoverUnderNoBackslashEscapes(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, db1.Exec(ctx, `CREATE USER 'repl2'@'%' IDENTIFIED BY 'p\\w'`, "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl2'@'%'"))
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	for _, s := range l.Servers {
		must(t, s.Exec(ctx, "SET GLOBAL sql_mode=CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES')"))
	}
	cfg := haConfig(t, l, "", nil)
	b, err := os.ReadFile(cfg)
	must(t, err)
	y := strings.Replace(string(b), "replication_user: repl\n", "replication_user: repl2\n", 1)
	y = strings.Replace(y, "replication_password: "+lab.ReplPass+"\n", "replication_password: 'p\\w'\n", 1)
	must(t, os.WriteFile(cfg, []byte(y), 0o600))
	r := myha(t, "switchover", "--cluster", "lab", "--new-primary", db2.Addr(), "--yes", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("switchover under NO_BACKSLASH_ESCAPES (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	must(t, l.WaitReplicatedFrom(ctx, db2, 10*time.Second))
	for _, s := range []*lab.Server{db1, db3} {
		if io, _ := s.SlaveStatus(ctx, "Slave_IO_Running"); io != "Yes" {
			t.Fatalf("%s IO thread %s after the switchover", s.Name, io)
		}
	}
}

// The failover command dies after recording its intent to promote, then
// the server it was promoting dies too: the rerun refuses to promote a
// second server on its own (the first may have taken writes) and says how
// to proceed; with --accept-loss it sets the attempt aside and fails over
// to the remaining replica, losing no row that replica had.
func TestFailoverIntentThenTargetDies(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	must(t, l.CreateWriteTable(ctx, "w"))
	insertRows(t, l.Server("db1"), "w", 1, 10)
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, l.Server("db1").Kill())
	if r := planOrRefusal(t, []string{"MYHA_CRASH_AT=promote:intent"}, "failover", "--cluster", "lab", "--yes", "--config", cfg); r.code != 97 {
		t.Fatalf("the injected crash did not happen (exit %d):\n%s", r.code, r.stderr)
	}
	b, err := os.ReadFile(stateDir(t, cfg) + "/lab/in-progress.json")
	must(t, err)
	var j struct {
		NewPrimary string `json:"new_primary"`
	}
	must(t, json.Unmarshal(b, &j))
	target, other := l.Server("db2"), l.Server("db3")
	if j.NewPrimary == other.Addr() {
		target, other = other, target
	}
	must(t, target.Kill())
	r := myha(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 2 || !strings.Contains(r.stdout, "--accept-loss") {
		t.Fatalf("rerun with the promoted server dead must refuse and say how to go on (exit %d):\n%s", r.code, r.stdout)
	}
	rep, r2 := runFailover(t, "failover", "--cluster", "lab", "--yes", "--accept-loss", "--config", cfg)
	if r2.code > 1 || rep.NewPrimary != other.Addr() || !rep.Promoted {
		t.Fatalf("rerun with --accept-loss: exit %d %+v\n%s\n%s", r2.code, rep, r2.stderr, r2.stdout)
	}
	if w := writables(t, l); len(w) != 1 || w[0] != other.Name {
		t.Fatalf("writable %v, want [%s]", w, other.Name)
	}
	if n := mustQ(t, other, "SELECT COUNT(*) FROM lab.w"); n != "10" {
		t.Fatalf("%s has %s rows, want 10", other.Name, n)
	}
}

// The failover command dies right after catching its choice up from a
// more advanced replica (the choice now replicates, stopped, from that
// replica); the rerun picks a candidate and must still bring the first
// choice along, or say it did not.
func TestFailoverCrashAfterCatchUpLeavesNoReplicaBehind(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 4})
	db1, db2, db3, db4 := l.Server("db1"), l.Server("db2"), l.Server("db3"), l.Server("db4")
	cfg := haConfig(t, l, "", map[*lab.Server]string{db4: "candidate: true"})
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db2.Exec(ctx, "STOP SLAVE IO_THREAD"))
	insertRows(t, db1, "w", 1, 10)
	must(t, db4.Exec(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, 10)", quoteLit(mustQ(t, db1, "SELECT @@gtid_binlog_pos")))))
	must(t, db4.Exec(ctx, "STOP SLAVE IO_THREAD"))
	insertRows(t, db1, "w", 11, 30)
	must(t, db3.Exec(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, 10)", quoteLit(mustQ(t, db1, "SELECT @@gtid_binlog_pos")))))
	must(t, db1.Kill())
	if r := planOrRefusal(t, []string{"MYHA_CRASH_AT=after:catch_up"}, "failover", "--cluster", "lab", "--new-primary", db2.Addr(), "--yes", "--config", cfg); r.code != 97 {
		t.Fatalf("the injected crash did not happen (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep, r2 := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r2.code != 0 || rep.Result != "success" {
		t.Fatalf("rerun: exit %d %+v\n%s", r2.code, rep, r2.stderr)
	}
	var newP *lab.Server
	for _, s := range []*lab.Server{db2, db3, db4} {
		if rep.NewPrimary == s.Addr() {
			newP = s
		}
	}
	var rest []*lab.Server
	for _, s := range []*lab.Server{db2, db3, db4} {
		if s != newP {
			rest = append(rest, s)
		}
	}
	assertSurvivors(t, l, cfg, nil, newP, append([]*lab.Server{newP}, rest...)...)
	if n := mustQ(t, newP, "SELECT COUNT(*) FROM lab.w"); n != "30" {
		t.Fatalf("new primary %s has %s rows, want 30", newP.Name, n)
	}
}

// labWithTable starts a lab with a failover config and the writers' table
// lab.w, replicated everywhere.
func labWithTable(t *testing.T, opts lab.Options, failoverYAML string) (*lab.Lab, string) {
	t.Helper()
	ctx := context.Background()
	l := lab.New(t, opts)
	cfg := haConfig(t, l, failoverYAML, nil)
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	return l, cfg
}
