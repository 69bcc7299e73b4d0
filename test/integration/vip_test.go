package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/test/lab"
)

// vipLab is a monitors lab with an agent on every database host and a VIP.
type vipLab struct {
	*monitorsLab
	vip    string // address without prefix length
	client *lab.Host
}

func startVIPLab(t testing.TB, opts lab.Options) *vipLab {
	t.Helper()
	return startVIPLabWith(t, opts, monLabOptions{})
}

// startVIPLabEnv also gives the monitors extra environment (MYHA_CRASH_AT)
// from their start on, before the agents join them.
func startVIPLabEnv(t testing.TB, opts lab.Options, monEnv []string) *vipLab {
	t.Helper()
	return startVIPLabWith(t, opts, monLabOptions{monEnv: monEnv})
}

// startVIPLabWith starts the monitors with a VIP on the final config, then
// an agent on the host of every server the config lists.
func startVIPLabWith(t testing.TB, opts lab.Options, o monLabOptions) *vipLab {
	t.Helper()
	opts.Hosts = append(opts.Hosts, "client")
	o.clusterYAML += "    vip:\n      address: VIPADDR/24\n      interface: eth0\n      garp_delay: 1s\n"
	m := startMonitorsLabWith(t, opts, o)
	m.RequireNetns(t) // a VIP needs hosts (and interfaces) of their own
	for _, s := range m.listed {
		h := s.Host
		m.start(t, &h, "agent", "--server", s.Addr())
	}
	return &vipLab{monitorsLab: m, vip: vipAddr(m.Lab), client: m.Host("client")}
}

// holders lists the servers whose host has the VIP on eth0 right now.
func (v *vipLab) holders() []string {
	var out []string
	for _, s := range v.Servers {
		b, err := exec.Command("ip", "-n", s.NS, "-4", "addr", "show", "dev", "eth0").Output()
		if err == nil && strings.Contains(string(b), " "+v.vip+"/") {
			out = append(out, s.Name)
		}
	}
	return out
}

// sampler checks every 50 ms, for the whole test, that at most one host holds
// the VIP and at most one server is writable.
type sampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	bad  []string
	n    int
}

func (v *vipLab) sample(t testing.TB) *sampler {
	s := &sampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx := context.Background()
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			h := v.holders()
			var writers []string
			for _, srv := range v.Servers {
				if !srv.Running() {
					continue
				}
				qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				ro, err := srv.QueryString(qctx, "SELECT @@read_only")
				cancel()
				if err == nil && ro == "0" {
					writers = append(writers, srv.Name)
				}
			}
			s.mu.Lock()
			s.n++
			if len(h) > 1 {
				s.bad = append(s.bad, fmt.Sprintf("%s: two VIP holders %v", time.Now().Format("15:04:05.000"), h))
			}
			if len(writers) > 1 {
				s.bad = append(s.bad, fmt.Sprintf("%s: two writable servers %v", time.Now().Format("15:04:05.000"), writers))
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.finish(t) })
	return s
}

func (s *sampler) finish(t testing.TB) {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		t.Errorf("%d of %d samples broke the rules: %v", len(s.bad), s.n, s.bad[:min(5, len(s.bad))])
	}
	t.Logf("%d samples at 50 ms: never two VIP holders, never two writable servers", s.n)
}

func (v *vipLab) waitHolder(t testing.TB, name string, timeout time.Duration) time.Time {
	t.Helper()
	waitFor(t, "the VIP on "+name, timeout, func() bool {
		h := v.holders()
		return len(h) == 1 && h[0] == name
	})
	return time.Now()
}

// clientMAC is the MAC the client host's ARP cache has for the VIP.
func (v *vipLab) clientMAC() string {
	b, _ := exec.Command("ip", "-n", v.client.NS, "neigh", "show", v.vip).Output()
	f := strings.Fields(string(b))
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

func macOf(s *lab.Server) string {
	b, _ := exec.Command("ip", "-n", s.NS, "link", "show", "dev", "eth0").Output()
	f := strings.Fields(string(b))
	for i, w := range f {
		if w == "link/ether" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// writeViaVIP inserts one row through the VIP as the application would.
func (v *vipLab) writeViaVIP(ctx context.Context, id int) error {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = lab.AppUser, lab.AppPass, "tcp", v.vip+":3306"
	c.Timeout, c.ReadTimeout = 500*time.Millisecond, time.Second
	conn, _ := mysql.NewConnector(c)
	db := sql.OpenDB(conn)
	defer db.Close()
	_, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO lab.w VALUES (%d, NOW(6))", id))
	return err
}

func TestVIPFollowsThePrimary(t *testing.T) {
	ctx := context.Background()
	v := startVIPLab(t, lab.Options{Servers: 3})
	must(t, v.CreateWriteTable(ctx, "w"))
	v.waitHealthy(t)
	smp := v.sample(t)
	v.waitHolder(t, "db1", 20*time.Second)
	must(t, v.writeViaVIP(ctx, 1))
	v.client.CanReach(ctx, v.vip+":3306") // the client learns the VIP's MAC
	if got, want := v.clientMAC(), macOf(v.Server("db1")); got != want {
		t.Fatalf("client ARP for the VIP: %q, want db1's %q", got, want)
	}

	// kill -9 the primary: the VIP moves with the failover.
	must(t, v.Server("db1").Kill())
	rep := v.oneFailoverEverywhere(t)
	if rep.Result != "success" {
		t.Fatalf("failover with agent-held VIP: %+v", rep)
	}
	newP := v.Server("db2")
	if rep.NewPrimary == v.Server("db3").Addr() {
		newP = v.Server("db3")
	}
	moved := v.waitHolder(t, newP.Name, 15*time.Second)
	// Gratuitous ARP updates the client's cache without it asking.
	waitFor(t, "the client's ARP entry to point at the new primary", 2*time.Second, func() bool { return v.clientMAC() == macOf(newP) })
	t.Logf("VIP on %s; client ARP updated %s after the move", newP.Name, time.Since(moved).Round(time.Millisecond))
	waitFor(t, "writes through the VIP to resume", 10*time.Second, func() bool { return v.writeViaVIP(ctx, 2) == nil })

	// All monitors die: the agent keeps the VIP and the primary writable
	// (failsafe: its replica still follows it).
	for _, h := range v.mons {
		v.kill(h.Name)
	}
	time.Sleep(5 * time.Second) // longer than the 3 s lease: the failsafe must hold
	if h := v.holders(); len(h) != 1 || h[0] != newP.Name {
		t.Fatalf("after losing every monitor the VIP is on %v, want %s", h, newP.Name)
	}
	must(t, v.writeViaVIP(ctx, 3))
	smp.finish(t)
}

func readFile(p string) (string, error) {
	b, err := exec.Command("cat", p).Output()
	return string(b), err
}

func writeFile(p, s string) {
	cmd := exec.Command("tee", p)
	cmd.Stdin = strings.NewReader(s)
	cmd.Run()
}

// The primary's network is cut: the monitors fail over, the cut side drops
// the VIP when its lease lapses and goes read_only, the VIP moves; then a
// switchover moves it again. Never two holders, never two writers.
func TestVIPCutAndSwitchover(t *testing.T) {
	ctx := context.Background()
	v := startVIPLab(t, lab.Options{Servers: 3})
	must(t, v.CreateWriteTable(ctx, "w"))
	v.waitHealthy(t)
	smp := v.sample(t)
	db1 := v.Server("db1")
	v.waitHolder(t, "db1", 20*time.Second)

	must(t, db1.Cut(ctx))
	rep := v.oneFailoverEverywhere(t)
	newP := v.Server("db2")
	if rep.NewPrimary == v.Server("db3").Addr() {
		newP = v.Server("db3")
	}
	v.waitHolder(t, newP.Name, 15*time.Second)
	// The cut side fenced itself (its own socket still works).
	waitFor(t, "the cut old primary to set read_only", 10*time.Second, func() bool {
		ro, err := db1.QueryString(ctx, "SELECT @@read_only")
		return err == nil && ro == "1"
	})
	waitFor(t, "writes through the VIP", 10*time.Second, func() bool { return v.writeViaVIP(ctx, 1) == nil })
	must(t, db1.Heal(ctx))

	// A planned switchover moves the VIP too.
	other := map[*lab.Server]*lab.Server{v.Server("db2"): v.Server("db3"), v.Server("db3"): v.Server("db2")}[newP]
	r := myha(t, "switchover", "--cluster", "lab", "--new-primary", other.Addr(), "--daemon", v.api(v.mons[0], ""), "--yes", "--config", v.cfg)
	// Exit 1 is "done with problems": the healed old primary db1 is not
	// replicating (no auto_rejoin here), which the report warns about.
	if r.code != 0 && (r.code != 1 || !strings.Contains(r.stdout, db1.Addr()+" is not replicating")) {
		t.Fatalf("switchover (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	v.waitHolder(t, other.Name, 15*time.Second)
	waitFor(t, "writes through the VIP after the switchover", 10*time.Second, func() bool { return v.writeViaVIP(ctx, 2) == nil })
	smp.finish(t)
}

// haproxyConfig is the configuration the README ships, pointed at the lab.
func haproxyConfig(v *vipLab, bind string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 200
defaults
    mode tcp
    timeout connect 1s
    timeout client 60s
    timeout server 60s
listen mysql-primary
    bind %s
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 200ms fall 2 rise 1 on-marked-down shutdown-sessions
`, bind)
	for _, s := range v.Servers {
		fmt.Fprintf(&b, "    server %s %s check port 8008\n", s.Name, s.Addr())
	}
	return b.String()
}

// serverIDVia asks whoever answers at addr for its server_id.
func serverIDVia(ctx context.Context, addr string) (string, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = lab.AppUser, lab.AppPass, "tcp", addr
	c.Timeout, c.ReadTimeout = 500*time.Millisecond, time.Second
	conn, _ := mysql.NewConnector(c)
	db := sql.OpenDB(conn)
	defer db.Close()
	var id, ro string
	if err := db.QueryRowContext(ctx, "SELECT @@server_id, @@read_only").Scan(&id, &ro); err != nil {
		return "", err
	}
	if ro != "0" {
		return "", fmt.Errorf("server %s is read-only", id)
	}
	return id, nil
}

func TestHAProxyFollowsThePrimary(t *testing.T) {
	requireTool(t, "/usr/sbin/haproxy", "haproxy")
	ctx := context.Background()
	v := startVIPLab(t, lab.Options{Servers: 3})
	v.waitHealthy(t)
	bind := v.client.IP + ":13306"
	cfgPath := v.dir + "/haproxy.cfg"
	writeFile(cfgPath, haproxyConfig(v, bind))
	hp := v.client.Command(context.Background(), "/usr/sbin/haproxy", "-db", "-f", cfgPath)
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { hp.Process.Kill(); hp.Wait() }()
	waitFor(t, "HAProxy to send writes to db1", 20*time.Second, func() bool {
		id, err := serverIDVia(ctx, bind)
		return err == nil && id == "1"
	})
	must(t, v.Server("db1").Kill())
	rep := v.oneFailoverEverywhere(t)
	want := strings.TrimPrefix(rep.NewPrimary, "198.18.")
	wantID := map[string]string{v.Server("db2").Addr(): "2", v.Server("db3").Addr(): "3"}[rep.NewPrimary]
	start := time.Now()
	waitFor(t, "HAProxy to send writes to the new primary", 10*time.Second, func() bool {
		id, err := serverIDVia(ctx, bind)
		return err == nil && id == wantID
	})
	t.Logf("HAProxy routes to the new primary (%s) %s after the failover was recorded", want, time.Since(start).Round(time.Millisecond))
}

// requireTool skips a test whose tool is missing, saying which package
// brings it; under CI (CI=true) it fails instead: CI installs it.
func requireTool(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(path); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s missing: test/install-deps.sh test must install the %s package", path, pkg)
	}
	t.Skipf("%s missing (apt-get install %s)", path, pkg)
}
