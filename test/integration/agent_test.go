package integration

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// agentLog is what the agent started for server name wrote so far.
func (m *monitorsLab) agentLog(name string) string {
	m.mu.Lock()
	f := m.logs[name]
	m.mu.Unlock()
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

// The agent's signals and the VIP's lifetime, on the real binary in the
// lab: the VIP carries a finite lifetime; SIGHUP reloads (a broken file is
// refused, a good one applied) while the VIP stays on its holder, never
// removed and never announced again; SIGTERM releases it within a bound;
// after kill -9 the kernel removes it by itself within the lifetime plus
// its slack.
func TestAgentSignalsAndVIPLifetime(t *testing.T) {
	v := startVIPLab(t, lab.Options{Servers: 3})
	v.waitHealthy(t)
	v.waitHolder(t, "db1", 20*time.Second)
	db1 := v.Server("db1")

	// ip prints an address's lifetimes on the line after it.
	b, _ := exec.Command("ip", "-n", db1.NS, "-4", "addr", "show", "dev", "eth0").Output()
	lines := strings.Split(string(b), "\n")
	lifetime := ""
	for i, l := range lines {
		if strings.Contains(l, " "+v.vip+"/") && i+1 < len(lines) {
			lifetime = strings.TrimSpace(lines[i+1])
		}
	}
	if !strings.HasPrefix(lifetime, "valid_lft ") || strings.Contains(lifetime, "forever") {
		t.Fatalf("the VIP is not held with a finite lifetime:\n%s", b)
	}
	t.Logf("the VIP on db1: %s", lifetime)

	// Watch the address for the whole SIGHUP part: a removal is a flap.
	var mon bytes.Buffer
	watch := exec.Command("ip", "-n", db1.NS, "monitor", "address")
	watch.Stdout = &mon
	must(t, watch.Start())
	taken := strings.Count(v.agentLog("db1"), "VIP taken")

	good, _ := readFile(v.cfg)
	writeFile(v.cfg, good+"bogus_key: 1\n")
	v.signal(t, "db1", syscall.SIGHUP)
	waitFor(t, "the broken file to be refused", 10*time.Second, func() bool {
		return strings.Contains(v.agentLog("db1"), "SIGHUP: config refused")
	})
	writeFile(v.cfg, strings.Replace(good, "garp_delay: 1s", "garp_delay: 2s", 1))
	v.signal(t, "db1", syscall.SIGHUP)
	waitFor(t, "the good file to be applied", 10*time.Second, func() bool {
		l := v.agentLog("db1")
		return strings.Contains(l, "SIGHUP: config reloaded") && strings.Contains(l, "need a restart")
	})
	writeFile(v.cfg, good)
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if h := v.holders(); len(h) != 1 || h[0] != "db1" {
			t.Fatalf("after SIGHUP the VIP is on %v, want db1 alone", h)
		}
	}
	watch.Process.Kill()
	watch.Wait()
	for _, l := range strings.Split(mon.String(), "\n") {
		if strings.HasPrefix(l, "Deleted") && strings.Contains(l, " "+v.vip+"/") {
			t.Fatalf("the VIP was removed during the reloads: %s", l)
		}
	}
	if n := strings.Count(v.agentLog("db1"), "VIP taken"); n != taken {
		t.Fatalf("the VIP was taken (and announced) again after SIGHUP: %d times before, %d after", taken, n)
	}
	if strings.Count(mon.String(), v.vip) < 10 {
		t.Fatalf("the lifetime was not renewed in the 3 s after the reloads (%d address updates)", strings.Count(mon.String(), v.vip))
	}

	// SIGTERM: the VIP is released, the agent exits cleanly.
	v.mu.Lock()
	p := v.procs["db1"]
	delete(v.procs, "db1")
	v.mu.Unlock()
	start := time.Now()
	must(t, p.Process.Signal(syscall.SIGTERM))
	waitFor(t, "the VIP released on SIGTERM", 2*time.Second, func() bool { return len(v.holders()) == 0 })
	released := time.Since(start)
	exited := make(chan error, 1)
	go func() { exited <- p.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("agent exit after SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the agent did not exit within 5 s of SIGTERM")
	}
	t.Logf("SIGTERM: VIP released after %s, agent exited after %s", released.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Back, then kill -9: nobody releases it, its lifetime does.
	h := db1.Host
	v.start(t, &h, "agent", "--server", db1.Addr())
	v.waitHolder(t, "db1", 20*time.Second)
	time.Sleep(time.Second) // a few renewals
	v.mu.Lock()
	p = v.procs["db1"]
	delete(v.procs, "db1")
	v.mu.Unlock()
	start = time.Now()
	p.Process.Kill()
	p.Wait()
	waitFor(t, "the VIP of a killed agent to vanish", 3*time.Second, func() bool { return len(v.holders()) == 0 })
	gone := time.Since(start)
	t.Logf("kill -9: the VIP vanished %s after the agent died (lifetime 1 s)", gone.Round(time.Millisecond))
	// The lifetime (1 s) plus the kernel's slack (at most 1.25 s: it checks
	// lifetimes at most once a second), plus this loop's sampling.
	if gone > 2500*time.Millisecond {
		t.Fatalf("the VIP of a killed agent stayed %s", gone)
	}
	v.start(t, &h, "agent", "--server", db1.Addr())
	v.waitHolder(t, "db1", 20*time.Second)
}
