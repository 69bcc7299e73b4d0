package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/test/lab"
)

// ReportJSON is the part of a failover report the tests read.
type ReportJSON struct {
	Epoch           int64    `json:"epoch"`
	Result          string   `json:"result"`
	OldPrimary      string   `json:"old_primary"`
	NewPrimary      string   `json:"new_primary"`
	Promoted        bool     `json:"promoted"`
	WritableAfterMS *float64 `json:"writable_after_ms"`
	WriteBlockedMS  *float64 `json:"write_blocked_ms"`
	Error           string   `json:"error"`
	SafeStop        string   `json:"safe_stop"`
	Warnings        []string `json:"warnings"`
	Steps           []struct {
		Kind, Server, Status, Note string
		DurationMS                 float64 `json:"duration_ms"`
	} `json:"steps"`
}

// haConfig writes a config with a state directory and optional extra
// failover settings.
func haConfig(t *testing.T, l *lab.Lab, failoverYAML string, extra map[*lab.Server]string) string {
	t.Helper()
	p := writeConfigWith(t, l, l.Servers, extra)
	b, _ := os.ReadFile(p)
	y := string(b) // writeConfigWith gave it its own state_dir
	if failoverYAML != "" {
		y = strings.Replace(y, "    servers:\n", "    failover:\n"+failoverYAML+"    servers:\n", 1)
	}
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runFailover runs `myha <args> --json` until the replicas have confirmed the
// primary's death (the command rightly refuses while they still replicate),
// and returns the report.
func runFailover(t *testing.T, args ...string) (ReportJSON, result) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := myha(t, append(args, "--json")...)
		if strings.Contains(r.stdout, "still replicate from it") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // replicas have not noticed the kill yet
			continue
		}
		var rep ReportJSON
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Result == "" {
			t.Fatalf("myha %v (exit %d): no report: %v\n%s\n%s", args, r.code, err, r.stdout, r.stderr)
		}
		return rep, r
	}
}

// assertSurvivors checks what a user cares about after a failover: one
// writable server (the new primary), every acknowledged row on every
// survivor, equal checksums, and every other survivor replicating from the
// new primary with no errant transactions.
func assertSurvivors(t testing.TB, l *lab.Lab, cfg string, w *lab.Writer, newPrimary *lab.Server, survivors ...*lab.Server) {
	t.Helper()
	ctx := context.Background()
	if err := l.WaitReplicatedFrom(ctx, newPrimary, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, s := range survivors {
		if w != nil {
			missing, err := w.Missing(ctx, s)
			if err != nil || len(missing) > 0 {
				t.Fatalf("%s lacks %d acknowledged rows (%v): %v", s.Name, len(missing), err, first(missing, 10))
			}
		}
		sum, err := s.Checksum(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, s.Name+"="+sum)
		if sum != strings.TrimPrefix(sums[0], survivors[0].Name+"=") {
			t.Fatalf("checksums differ: %v", sums)
		}
	}
	tp := topology(t, cfg)
	writable := 0
	for _, s := range tp.Clusters[0].Servers {
		if s.Reachable && !s.ReadOnly {
			writable++
			if s.Address != newPrimary.Addr() {
				t.Fatalf("%s is writable; only %s should be", s.Address, newPrimary.Addr())
			}
		}
	}
	if writable != 1 {
		t.Fatalf("%d writable servers", writable)
	}
	for _, s := range survivors {
		if s == newPrimary {
			continue
		}
		v := tp.server(t, s.Addr())
		if v.Source == nil || *v.Source != newPrimary.Addr() || !*v.IORunning || !*v.SQLRunning || len(v.Errant) > 0 {
			t.Fatalf("%s after failover: %+v", s.Name, v)
		}
	}
	if w != nil {
		t.Logf("%d acknowledged rows on every survivor; checksums %v", len(w.Acked()), sums)
	}
}

func first(ids []int64, n int) []int64 {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}

func TestFailoverKillPrimaryUnderWrites(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3, SemiSync: true})
	cfg := haConfig(t, l, "", nil)
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	w := l.StartWriter("w", l.Server("db1"), 10*time.Millisecond, false)
	must(t, w.WaitAcked(50, 10*time.Second))
	must(t, l.Server("db1").Kill())
	w.Stop()

	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || rep.Result != "success" || !rep.Promoted {
		t.Fatalf("failover: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	newP := l.Server("db2")
	if rep.NewPrimary == l.Server("db3").Addr() {
		newP = l.Server("db3")
	}
	other := map[*lab.Server]*lab.Server{l.Server("db2"): l.Server("db3"), l.Server("db3"): l.Server("db2")}[newP]
	assertSurvivors(t, l, cfg, w, newP, newP, other)
	if len(rep.Steps) < 5 || rep.WritableAfterMS == nil {
		t.Fatalf("report lacks its timeline: %+v", rep)
	}
	t.Logf("new primary %s writable %.1fms into the failover", newP.Name, *rep.WritableAfterMS)

	// Recorded, and a second manual failover warns about the block period.
	hist := myha(t, "failover", "--cluster", "lab", "--dry-run", "--config", cfg)
	if !strings.Contains(hist.stdout, "automatic failovers are blocked until") {
		t.Fatalf("no anti-flapping warning after a failover:\n%s", hist.stdout)
	}
}

func TestFailoverCoPrimaryPair(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3, CoPrimary: true, SemiSync: true})
	cfg := haConfig(t, l, "", nil)
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	w := l.StartWriter("w", l.Server("db1"), 10*time.Millisecond, false)
	must(t, w.WaitAcked(30, 10*time.Second))
	must(t, l.Server("db1").Kill())
	w.Stop()

	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	db2, db3 := l.Server("db2"), l.Server("db3")
	if r.code != 0 || rep.NewPrimary != db2.Addr() {
		t.Fatalf("co-primary failover must promote the passive side db2: exit %d %+v", r.code, rep)
	}
	assertSurvivors(t, l, cfg, w, db2, db2, db3)
	// Its replication from the dead side is gone.
	if v := topology(t, cfg).server(t, db2.Addr()); v.Source != nil {
		t.Fatalf("db2 still replicates from %s", *v.Source)
	}
	// The timeline, in words.
	if !strings.Contains(r.stdout, `"kind": "promote"`) {
		t.Fatal("report has no promote step")
	}
}

func TestFailoverToLessAdvancedReplicaCatchesUp(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	must(t, db3.Exec(ctx, "STOP SLAVE"))
	for i := 1; i <= 100; i++ {
		must(t, db1.Exec(ctx, fmt.Sprintf("INSERT INTO lab.w VALUES (%d, NOW(6))", i)))
	}
	must(t, db2.Exec(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", mustQ(t, db1, "SELECT @@gtid_binlog_pos"))))
	must(t, db1.Kill())

	r := myha(t, "failover", "--cluster", "lab", "--new-primary", db3.Addr(), "--yes", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "catch_up") || !strings.Contains(r.stdout, "SUCCESS") {
		t.Fatalf("failover to db3 (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := mustQ(t, db3, "SELECT COUNT(*) FROM lab.w"); n != "100" {
		t.Fatalf("db3 has %s rows after catching up, want 100", n)
	}
	assertSurvivors(t, l, cfg, nil, db3, db3, db2)
}

func TestSwitchoverUnderWrites(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3, SemiSync: true})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	w := l.StartWriter("w", db1, 10*time.Millisecond, true)
	must(t, w.WaitAcked(30, 10*time.Second))

	r := myha(t, "switchover", "--cluster", "lab", "--new-primary", db2.Addr(), "--yes", "--json", "--config", cfg)
	var rep ReportJSON
	json.Unmarshal([]byte(r.stdout), &rep)
	if r.code != 0 || rep.Result != "success" || rep.WriteBlockedMS == nil {
		t.Fatalf("switchover: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	n := len(w.Acked())
	must(t, w.WaitAcked(n+30, 10*time.Second)) // writes go on against the new primary
	w.Stop()
	assertSurvivors(t, l, cfg, w, db2, db2, db1, db3)
	t.Logf("write-blocked window %.1fms at the servers; longest gap between acknowledged client writes %s", *rep.WriteBlockedMS, w.MaxGap())

	text := myha(t, "switchover", "--cluster", "lab", "--new-primary", db1.Addr(), "--yes", "--config", cfg)
	if text.code != 0 || !strings.Contains(text.stdout, "writes were blocked for") {
		t.Fatalf("switchover back (exit %d):\n%s\n%s", text.code, text.stdout, text.stderr)
	}
}

func TestFailoverPreHookFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "      pre_failover: [\"echo refusing; exit 1\"]\n", nil)
	must(t, l.Server("db1").Kill())
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 2 || rep.Result != "aborted" || !strings.Contains(rep.Error, "refusing") || len(rep.Steps) != 0 {
		t.Fatalf("pre hook exit 1: exit %d %+v", r.code, rep)
	}
	for _, s := range []*lab.Server{l.Server("db2"), l.Server("db3")} {
		if ro := mustQ(t, s, "SELECT @@read_only"); ro != "1" {
			t.Fatalf("%s made writable", s.Name)
		}
		// Its IO thread still tries the old primary: nothing was stopped.
		st := topology(t, cfg).server(t, s.Addr())
		if st.IOState == "No" {
			t.Fatalf("%s: IO thread was stopped although the hook aborted", s.Name)
		}
	}
	_ = ctx
}

func TestFailoverRefusedWhileLockHeld(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db2 := l.Server("db2")
	// Another myha holds the lock on db2 (a session of its own).
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = lab.AdminUser, lab.AdminPass, "tcp", db2.Addr()
	conn, _ := mysql.NewConnector(c)
	db := sql.OpenDB(conn)
	defer db.Close()
	holder, err := db.Conn(ctx)
	must(t, err)
	defer holder.Close()
	var got int
	must(t, holder.QueryRowContext(ctx, "SELECT GET_LOCK('myha_failover_lab', 0)").Scan(&got))
	if got != 1 {
		t.Fatal("could not take the lock for the test")
	}
	must(t, l.Server("db1").Kill())
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	// myha's own account holds it: respected, and the error says who holds
	// it, from where and for how long.
	var id string
	must(t, holder.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id))
	if r.code != 2 || rep.Result != "aborted" || !strings.Contains(rep.Error, "another failover") ||
		!strings.Contains(rep.Error, db2.Addr()+" by 'myha'@") || !strings.Contains(rep.Error, "(connection "+id+",") {
		t.Fatalf("held lock: exit %d %+v", r.code, rep)
	}
	if !strings.Contains(r.stderr, "held by myha's account") {
		t.Fatalf("no log line for the blocked failover:\n%s", r.stderr)
	}
	ck, _ := check(t, cfg)
	if st, msg := ck.status("failover_lock", db2.Addr()); st != "ok" || !strings.Contains(msg, "'myha'@") || !strings.Contains(msg, "connection "+id+",") {
		t.Fatalf("check: failover_lock on db2: %s %s", st, msg)
	}
	if ro := mustQ(t, db2, "SELECT @@read_only"); ro != "1" {
		t.Fatal("db2 changed while another failover held the lock")
	}
}

func TestSwitchoverCoPrimaryKeepsThePair(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3, CoPrimary: true})
	cfg := haConfig(t, l, "", nil)
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	r := myha(t, "switchover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "keep_co_primary_link") {
		t.Fatalf("co-primary switchover (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	must(t, db2.Exec(ctx, "INSERT INTO lab.w VALUES (1, NOW(6))"))
	must(t, l.WaitReplicatedFrom(ctx, db2, 10*time.Second))
	tp := topology(t, cfg)
	a, b := tp.server(t, db2.Addr()), tp.server(t, db1.Addr())
	if a.Role != "primary" || b.Role != "co-primary" || *a.Source != db1.Addr() || *b.Source != db2.Addr() || !*a.IORunning || !*b.IORunning {
		t.Fatalf("the pair must survive the switchover: db2 %+v db1 %+v", a, b)
	}
	if v := tp.server(t, db3.Addr()); *v.Source != db2.Addr() {
		t.Fatalf("db3 replicates from %s, want db2", *v.Source)
	}
	if n := mustQ(t, db1, "SELECT COUNT(*) FROM lab.w"); n != "1" {
		t.Fatal("a write on the new primary did not reach its co-primary")
	}
}

// An MHA master_ip_failover_script is called as MHA calls it: --command=stop
// before any change, --command=start after the promotion; exit 10 is a warning.
func TestFailoverCallsMHAScript(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 3})
	dir := t.TempDir()
	logf := filepath.Join(dir, "calls.log")
	script := filepath.Join(dir, "master_ip_failover")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$*\" >> "+logf+"\ncase \"$*\" in *--command=start*) exit 10;; esac\nexit 0\n"), 0o755)
	cfg := haConfig(t, l, "      master_ip_failover_script: "+script+"\n", nil)
	must(t, l.Server("db1").Kill())
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if rep.Result != "partial" || r.code != 1 {
		t.Fatalf("exit 10 from the start phase must be a warning: exit %d %+v", r.code, rep)
	}
	b, _ := os.ReadFile(logf)
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	db1 := l.Server("db1")
	if len(calls) != 2 || !strings.HasPrefix(calls[0], "--command=stop") || !strings.Contains(calls[0], "--orig_master_host="+db1.IP) ||
		!strings.HasPrefix(calls[1], "--command=start") || !strings.Contains(calls[1], "--new_master_host="+strings.Split(rep.NewPrimary, ":")[0]) {
		t.Fatalf("script calls: %q", calls)
	}
	if strings.Contains(string(b), "password") {
		t.Fatal("a password was passed on the command line")
	}
}
