package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/myha/myha/test/lab"
)

// benchVIP: a client writes through the VIP every 10 ms; the primary is
// killed; the write outage is the longest gap between acknowledged writes
// (last on the old primary → first on the new one, through the moved VIP).
func benchVIP(ctx context.Context, runs int) error {
	bin, cleanup, err := buildMyha()
	if err != nil {
		return err
	}
	defer cleanup()
	runs = max(5, min(runs, 10))
	var gaps []time.Duration
	for i := 0; i < runs; i++ {
		g, err := vipRun(ctx, bin)
		if err != nil {
			return fmt.Errorf("vip run %d: %w", i, err)
		}
		gaps = append(gaps, g)
	}
	fmt.Printf("vip: write outage through the VIP on kill -9 of the primary, client writing every 10ms, %d runs\n  %s   (goal: under 1.5s; MHA / orchestrator with a self-retargeting client here: 8.6s / 2.2s)\n", runs, summarize(gaps))
	return nil
}

func vipRun(ctx context.Context, bin string) (time.Duration, error) {
	l, err := startLab(ctx, lab.Options{Servers: 3, SemiSync: true, Hosts: []string{"mon1", "mon2", "mon3"}})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	if !l.Netns {
		return 0, fmt.Errorf("the VIP benchmark needs network namespaces (root)")
	}
	vip := fmt.Sprintf("198.18.%d.200", l.ID)
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
	y := b.String() + l.ConfigYAML()
	y = strings.Replace(y, "    servers:\n", "    vip:\n      address: "+vip+"/24\n      interface: eth0\n    servers:\n", 1)
	cfg := filepath.Join(l.Dir, "vip.yaml")
	os.WriteFile(cfg, []byte(y), 0o600)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	for _, n := range []string{"mon1", "mon2", "mon3"} {
		c := l.Host(n).Command(context.Background(), bin, "daemon", "--name", n, "--config", cfg)
		if err := c.Start(); err != nil {
			return 0, err
		}
		procs = append(procs, c)
	}
	for _, s := range l.Servers {
		c := s.Host.Command(context.Background(), bin, "agent", "--server", s.Addr(), "--config", cfg)
		if err := c.Start(); err != nil {
			return 0, err
		}
		procs = append(procs, c)
	}
	if err := l.CreateWriteTable(ctx, "w"); err != nil {
		return 0, err
	}
	// Wait for the VIP on db1, then write through it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.Command("ip", "-n", l.Server("db1").NS, "-4", "addr", "show", "dev", "eth0").Output()
		if strings.Contains(string(out), " "+vip+"/") {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the VIP never reached db1")
		}
		time.Sleep(100 * time.Millisecond)
	}
	target := &lab.Server{Name: "vip", Host: lab.Host{Name: "vip", IP: vip}, Port: 3306}
	w := l.StartWriter("w", target, 10*time.Millisecond, false)
	defer w.Stop()
	if err := w.WaitAcked(100, 15*time.Second); err != nil {
		return 0, err
	}
	time.Sleep(time.Second) // a steady state
	n := len(w.Acked())
	if err := l.Server("db1").Kill(); err != nil {
		return 0, err
	}
	if err := w.WaitAcked(n+50, 30*time.Second); err != nil {
		return 0, err
	}
	return w.MaxGap(), nil
}
