package capture

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/test/lab"
)

// Real MariaDB 10.11 (test/lab, loopback): the capture is the primary's only
// semi-sync replica, so each commit returns only after the capture's ACK.

func startPos(l *lab.Lab) func(context.Context, string) (binlog.MariaDBPos, error) {
	return func(ctx context.Context, _ string) (binlog.MariaDBPos, error) {
		s, err := l.Servers[0].QueryString(ctx, "SELECT @@gtid_binlog_pos")
		if err != nil {
			return binlog.MariaDBPos{}, err
		}
		return binlog.ParseMariaDBPos(s)
	}
}

func newTestCapture(t *testing.T, l *lab.Lab, dir string) (*Capture, context.CancelFunc, chan struct{}) {
	t.Helper()
	c, err := New(Config{Cluster: "lab", Dir: dir, StartPosition: startPos(l),
		Dump: DumpOptions{User: lab.ReplUser, Password: lab.ReplPass, ServerID: 9001, SemiSync: true, Heartbeat: 500 * time.Millisecond}},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	c.SetPrimary(l.Servers[0].Addr())
	return c, cancel, done
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func status(t *testing.T, s *lab.Server, name string) string {
	t.Helper()
	v, err := s.QueryString(context.Background(), "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='"+name+"'")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mariadbBinlogGTIDs runs the real mariadb-binlog over the segments and
// returns the GTIDs it prints, in order.
func mariadbBinlogGTIDs(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "capture-*.bin"))
	if len(files) == 0 {
		t.Fatal("no segment files")
	}
	out, err := exec.Command("mariadb-binlog", files...).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-binlog %v: %v\n%s", files, err, out)
	}
	if strings.Contains(string(out), "ERROR") {
		t.Fatalf("mariadb-binlog reports an error:\n%s", out)
	}
	return regexp.MustCompile(`(?m)GTID (\d+-\d+-\d+)`).FindAllString(string(out), -1)
}

func TestCaptureAcksAfterFsyncAndResumes(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 1, Loopback: true})
	ctx := context.Background()
	p := l.Servers[0]
	if err := p.Exec(ctx, "CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(20))", "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC",
		"SET GLOBAL rpl_semi_sync_master_timeout=30000", "SET GLOBAL rpl_semi_sync_master_enabled=1"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, cancel, done := newTestCapture(t, l, dir)
	// The primary switches semi-sync on once the capture has caught up.
	waitFor(t, "semi-sync on with the capture as its one client", 10*time.Second, func() bool {
		return status(t, p, "Rpl_semi_sync_master_clients") == "1" && status(t, p, "Rpl_semi_sync_master_status") == "ON"
	})
	yes0 := status(t, p, "Rpl_semi_sync_master_yes_tx")
	for i := 1; i <= 50; i++ {
		if err := p.Exec(ctx, fmt.Sprintf("INSERT INTO lab.t VALUES (%d, 'a')", i)); err != nil {
			t.Fatal(err)
		}
	}
	if no := status(t, p, "Rpl_semi_sync_master_no_tx"); no != "0" {
		logTail(t, p)
		t.Fatalf("%s commits went without a semi-sync ACK: the capture did not acknowledge", no)
	}
	if yes := status(t, p, "Rpl_semi_sync_master_yes_tx"); atoi(yes)-atoi(yes0) != 50 {
		t.Fatalf("%s → %s commits acknowledged, want 50", yes0, yes)
	}
	want, _ := p.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	// Every acknowledged commit is already on disk: the position read
	// back from the files equals the primary's at once.
	if got := c.Status().Position; got != want {
		logTail(t, p)
		t.Fatalf("captured %s right after the acknowledged commits, primary at %s", got, want)
	}
	cancel()
	<-done

	// A torn tail (half an event) is cut off at reopen.
	files, _ := filepath.Glob(filepath.Join(dir, "capture-*.bin"))
	last := files[len(files)-1]
	f, _ := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21})
	f.Close()
	if err := p.Exec(ctx, "SET GLOBAL rpl_semi_sync_master_timeout=200"); err != nil {
		t.Fatal(err)
	}
	for i := 51; i <= 80; i++ { // written while the capture is down
		if err := p.Exec(ctx, fmt.Sprintf("INSERT INTO lab.t VALUES (%d, 'b')", i)); err != nil {
			t.Fatal(err)
		}
	}
	c2, cancel2, done2 := newTestCapture(t, l, dir)
	defer func() { cancel2(); <-done2 }()
	if got := c2.Status().Position; got != want {
		t.Fatalf("reopened at %s, want %s (what was on disk)", got, want)
	}
	waitFor(t, "semi-sync to be back on with the capture", 10*time.Second, func() bool {
		return status(t, p, "Rpl_semi_sync_master_status") == "ON"
	})
	for i := 81; i <= 100; i++ {
		if err := p.Exec(ctx, fmt.Sprintf("INSERT INTO lab.t VALUES (%d, 'c')", i)); err != nil {
			t.Fatal(err)
		}
	}
	want, _ = p.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	waitFor(t, "the capture to reach "+want, 10*time.Second, func() bool { return c2.Status().Position == want })

	// mariadb-binlog reads the segments, and they hold every GTID of the
	// primary's binlog since the capture started, once each, in order.
	got := mariadbBinlogGTIDs(t, dir)
	primaryFiles, _ := filepath.Glob(filepath.Join(p.DataDir, "mysql-bin.[0-9]*"))
	out, err := exec.Command("mariadb-binlog", primaryFiles...).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-binlog on the primary: %v\n%s", err, out)
	}
	all := regexp.MustCompile(`(?m)GTID (\d+-\d+-\d+)`).FindAllString(string(out), -1)
	i := 0
	for i < len(all) && all[i] != got[0] {
		i++
	}
	if strings.Join(all[i:], " ") != strings.Join(got, " ") {
		t.Fatalf("captured GTIDs differ from the primary's binlog:\ncapture %v\nprimary %v", got, all[i:])
	}
	if len(got) < 100 {
		t.Fatalf("captured %d transactions, want at least the 100 inserts", len(got))
	}
}

func logTail(t *testing.T, s *lab.Server) {
	b, _ := os.ReadFile(filepath.Join(s.DataDir, "error.log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	t.Logf("%s error log:\n%s", s.Name, b)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
