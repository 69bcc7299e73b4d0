package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// captureYAML turns the monitors' binlog captures on.
const captureYAML = "    capture:\n      enabled: true\n"

// semiSyncOnlyCaptures makes db1 a semi-sync primary whose only semi-sync
// replicas are the three monitors' captures (the lab's replicas stay
// asynchronous), and waits until the primary counts all three and has
// semi-sync on.
func semiSyncOnlyCaptures(t testing.TB, m *monitorsLab) {
	t.Helper()
	ctx := context.Background()
	p := m.Server("db1")
	must(t, p.Exec(ctx, "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC", "SET GLOBAL rpl_semi_sync_master_timeout=10000",
		"SET GLOBAL rpl_semi_sync_master_enabled=1"))
	for _, s := range m.Servers {
		if v, _ := s.QueryString(ctx, "SELECT @@rpl_semi_sync_slave_enabled"); v != "0" {
			t.Fatalf("%s acknowledges semi-sync itself: the proof needs only captures acknowledging", s.Name)
		}
	}
	waitFor(t, "semi-sync on db1 with the three captures as its clients", 30*time.Second, func() bool {
		c, _ := p.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Rpl_semi_sync_master_clients'")
		s, _ := p.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Rpl_semi_sync_master_status'")
		return c == "3" && s == "ON"
	})
}

// capture-proof runs: MYHA_CAPTURE_RUNS (default 2; make capture-proof
// runs 10).
func captureRuns() int {
	if n, err := strconv.Atoi(os.Getenv("MYHA_CAPTURE_RUNS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// The host of the primary is gone (mariadbd killed with -9, its datadir
// moved away) while a client commits every 5 ms; no replica acknowledges
// semi-sync (db2's IO thread is stopped, db3 stops receiving), only the
// monitors' captures do. After the automatic failover every acknowledged
// insert is on the new primary, nothing is errant, and every survivor
// replicates from it.
func TestCaptureZeroLossWhenPrimaryHostIsGone(t *testing.T) {
	for i := 1; i <= captureRuns(); i++ {
		t.Run(fmt.Sprintf("run%d", i), func(t *testing.T) { captureProofRun(t, i, false, false, 150) })
	}
}

// The same with a co-primary pair (db1 active, db2 passive, db3 below
// db1): the passive side, its IO thread stopped, is promoted and replays
// what only the captures hold.
func TestCaptureZeroLossCoPrimary(t *testing.T) {
	captureProofRun(t, 1, true, false, 150)
}

// The same with TLS everywhere (require_secure_transport=ON, verify-full):
// the captures stream over TLS, and the promoted server replays from a
// capture server that accepts only TLS, verifying its certificate and
// name with the cluster's MASTER_SSL settings.
func TestCaptureZeroLossOverTLS(t *testing.T) {
	captureProofRun(t, 1, false, true, 150)
}

// captureTLSYAML gives each monitor's capture server a certificate from
// the lab CA naming the monitor's IP.
const captureTLSYAML = captureYAML + "      cert_file: 'LABTLSDIR/capture-{name}.crt'\n      key_file: 'LABTLSDIR/capture-{name}.key'\n"

// captureFigures are one proof run's measurements.
type captureFigures struct {
	Outage          time.Duration // kill → first acknowledged write on the new primary
	WritableAfterMS float64       // the failover report's kill-independent figure
	ReplayMS        float64       // the replay_from_capture steps
}

// captureProofRun runs the proof once; held transactions are committed
// (and acknowledged only by the captures) after db3 stops receiving.
func captureProofRun(t testing.TB, run int, coPrimary, withTLS bool, held int) captureFigures {
	ctx := context.Background()
	yaml := captureYAML
	if withTLS {
		yaml = captureTLSYAML
	}
	m := startMonitorsLabVIP(t, lab.Options{Servers: 3, CoPrimary: coPrimary, TLS: withTLS, RequireSecureTransport: withTLS}, "", yaml)
	must(t, m.CreateWriteTable(ctx, "w"))
	must(t, m.WaitReplicated(ctx, 20*time.Second))
	db1, db2, db3 := m.Server("db1"), m.Server("db2"), m.Server("db3")
	must(t, db2.Exec(ctx, "STOP SLAVE IO_THREAD"))
	semiSyncOnlyCaptures(t, m)
	m.leader(t)

	w := m.StartWriter("w", db1, 5*time.Millisecond, true)
	defer w.Stop()
	must(t, w.WaitAcked(100, 20*time.Second))
	// db3 stops receiving too: from now on only the captures get the
	// primary's transactions.
	must(t, db3.Host.DropIncomingFrom(ctx, &db1.Host))
	n := len(w.Acked())
	must(t, w.WaitAcked(n+held, time.Duration(held)*100*time.Millisecond+20*time.Second))

	killAt := time.Now()
	must(t, db1.Kill())
	must(t, os.Rename(db1.DataDir, db1.DataDir+".gone")) // the host's disk is gone too
	lastOld := w.AckedBefore(killAt)

	rep := m.oneFailoverEverywhere(t)
	must(t, db3.Host.HealDrops(ctx))
	if rep.Result != "success" || !rep.Promoted {
		t.Fatalf("failover: %+v", rep)
	}
	newP, other := db3, db2
	if rep.NewPrimary == db2.Addr() {
		newP, other = db2, db3
	}
	if coPrimary && newP != db2 {
		t.Fatalf("the passive co-primary db2 was not promoted: %s", rep.NewPrimary)
	}
	var replayed []string
	var fig captureFigures
	for _, s := range rep.Steps {
		if s.Kind == "replay_from_capture" {
			replayed = append(replayed, fmt.Sprintf("%s (%.0f ms)", s.Note, s.DurationMS))
			fig.ReplayMS += s.DurationMS
		}
	}
	if len(replayed) == 0 {
		t.Fatalf("no replay from a capture, yet no replica had the last acknowledged transactions: steps %+v", rep.Steps)
	}
	waitFor(t, "the writer to commit on the new primary", 30*time.Second, func() bool {
		_, s, ok := w.FirstAckAfter(killAt, db1)
		return ok && s == newP
	})
	firstNew, _, _ := w.FirstAckAfter(killAt, db1)
	must(t, w.WaitAcked(len(w.Acked())+20, 20*time.Second))
	w.Stop()
	missing, err := w.Missing(ctx, newP)
	must(t, err)
	acked := len(w.Acked())
	outage := firstNew.Sub(killAt)
	t.Logf("CAPTURE-PROOF run %d: acknowledged=%d (before the kill %d) acknowledged-lost=%d outage=%s writable_after_ms=%v replay: %s",
		run, acked, len(lastOld), len(missing), outage.Round(time.Millisecond), ptr(rep.WritableAfterMS), strings.Join(replayed, "; "))
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged inserts are not on the new primary %s: %v", len(missing), newP.Name, first(missing, 10))
	}
	assertSurvivors(t, m.Lab, m.cfg, w, newP, newP, other)
	fig.Outage = outage
	if rep.WritableAfterMS != nil {
		fig.WritableAfterMS = *rep.WritableAfterMS
	}
	return fig
}

// BenchmarkCaptureReplay1000: the proof's setting with 1,000 transactions
// that only the captures hold when the primary's host goes; figures: kill
// → the first acknowledged write on the new primary (goal 1.5 s), the
// report's writable_after_ms, and the replay's own duration. Each run
// builds a lab (-benchtime=1x -count=K).
func BenchmarkCaptureReplay1000(b *testing.B) {
	oneLabPerRun(b)
	fig := captureProofRun(b, 1, false, false, 1000)
	b.ReportMetric(fig.Outage.Seconds(), "s_outage")
	b.ReportMetric(fig.WritableAfterMS/1000, "s_writable_after")
	b.ReportMetric(fig.ReplayMS/1000, "s_replay")
}

// captureJSON is a monitor's own capture in /api/clusters.
type captureJSON struct {
	Clusters []struct {
		Capture struct {
			Position  string `json:"position"`
			Connected bool   `json:"connected"`
			Gaps      uint64 `json:"gaps"`
		} `json:"capture"`
	} `json:"clusters"`
}

func (m *monitorsLab) capturePos(h *lab.Host) string {
	var c captureJSON
	if _, err := getJSON(m.api(h, "/api/clusters"), &c); err != nil || len(c.Clusters) == 0 {
		return ""
	}
	return c.Clusters[0].Capture.Position
}

// binlogGTIDs lists the GTIDs mariadb-binlog prints for files, in order.
func binlogGTIDs(t *testing.T, files ...string) []string {
	t.Helper()
	out, err := exec.Command("mariadb-binlog", files...).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-binlog %v: %v\n%s", files, err, tail(string(out), 2000))
	}
	var g []string
	for _, f := range gtidRE.FindAllStringSubmatch(string(out), -1) {
		g = append(g, f[1])
	}
	return g
}

var gtidRE = regexp.MustCompile(`(?m)\bGTID (\d+-\d+-\d+)`)

// A capturing monitor killed with -9 mid-stream and restarted resumes from
// its files: compared with the primary's own binlog through mariadb-binlog,
// its segments hold every transaction since it started, once each, in order.
func TestCaptureMonitorKilledResumesWithoutGapsOrDuplicates(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLabVIP(t, lab.Options{Servers: 2}, "", captureYAML)
	must(t, m.CreateWriteTable(ctx, "w"))
	semiSyncOnlyCaptures(t, m)
	db1 := m.Server("db1")
	w := m.StartWriter("w", db1, 3*time.Millisecond, false)
	defer w.Stop()
	must(t, w.WaitAcked(200, 20*time.Second))
	m.kill("mon2")
	n := len(w.Acked())
	must(t, w.WaitAcked(n+200, 20*time.Second)) // mon1 and mon3 acknowledge meanwhile
	m.start(t, m.Host("mon2"))
	n = len(w.Acked())
	must(t, w.WaitAcked(n+200, 20*time.Second))
	w.Stop()
	want, err := db1.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	must(t, err)
	waitFor(t, "mon2's capture to reach "+want, 20*time.Second, func() bool { return m.capturePos(m.Host("mon2")) == want })

	segs, _ := filepath.Glob(filepath.Join(m.dir, "state", "monitor-mon2", "capture", lab.ClusterName, "capture-*.bin"))
	bins, _ := filepath.Glob(filepath.Join(db1.DataDir, "mysql-bin.[0-9]*"))
	if len(segs) == 0 || len(bins) == 0 {
		t.Fatalf("segments %v, primary binlogs %v", segs, bins)
	}
	got, all := binlogGTIDs(t, segs...), binlogGTIDs(t, bins...)
	i := slices.Index(all, got[0])
	if i < 0 || !slices.Equal(all[i:], got) {
		t.Fatalf("mon2's capture (%d GTIDs, %s..%s) is not the primary's binlog from its first GTID on (%d GTIDs): gaps or duplicates", len(got), got[0], got[len(got)-1], len(all)-max(i, 0))
	}
	t.Logf("mon2 killed and restarted: its %d captured transactions match the primary's binlog exactly (%s..%s)", len(got), got[0], got[len(got)-1])
}

// myha status shows what every monitor's capture holds; myha check passes
// while the captures acknowledge, and fails once the primary's semi-sync
// fell back to async because no capture acknowledges any more.
func TestCaptureStatusAndCheck(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLabVIP(t, lab.Options{Servers: 2}, "", captureYAML)
	semiSyncOnlyCaptures(t, m)
	db1 := m.Server("db1")
	must(t, db1.Exec(ctx, "CREATE TABLE lab.c (id INT PRIMARY KEY)", "INSERT INTO lab.c VALUES (1)"))
	pos, err := db1.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	must(t, err)
	waitFor(t, "mon1's capture to hold "+pos, 10*time.Second, func() bool { return m.capturePos(m.Host("mon1")) == pos })
	st := myha(t, "status", "--daemon", m.api(m.Host("mon1"), ""))
	for _, want := range []string{"capture on mon1: captured " + pos, "capture on mon2: captured", "capture on mon3: captured",
		"this monitor's capture: streaming from " + db1.Addr() + ", acknowledging semi-sync after fsync"} {
		if !strings.Contains(st.stdout, want) {
			t.Fatalf("myha status lacks %q:\n%s", want, st.stdout)
		}
	}
	if r := myha(t, "check", "--config", m.cfg); !strings.Contains(r.stdout, "3 capture(s) answer and follow the primary") {
		t.Fatalf("myha check with three acknowledging captures:\n%s", r.stdout)
	}

	for _, n := range []string{"mon1", "mon2", "mon3"} {
		m.kill(n)
	}
	// MariaDB 10.11 keeps Rpl_semi_sync_master_status=ON with no client
	// left, and commits stop waiting: the clients count tells.
	waitFor(t, "db1 to see no semi-sync client", 20*time.Second, func() bool {
		c, _ := db1.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Rpl_semi_sync_master_clients'")
		return c == "0"
	})
	r := myha(t, "check", "--config", m.cfg)
	if r.code != 2 || !strings.Contains(r.stdout, "fallen back to async") || !strings.Contains(r.stdout, "does not answer") {
		t.Fatalf("myha check with every capture gone: exit %d, want 2 naming the async fallback:\n%s", r.code, r.stdout)
	}
}

// The monitors capture from servers that refuse plain text
// (require_secure_transport=ON, tls.mode verify-full): each capture streams
// over TLS and acknowledges semi-sync, each capture server serves TLS with
// its capture certificate, and myha status and check read every capture's
// position over verified TLS.
func TestCaptureThroughMonitorsOverTLS(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLabVIP(t, lab.Options{Servers: 2, TLS: true, RequireSecureTransport: true}, "", captureTLSYAML)
	semiSyncOnlyCaptures(t, m)
	db1 := m.Server("db1")
	must(t, db1.Exec(ctx, "CREATE TABLE lab.c (id INT PRIMARY KEY)", "INSERT INTO lab.c VALUES (1)"))
	if no, _ := db1.QueryString(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Rpl_semi_sync_master_no_tx'"); no != "0" {
		t.Fatalf("%s commits without a capture's ACK", no)
	}
	pos, err := db1.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	must(t, err)
	waitFor(t, "mon1's capture to hold "+pos, 10*time.Second, func() bool { return m.capturePos(m.Host("mon1")) == pos })
	st := myha(t, "status", "--daemon", m.api(m.Host("mon1"), ""))
	for _, want := range []string{"capture on mon1: captured " + pos, "capture on mon2: captured", "capture on mon3: captured"} {
		if !strings.Contains(st.stdout, want) {
			t.Fatalf("myha status lacks %q:\n%s", want, st.stdout)
		}
	}
	if r := myha(t, "check", "--config", m.cfg); !strings.Contains(r.stdout, "3 capture(s) answer and follow the primary") {
		t.Fatalf("myha check with three TLS captures:\n%s", r.stdout)
	}
}
