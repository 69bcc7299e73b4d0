package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/myha/myha/test/lab"
)

// benchCheck times the whole `myha check` command (process start, config,
// discovery, replication-account logins, checks, plan, output) on a real
// 3-server lab: what an operator waits for.
func benchCheck(ctx context.Context, runs int) error {
	dir, err := os.MkdirTemp("", "myha-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "myha")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/myha/myha/cmd/myha").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v: %s", err, out)
	}
	l, err := startLab(ctx, lab.Options{Servers: 3})
	if err != nil {
		return err
	}
	defer l.Close()
	cfg, err := l.WriteConfig()
	if err != nil {
		return err
	}
	var ds []time.Duration
	for i := 0; i < runs; i++ {
		start := time.Now()
		cmd := exec.CommandContext(ctx, bin, "check", "--config", cfg)
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
				return fmt.Errorf("myha check on a healthy lab: %v", err)
			}
		}
		ds = append(ds, time.Since(start))
	}
	fmt.Printf("check: myha check (whole command) on the 3-server lab\n  %s   (goal: under 300ms)\n", summarize(ds))
	return nil
}
