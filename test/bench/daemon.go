package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/test/lab"
)

// benchDaemon: three monitors on their own hosts watch a 3-server lab; the
// primary is killed (or its network cut) and the time to a writable new
// primary is measured from the outside, polling the servers every 5 ms.
func benchDaemon(ctx context.Context, runs int) error {
	bin, cleanup, err := buildMyha()
	if err != nil {
		return err
	}
	defer cleanup()
	runs = max(5, min(runs, 10))
	for _, mode := range []string{"kill -9", "network cut"} {
		var ds []time.Duration
		for i := 0; i < runs; i++ {
			d, err := daemonRun(ctx, bin, mode)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", mode, i, err)
			}
			ds = append(ds, d)
		}
		goal := "under 1s; orchestrator here 2.2s, MHA 8.5s"
		if mode == "network cut" {
			goal = "under 3s; orchestrator here 5.7s, MHA 9.1s"
		}
		fmt.Printf("daemon: %s of the primary → new primary writable, 3 monitors, %d runs\n  %s   (goal: %s)\n", mode, runs, summarize(ds), goal)
	}
	return benchDaemonMemory(ctx, bin)
}

func daemonRun(ctx context.Context, bin, mode string) (time.Duration, error) {
	l, err := startLab(ctx, lab.Options{Servers: 3, Hosts: []string{"mon1", "mon2", "mon3"}})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	if !l.Netns {
		return 0, fmt.Errorf("the daemon benchmark needs network namespaces (root)")
	}
	ips := map[string]string{}
	for _, n := range []string{"mon1", "mon2", "mon3"} {
		ips[n] = l.Host(n).IP
	}
	sec, err := lab.SecurityYAML(l.Dir, "bench-api-token", ips)
	if err != nil {
		return 0, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\n%smonitors:\n", filepath.Join(l.Dir, "state"), sec)
	for _, n := range []string{"mon1", "mon2", "mon3"} {
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n", n, l.Host(n).IP)
	}
	cfg := filepath.Join(l.Dir, "daemon.yaml")
	os.WriteFile(cfg, []byte(b.String()+l.ConfigYAML()), 0o600)
	var procs []*exec.Cmd
	for _, n := range []string{"mon1", "mon2", "mon3"} {
		c := l.Host(n).Command(context.Background(), bin, "daemon", "--name", n, "--config", cfg)
		if err := c.Start(); err != nil {
			return 0, err
		}
		procs = append(procs, c)
	}
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	// Wait until every monitor sees a healthy cluster.
	deadline := time.Now().Add(30 * time.Second)
	for {
		healthy := 0
		for _, n := range []string{"mon1", "mon2", "mon3"} {
			var v struct {
				Clusters []struct{ State string } `json:"clusters"`
			}
			if getJSON("http://"+l.Host(n).IP+":8080/api/clusters", &v) == nil && len(v.Clusters) == 1 && v.Clusters[0].State == "healthy" {
				healthy++
			}
		}
		if healthy == 3 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("monitors not healthy after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // a steady state, not the first probes
	t0 := time.Now()
	if mode == "kill -9" {
		err = l.Server("db1").Kill()
	} else {
		err = l.Server("db1").Cut(ctx)
	}
	if err != nil {
		return 0, err
	}
	for time.Since(t0) < 30*time.Second {
		for _, s := range l.Servers[1:] {
			if ro, err := s.QueryString(ctx, "SELECT @@read_only"); err == nil && ro == "0" {
				return time.Since(t0), nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("no new primary within 30s")
}

func getJSON(url string, v any) error {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// benchDaemonMemory runs one monitor against 50 FAKE servers (test/fakeserver
// on loopback: 50 real mariadbd do not fit this machine) and reads its RSS.
func benchDaemonMemory(ctx context.Context, bin string) error {
	fakes, spec, err := fakeCluster(50)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range fakes {
			f.Close()
		}
	}()
	dir, _ := os.MkdirTemp("", "myha-mem-")
	defer os.RemoveAll(dir)
	ports := freePorts(3)
	var b strings.Builder
	// A memory measurement on loopback fakes: no TLS or key needed.
	fmt.Fprintf(&b, "state_dir: %s\nsecurity:\n  insecure: true\nmonitors:\n  - name: m\n    address: 127.0.0.1\n    gossip_port: %d\n    raft_port: %d\n    api_port: %d\n", dir, ports[0], ports[1], ports[2])
	fmt.Fprintf(&b, "clusters:\n  - name: fake\n    user: myha\n    password: pw\n    replication_user: repl\n    replication_password: r\n    servers:\n")
	for _, s := range spec.Servers {
		fmt.Fprintf(&b, "      - address: %s\n", s.Address)
	}
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(b.String()), 0o600)
	cmd := exec.Command(bin, "daemon", "--name", "m", "--config", cfg)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	time.Sleep(20 * time.Second) // twenty probe rounds of all 50 servers
	_ = fakeserver.State{}
	rss, hwm := procMem(cmd.Process.Pid)
	fmt.Printf("daemon memory monitoring 50 FAKE servers (1 cluster, 20 s): RSS %.1f MB, peak %.1f MB   (goal: under 64 MB)\n", rss, hwm)
	return nil
}

func procMem(pid int) (rss, hwm float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			kb, _ := strconv.ParseFloat(f[1], 64)
			if f[0] == "VmRSS:" {
				rss = kb / 1024
			} else {
				hwm = kb / 1024
			}
		}
	}
	return
}

func freePorts(n int) []int {
	var out []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}
