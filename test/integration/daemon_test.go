package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/certs"
	"github.com/myha/myha/test/lab"
)

const apiToken = "lab-api-token"

// bestEffort lets the monitors promote without proof that an unreachable
// old primary is fenced: these labs have neither agents nor a
// shutdown_script, and failover.fencing: require would refuse.
const bestEffort = "      fencing: best_effort\n"

// monitorsLab is a lab with three monitor hosts running `myha daemon`.
type monitorsLab struct {
	*lab.Lab
	cfg   string
	mons  []*lab.Host
	mu    sync.Mutex
	procs map[string]*exec.Cmd
	logs  map[string]*os.File
	dir   string
	// monEnv is added to the environment of monitors (re)started after it
	// is set (MYHA_CRASH_AT).
	monEnv []string
	// apiPort is each monitor's API port: 8080 on hosts of their own, free
	// ports when the monitors share 127.0.0.1 (a loopback lab, not root).
	apiPort map[string]int
	// listed are the servers the config lists (all but unlisted ones).
	listed []*lab.Server
}

func startMonitorsLab(t testing.TB, opts lab.Options, failoverYAML string) *monitorsLab {
	return startMonitorsLabVIP(t, opts, failoverYAML, "")
}

// startMonitorsLabVIP also adds cluster-level YAML (a vip: section).
func startMonitorsLabVIP(t testing.TB, opts lab.Options, failoverYAML, clusterYAML string) *monitorsLab {
	t.Helper()
	return startMonitorsLabWith(t, opts, monLabOptions{failoverYAML: failoverYAML, clusterYAML: clusterYAML})
}

// monLabOptions shape a monitors lab beyond its servers.
type monLabOptions struct {
	failoverYAML string // lines under failover:
	// clusterYAML is added to the cluster; VIPADDR in it becomes the lab's
	// VIP address (198.18.<lab id>.200), known once the lab is up.
	clusterYAML string
	monEnv      []string // extra environment of the monitors (MYHA_CRASH_AT)
	// securityYAML adds lines under security: (api_read_token_file).
	securityYAML string
	// unlisted leaves the lab's last servers out of the config: replicas
	// myha does not know about, there from the monitors' first start.
	unlisted int
	// serverYAML adds lines under a server's entry (server name → lines,
	// indented 8 spaces: "        candidate: true\n").
	serverYAML map[string]string
}

// vipAddr is the VIP a lab's config gets for VIPADDR.
func vipAddr(l *lab.Lab) string { return fmt.Sprintf("198.18.%d.200", l.ID) }

// startMonitorsLabWith starts three monitors on their final config.
func startMonitorsLabWith(t testing.TB, opts lab.Options, o monLabOptions) *monitorsLab {
	t.Helper()
	opts.Hosts = append(opts.Hosts, "mon1", "mon2", "mon3")
	l := lab.New(t, opts)
	m := &monitorsLab{Lab: l, procs: map[string]*exec.Cmd{}, logs: map[string]*os.File{}, dir: t.TempDir(), monEnv: o.monEnv, apiPort: map[string]int{}}
	clusterYAML := strings.ReplaceAll(o.clusterYAML, "VIPADDR", vipAddr(l))
	m.listed = l.Servers[:len(l.Servers)-o.unlisted]
	ips := map[string]string{}
	for _, n := range []string{"mon1", "mon2", "mon3"} {
		ips[n] = l.Host(n).IP
	}
	if strings.Contains(clusterYAML, "LABTLSDIR") {
		// Capture certificates from the lab CA, naming each monitor's IP
		// (LABTLSDIR/capture-{name}.crt and .key).
		for n, ip := range ips {
			if err := certs.Issue(l.TLSDir(), "capture-"+n, []net.IP{net.ParseIP(ip)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		clusterYAML = strings.ReplaceAll(clusterYAML, "LABTLSDIR", l.TLSDir())
	}
	// A secure deployment: raft over mutual TLS, gossip encrypted.
	sec, err := lab.SecurityYAML(m.dir, apiToken, ips)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\n%s%smonitors:\n", filepath.Join(m.dir, "state"), sec, o.securityYAML)
	for _, n := range []string{"mon1", "mon2", "mon3"} {
		h := l.Host(n)
		m.mons = append(m.mons, h)
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n", n, h.IP)
		m.apiPort[n] = 8080
		if !l.Netns {
			var p [3]int
			for i := range p {
				if p[i], err = lab.FreePort(); err != nil {
					t.Fatal(err)
				}
			}
			fmt.Fprintf(&b, "    gossip_port: %d\n    raft_port: %d\n    api_port: %d\n", p[0], p[1], p[2])
			m.apiPort[n] = p[2]
		}
	}
	y := b.String() + l.ConfigYAML()
	y = strings.Replace(y, "    servers:\n", "    failover:\n"+o.failoverYAML+clusterYAML+"    servers:\n", 1)
	for _, s := range l.Servers[len(m.listed):] {
		y = strings.Replace(y, "      - address: "+s.Addr()+"\n", "", 1)
	}
	for name, extra := range o.serverYAML {
		entry := "      - address: " + l.Server(name).Addr() + "\n"
		y = strings.Replace(y, entry, entry+extra, 1)
	}
	m.cfg = filepath.Join(m.dir, "myha.yaml")
	os.WriteFile(m.cfg, []byte(y), 0o600)
	for _, h := range m.mons {
		m.start(t, h)
	}
	t.Cleanup(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for name, p := range m.procs {
			p.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				p.Process.Kill()
				err = <-done
				t.Errorf("%s did not exit within 15 s of SIGTERM", name)
			}
			if dir := os.Getenv("MYHA_TEST_LOGS"); dir != "" {
				// Kept for reading timings after a passing run.
				keep := filepath.Join(dir, t.Name())
				os.MkdirAll(keep, 0o755)
				if b, err := os.ReadFile(m.logs[name].Name()); err == nil {
					os.WriteFile(filepath.Join(keep, name+".log"), b, 0o644)
				}
			}
			if t.Failed() {
				t.Logf("%s exited: %v", name, err)
				b, rerr := os.ReadFile(m.logs[name].Name())
				t.Logf("--- %s log (%s, %v) ---\n%s", name, m.logs[name].Name(), rerr, tail(string(b), 30000))
			}
		}
	})
	return m
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func (m *monitorsLab) start(t testing.TB, h *lab.Host, args ...string) {
	t.Helper()
	f, _ := os.OpenFile(filepath.Join(m.dir, h.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if len(args) == 0 {
		args = []string{"daemon", "--name", h.Name}
	}
	cmd := h.Command(context.Background(), myhaBin, append(args, "--config", m.cfg, "--log-level", "info")...)
	cmd.Stdout, cmd.Stderr = f, f
	if args[0] == "daemon" && len(m.monEnv) > 0 {
		cmd.Env = append(os.Environ(), m.monEnv...)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.procs[h.Name], m.logs[h.Name] = cmd, f
	m.mu.Unlock()
}

// kill ends a monitor at once (kill -9).
func (m *monitorsLab) kill(name string) {
	m.mu.Lock()
	p := m.procs[name]
	delete(m.procs, name)
	m.mu.Unlock()
	if p != nil {
		p.Process.Kill()
		p.Wait()
	}
}

func getJSON(url string, v any) (int, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, json.Unmarshal(b, v)
}

func (m *monitorsLab) api(h *lab.Host, path string) string {
	return "http://" + net.JoinHostPort(h.IP, strconv.Itoa(m.apiPort[h.Name])) + path
}

// leader returns the monitor that answers 200 on /leader, waiting for one.
func (m *monitorsLab) leader(t testing.TB, among ...*lab.Host) *lab.Host {
	t.Helper()
	if len(among) == 0 {
		among = m.mons
	}
	var found *lab.Host
	waitFor(t, "a leader", 20*time.Second, func() bool {
		n := 0
		for _, h := range among {
			var v map[string]any
			if code, _ := getJSON(m.api(h, "/leader"), &v); code == 200 {
				found, n = h, n+1
			}
		}
		return n == 1
	})
	return found
}

type failoversJSON struct {
	Failovers []ReportJSON `json:"failovers"`
}

func (m *monitorsLab) failovers(h *lab.Host) ([]ReportJSON, error) {
	var f failoversJSON
	_, err := getJSON(m.api(h, "/api/failovers"), &f)
	return f.Failovers, err
}

type clustersJSON struct {
	Leader   string `json:"leader"`
	Clusters []struct {
		State   string `json:"state"`
		Primary string `json:"agreed_primary"`
	} `json:"clusters"`
}

func (m *monitorsLab) state(h *lab.Host) string {
	var c clustersJSON
	if _, err := getJSON(m.api(h, "/api/clusters"), &c); err != nil || len(c.Clusters) == 0 {
		return ""
	}
	return c.Clusters[0].State
}

func (m *monitorsLab) waitHealthy(t testing.TB) {
	t.Helper()
	waitFor(t, "every monitor to see a healthy primary", 30*time.Second, func() bool {
		for _, h := range m.mons {
			if m.state(h) != "healthy" {
				return false
			}
		}
		return true
	})
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition
	}
}

// noFailoverFor asserts that no monitor records a failover for a while.
func (m *monitorsLab) noFailoverFor(t testing.TB, d time.Duration, among ...*lab.Host) {
	t.Helper()
	if len(among) == 0 {
		among = m.mons
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, h := range among {
			if f, err := m.failovers(h); err == nil && len(f) > 0 {
				t.Fatalf("%s recorded a failover: %+v", h.Name, f[0])
			}
		}
		time.Sleep(200 * time.Millisecond) // sampling for an unwanted failover
	}
}

// oneFailoverEverywhere waits until every listed monitor records exactly
// one failover, the same one, and returns it.
func (m *monitorsLab) oneFailoverEverywhere(t testing.TB, among ...*lab.Host) ReportJSON {
	t.Helper()
	if len(among) == 0 {
		among = m.mons
	}
	waitFor(t, "the failover to be recorded on every monitor", 30*time.Second, func() bool {
		for _, h := range among {
			if f, err := m.failovers(h); err != nil || len(f) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // a second failover would show up now
	var first ReportJSON
	for i, h := range among {
		f, _ := m.failovers(h)
		if len(f) != 1 {
			t.Fatalf("%s records %d failovers, want exactly 1: %+v", h.Name, len(f), f)
		}
		if i == 0 {
			first = f[0]
		} else if f[0].NewPrimary != first.NewPrimary {
			t.Fatalf("monitors disagree: %s vs %s", f[0].NewPrimary, first.NewPrimary)
		}
	}
	return first
}

// kill -9 of the primary under the default fencing: require, without
// agents: its host refuses connections to the port, proof that no server
// runs there, so the monitors fail over without waiting.
func TestDaemonKillPrimary(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3, SemiSync: true}, "")
	must(t, m.CreateWriteTable(ctx, "w"))
	m.waitHealthy(t)
	leader := m.leader(t)
	w := m.StartWriter("w", m.Server("db1"), 10*time.Millisecond, false)
	must(t, w.WaitAcked(30, 10*time.Second))
	must(t, m.Server("db1").Kill())
	w.Stop()
	rep := m.oneFailoverEverywhere(t)
	if rep.Result != "success" || !rep.Promoted {
		t.Fatalf("failover: %+v", rep)
	}
	newP := m.Server("db2")
	if rep.NewPrimary == m.Server("db3").Addr() {
		newP = m.Server("db3")
	}
	other := map[*lab.Server]*lab.Server{m.Server("db2"): m.Server("db3"), m.Server("db3"): m.Server("db2")}[newP]
	assertSurvivors(t, m.Lab, m.cfg, w, newP, newP, other)
	t.Logf("leader %s failed over to %s", leader.Name, newP.Name)
}

func TestDaemonCutPrimaryNetwork(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3}, bestEffort)
	m.RequireNetns(t) // cuts and packet drops need hosts of their own
	must(t, m.CreateWriteTable(ctx, "w"))
	m.waitHealthy(t)
	start := time.Now()
	must(t, m.Server("db1").Cut(ctx))
	rep := m.oneFailoverEverywhere(t)
	if rep.Result != "success" {
		t.Fatalf("failover after a cut: %+v", rep)
	}
	t.Logf("failed over %s after the cut (writable %.0fms into the failover)", time.Since(start).Round(time.Millisecond), *rep.WritableAfterMS)
}

func TestDaemonNoFailoverWhenOnlyMonitorsLoseThePrimary(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "")
	m.RequireNetns(t) // cuts and packet drops need hosts of their own
	m.waitHealthy(t)
	db1 := m.Server("db1")
	must(t, db1.Isolate(ctx, m.mons...))
	defer db1.Unisolate(ctx, m.mons...)
	waitFor(t, "monitors to report an unreachable primary", 20*time.Second, func() bool {
		return m.state(m.mons[0]) == "unreachable_primary"
	})
	m.noFailoverFor(t, 4*time.Second)
}

func TestDaemonMonitorLossCausesNoFailover(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "")
	m.RequireNetns(t) // cuts and packet drops need hosts of their own
	m.waitHealthy(t)
	leader := m.leader(t)
	var rest []*lab.Host
	for _, h := range m.mons {
		if h != leader {
			rest = append(rest, h)
		}
	}
	// Cut a follower: nothing happens.
	must(t, rest[0].Cut(ctx))
	m.noFailoverFor(t, 3*time.Second, leader, rest[1])
	must(t, rest[0].Heal(ctx))
	// Cut the leader: the other two elect a new one, still no failover.
	must(t, leader.Cut(ctx))
	newLeader := m.leader(t, rest...)
	if newLeader == leader {
		t.Fatal("the cut leader is still the leader")
	}
	m.noFailoverFor(t, 3*time.Second, rest...)
	must(t, leader.Heal(ctx))
}

func TestDaemonLeaderKilledMidFailover(t *testing.T) {
	ctx := context.Background()
	// A slow pre hook keeps the failover open long enough to kill its leader.
	m := startMonitorsLab(t, lab.Options{Servers: 3}, bestEffort+"      pre_failover: [\"sleep 3\"]\n")
	must(t, m.CreateWriteTable(ctx, "w"))
	m.waitHealthy(t)
	leader := m.leader(t)
	must(t, m.Server("db1").Kill())
	waitFor(t, "the leader to open the failover", 20*time.Second, func() bool {
		var v struct {
			InProgress map[string]any `json:"in_progress"`
		}
		getJSON(m.api(leader, "/api/failovers"), &v)
		return len(v.InProgress) > 0
	})
	m.kill(leader.Name)
	var rest []*lab.Host
	for _, h := range m.mons {
		if h != leader {
			rest = append(rest, h)
		}
	}
	rep := m.oneFailoverEverywhere(t, rest...)
	if rep.Result != "success" {
		t.Fatalf("the new leader did not complete the failover: %+v", rep)
	}
	tp := topology(t, m.cfg)
	writable := 0
	for _, s := range tp.Clusters[0].Servers {
		if s.Reachable && !s.ReadOnly {
			writable++
		}
	}
	if writable != 1 {
		t.Fatalf("%d writable servers after the resumed failover", writable)
	}
}

// waitAgreedPrimary waits until the monitors have recorded p as the
// agreed primary (raft): before that a restarted, read-only primary has
// no agreement to be re-opened by.
func (m *monitorsLab) waitAgreedPrimary(t testing.TB, p *lab.Server) {
	t.Helper()
	waitFor(t, "the monitors to agree on "+p.Name, 15*time.Second, func() bool {
		var c clustersJSON
		getJSON(m.api(m.mons[0], "/api/clusters"), &c)
		return len(c.Clusters) == 1 && c.Clusters[0].Primary == p.Addr()
	})
}

// A crash restart of the primary (kill -9, started again: it comes back
// read_only=1) shorter than down_after causes no failover, and the leader
// makes it writable again: the test does not set read_only itself.
// down_after is 10 s so that the restart is shorter whatever the machine's
// load; the figure at default settings is BenchmarkFaultRestartBlip.
func TestDaemonPrimaryRestartCausesNoFailover(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "      down_after: 10s\n")
	m.waitHealthy(t)
	db1 := m.Server("db1")
	m.waitAgreedPrimary(t, db1)
	start := time.Now()
	must(t, db1.Kill())
	must(t, db1.Start(ctx))
	waitFor(t, "the restarted primary to be writable again", 30*time.Second, func() bool {
		ro, err := db1.QueryString(ctx, "SELECT @@read_only")
		return err == nil && ro == "0"
	})
	t.Logf("primary down and writable again after %s", time.Since(start).Round(time.Millisecond))
	m.noFailoverFor(t, 3*time.Second)
}

// The old primary comes back after a failover, even writable by mistake:
// the leader makes it read-only, and with auto_rejoin a replica of the new
// primary (it has no errant transactions: nothing was written after the
// last replicated transaction).
func TestDaemonOldPrimaryReturns(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3}, bestEffort+"      auto_rejoin: true\n")
	must(t, m.CreateWriteTable(ctx, "w"))
	m.waitHealthy(t)
	db1 := m.Server("db1")
	must(t, db1.Kill())
	rep := m.oneFailoverEverywhere(t)
	must(t, db1.Start(ctx))
	must(t, db1.Exec(ctx, "SET GLOBAL read_only=0")) // a careless restart script
	waitFor(t, "the old primary to replicate from the new one", 20*time.Second, func() bool {
		v := topology(t, m.cfg).server(t, db1.Addr())
		return v.ReadOnly && v.Source != nil && *v.Source == rep.NewPrimary && v.IORunning != nil && *v.IORunning && *v.SQLRunning
	})
	tp := topology(t, m.cfg)
	writable := 0
	for _, s := range tp.Clusters[0].Servers {
		if !s.ReadOnly {
			writable++
		}
	}
	if writable != 1 || *tp.Clusters[0].Primary != rep.NewPrimary {
		t.Fatalf("after the rejoin: %d writable, primary %v", writable, *tp.Clusters[0].Primary)
	}
}

// A manual switchover through a follower's API runs on the leader, is
// recorded in the replicated history, and needs the token.
func TestDaemonSwitchoverThroughAPI(t *testing.T) {
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "")
	m.waitHealthy(t)
	leader := m.leader(t)
	var follower *lab.Host
	for _, h := range m.mons {
		if h != leader {
			follower = h
			break
		}
	}
	resp, err := http.Post(m.api(follower, "/api/clusters/lab/switchover"), "", nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %v %v", resp.StatusCode, err)
	}
	db2 := m.Server("db2")
	r := myha(t, "switchover", "--cluster", "lab", "--new-primary", db2.Addr(), "--yes", "--daemon", m.api(follower, ""), "--config", m.cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "SUCCESS") {
		t.Fatalf("switchover via %s (exit %d):\n%s\n%s", follower.Name, r.code, r.stdout, r.stderr)
	}
	rep := m.oneFailoverEverywhere(t)
	if rep.NewPrimary != db2.Addr() {
		t.Fatalf("recorded %+v", rep)
	}
	h := myha(t, "history", "--daemon", m.api(leader, ""))
	if h.code != 0 || !strings.Contains(h.stdout, "Switchover") || !strings.Contains(h.stdout, "writes were blocked for") {
		t.Fatalf("history:\n%s%s", h.stdout, h.stderr)
	}

	// The check endpoint runs the same checks and planner as myha check.
	var chk struct {
		Checks []struct{ Name, Status string } `json:"checks"`
		Plan   struct {
			NewPrimary string `json:"new_primary"`
		} `json:"plan"`
	}
	if code, err := getJSON(m.api(follower, "/api/clusters/lab/check"), &chk); code != 200 || err != nil || len(chk.Checks) < 20 || chk.Plan.NewPrimary == "" {
		t.Fatalf("/check: %d %v %+v", code, err, chk)
	}
	resp, err = http.Get(m.api(leader, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, metric := range []string{"myha_server_up", "myha_raft_leader 1", "myha_gossip_members 3", "myha_failovers_total"} {
		if !strings.Contains(string(body), metric) {
			t.Errorf("/metrics lacks %s", metric)
		}
	}

	// SIGHUP with a broken file: refused, the monitor keeps running.
	good, _ := os.ReadFile(m.cfg)
	os.WriteFile(m.cfg, append(good, []byte("bogus_key: 1\n")...), 0o600)
	m.mu.Lock()
	m.procs[follower.Name].Process.Signal(syscall.SIGHUP)
	m.mu.Unlock()
	waitFor(t, "the bad reload to be refused", 10*time.Second, func() bool {
		b, _ := os.ReadFile(m.logs[follower.Name].Name())
		return strings.Contains(string(b), "config refused")
	})
	os.WriteFile(m.cfg, good, 0o600)
	if m.state(follower) == "" {
		t.Fatal("the monitor stopped answering after a refused reload")
	}
	// SIGTERM: a clean exit.
	m.mu.Lock()
	p := m.procs[follower.Name]
	delete(m.procs, follower.Name)
	m.mu.Unlock()
	p.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// With probe: write, a primary that accepts connections but cannot commit
// (FLUSH TABLES WITH READ LOCK) is seen failing; its replicas still hear it,
// so there is no failover. A primary that denies myha's login is alive.
func TestDaemonWriteProbeAndRefusals(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "")
	b, _ := os.ReadFile(m.cfg)
	os.WriteFile(m.cfg, []byte(strings.Replace(string(b), "    servers:\n", "    probe: write\n    servers:\n", 1)), 0o600)
	for _, h := range m.mons {
		m.kill(h.Name)
		m.start(t, h)
	}
	m.waitHealthy(t)
	db1 := m.Server("db1")
	// A session holding the global read lock: writes hang.
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = lab.AdminUser, lab.AdminPass, "tcp", db1.Addr()
	conn, _ := mysql.NewConnector(c)
	db := sql.OpenDB(conn)
	defer db.Close()
	lock, err := db.Conn(ctx)
	must(t, err)
	_, err = lock.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK")
	must(t, err)
	waitFor(t, "the write probe to see the primary failing", 20*time.Second, func() bool {
		s := m.state(m.mons[0])
		return s != "healthy" && s != ""
	})
	m.noFailoverFor(t, 3*time.Second)
	lock.ExecContext(ctx, "UNLOCK TABLES")
	lock.Close()
	m.waitHealthy(t)

	// Access denied: the primary answers, it is not dead.
	must(t, db1.Exec(ctx, "SET SESSION sql_log_bin=0", "ALTER USER 'myha'@'%' IDENTIFIED BY 'changed-by-a-dba'"))
	m.noFailoverFor(t, 4*time.Second)
	if s := m.state(m.mons[0]); s != "healthy" {
		t.Fatalf("a primary that denies access is reported %q", s)
	}
}

// A manual switchover run with the CLI while the monitors watch: its
// transient states (the new primary writable before the old one is
// demoted) must not be "corrected" by the leader; the failover lock it
// holds tells the leader to keep its hands off.
func TestDaemonLeavesAManualSwitchoverAlone(t *testing.T) {
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "")
	m.waitHealthy(t)
	db2 := m.Server("db2")
	for _, target := range []*lab.Server{db2, m.Server("db1"), db2} {
		r := myha(t, "switchover", "--local", "--cluster", "lab", "--new-primary", target.Addr(), "--yes", "--config", m.cfg)
		if r.code != 0 {
			t.Fatalf("switchover to %s (exit %d):\n%s\n%s", target.Name, r.code, r.stdout, r.stderr)
		}
		waitFor(t, "the monitors to agree on "+target.Name, 15*time.Second, func() bool {
			var c clustersJSON
			getJSON(m.api(m.mons[0], "/api/clusters"), &c)
			return len(c.Clusters) == 1 && c.Clusters[0].Primary == target.Addr() && c.Clusters[0].State == "healthy"
		})
		if ro := mustQ(t, target, "SELECT @@read_only"); ro != "0" {
			t.Fatalf("the monitors fenced the new primary %s", target.Name)
		}
	}
	m.noFailoverFor(t, 2*time.Second)
}

// A fast restart of the primary (shorter than down_after) brings it back
// with read_only=1, as every lab server starts: the leader makes it
// writable again, without a failover, and without the test (or an
// operator) setting read_only itself.
func TestDaemonFastRestartWritableAgain(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "      down_after: 10s\n")
	m.waitHealthy(t)
	db1 := m.Server("db1")
	m.waitAgreedPrimary(t, db1)
	// It comes back read_only=1 (--read-only=1): the journal entry checked
	// below shows the leader found it so and corrected it.
	must(t, db1.Restart(ctx))
	waitFor(t, "the restarted primary to be writable again", 30*time.Second, func() bool {
		ro, err := db1.QueryString(ctx, "SELECT @@read_only")
		return err == nil && ro == "0"
	})
	tp := topology(t, m.cfg)
	writable := 0
	for _, s := range tp.Clusters[0].Servers {
		if s.Reachable && !s.ReadOnly {
			writable++
		}
	}
	if writable != 1 || tp.Clusters[0].Primary == nil || *tp.Clusters[0].Primary != db1.Addr() {
		t.Fatalf("after the restart: %d writable, primary %v", writable, ptr(tp.Clusters[0].Primary))
	}
	m.noFailoverFor(t, 2*time.Second)
	var j struct {
		Journal []struct {
			Kind   string `json:"kind"`
			Server string `json:"server"`
		} `json:"journal"`
	}
	getJSON(m.api(m.leader(t), "/api/failovers"), &j)
	found := false
	for _, e := range j.Journal {
		found = found || (e.Kind == "make_writable" && e.Server == db1.Addr())
	}
	if !found {
		t.Fatalf("the correction is not in the replicated journal: %+v", j.Journal)
	}
}

// Under failover.fencing: require (the default), with no agents and no
// shutdown_script, a dead primary that cannot be fenced is not failed
// over, and the verdict says why.
func TestDaemonFencingRequireRefuses(t *testing.T) {
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "")
	m.RequireNetns(t) // cuts and packet drops need hosts of their own
	m.RequireNetns(t)
	m.waitHealthy(t)
	// The primary's host drops every packet from the others: it may well
	// be alive and writable, and nothing proves otherwise.
	var others []*lab.Host
	for _, s := range m.Servers[1:] {
		others = append(others, &s.Host)
	}
	others = append(others, m.mons...)
	must(t, m.Server("db1").Host.DropFrom(context.Background(), others...))
	waitFor(t, "the verdict to explain the refusal", 20*time.Second, func() bool {
		var c struct {
			Clusters []struct {
				Verdict Verdict `json:"verdict"`
			} `json:"clusters"`
		}
		getJSON(m.api(m.leader(t), "/api/clusters"), &c)
		return len(c.Clusters) == 1 && c.Clusters[0].Verdict.State == "dead_primary" && has(c.Clusters[0].Verdict.Reasons, "failover refused") &&
			has(c.Clusters[0].Verdict.Reasons, "no agents")
	})
	m.noFailoverFor(t, 3*time.Second)
}

// Verdict is the part of a cluster's verdict the tests read.
type Verdict struct {
	State   string   `json:"state"`
	Reasons []string `json:"reasons"`
}
