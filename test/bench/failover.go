package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/myha/myha/test/lab"
)

type report struct {
	Result          string    `json:"result"`
	Started         time.Time `json:"started"`
	WritableAfterMS *float64  `json:"writable_after_ms"`
	WriteBlockedMS  *float64  `json:"write_blocked_ms"`
	NewPrimary      string    `json:"new_primary"`
}

func buildMyha() (string, func(), error) {
	dir, err := os.MkdirTemp("", "myha-bench-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "myha")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/myha/myha/cmd/myha").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build: %v: %s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

func labConfig(l *lab.Lab) (string, error) {
	p := filepath.Join(l.Dir, "bench.yaml")
	return p, os.WriteFile(p, []byte("state_dir: "+filepath.Join(l.Dir, "state")+"\n"+l.ConfigYAML()), 0o600)
}

func runJSON(ctx context.Context, bin string, args ...string) (report, time.Duration, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(args, "--json")...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var r report
	if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil || r.Result != "success" {
		return r, took, fmt.Errorf("myha %s: %v %v: %s %s", strings.Join(args, " "), err, jerr, out.String(), errb.String())
	}
	return r, took, nil
}

// benchFailover: kill -9 the primary of a fresh lab, wait until the replicas
// have noticed (as any detector must), then time `myha failover --yes` from
// its start to the new primary taking writes.
func benchFailover(ctx context.Context, runs int) error {
	bin, cleanup, err := buildMyha()
	if err != nil {
		return err
	}
	defer cleanup()
	runs = max(5, min(runs, 10))
	var toWritable, whole []time.Duration
	for i := 0; i < runs; i++ {
		l, err := startLab(ctx, lab.Options{Servers: 3})
		if err != nil {
			return err
		}
		cfg, err := labConfig(l)
		if err == nil {
			err = l.Server("db1").Kill()
		}
		if err == nil {
			err = waitReplicasLostPrimary(ctx, l)
		}
		if err != nil {
			l.Close()
			return err
		}
		t0 := time.Now()
		r, took, err := runJSON(ctx, bin, "failover", "--yes", "--config", cfg)
		l.Close()
		if err != nil {
			return err
		}
		writable := r.Started.Add(time.Duration(*r.WritableAfterMS * float64(time.Millisecond)))
		toWritable = append(toWritable, writable.Sub(t0))
		whole = append(whole, took)
	}
	fmt.Printf("failover: kill -9 of the primary, real 3-server lab, %d runs\n", runs)
	fmt.Printf("  command start → new primary writable: %s   (goal: under 1s; MHA 0.58 here: 3.5s)\n", summarize(toWritable))
	fmt.Printf("  whole myha failover command:          %s\n", summarize(whole))
	return nil
}

func waitReplicasLostPrimary(ctx context.Context, l *lab.Lab) error {
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range l.Servers[1:] {
		for {
			io, err := s.QueryString(ctx, "SELECT IF(COUNT(*)=0,'none','x') FROM information_schema.PROCESSLIST WHERE COMMAND='Slave_IO' AND STATE LIKE 'Waiting for master to send event%'")
			if err != nil {
				return err
			}
			if io == "none" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s still connected to the killed primary", s.Name)
			}
			time.Sleep(5 * time.Millisecond) // polling the replica's IO thread
		}
	}
	return nil
}

// benchSwitchover: switch the primary back and forth on one lab while a
// client writes every 10 ms and follows the writable server.
func benchSwitchover(ctx context.Context, runs int) error {
	bin, cleanup, err := buildMyha()
	if err != nil {
		return err
	}
	defer cleanup()
	l, err := startLab(ctx, lab.Options{Servers: 3, SemiSync: os.Getenv("BENCH_SEMISYNC") != "0"})
	if err != nil {
		return err
	}
	defer l.Close()
	cfg, err := labConfig(l)
	if err != nil {
		return err
	}
	if err := l.CreateWriteTable(ctx, "w"); err != nil {
		return err
	}
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		return err
	}
	runs = max(5, min(runs, 20))
	var blocked, gaps, whole []time.Duration
	targets := []*lab.Server{l.Server("db2"), l.Server("db1")}
	cur := l.Server("db1")
	for i := 0; i < runs; i++ {
		to := targets[i%2]
		w := l.StartWriter("w", cur, 10*time.Millisecond, true)
		if os.Getenv("BENCH_DEBUG") != "" {
			w.Debug = func(s string) { fmt.Println("   ", s) }
		}
		if err := w.WaitAcked(20, 10*time.Second); err != nil {
			return err
		}
		if os.Getenv("BENCH_DEBUG") != "" {
			fmt.Println("  switch to", to.Name, "at", time.Now().Format("15:04:05.000"))
		}
		r, took, err := runJSON(ctx, bin, "switchover", "--yes", "--new-primary", to.Addr(), "--config", cfg)
		if err != nil {
			w.Stop()
			return err
		}
		n := len(w.Acked())
		err = w.WaitAcked(n+20, 10*time.Second)
		w.Stop()
		if err != nil {
			return err
		}
		blocked = append(blocked, time.Duration(*r.WriteBlockedMS*float64(time.Millisecond)))
		gaps = append(gaps, w.MaxGap())
		whole = append(whole, took)
		cur = to
	}
	fmt.Printf("switchover: real 3-server lab (semi-sync), client writing every 10ms, %d runs\n", runs)
	fmt.Printf("  write-blocked window at the servers:  %s   (goal: under 5ms; MHA here 3.5ms, orchestrator 119ms)\n", summarize(blocked))
	fmt.Printf("  longest gap the client saw:          %s   (goal: at most 2 write intervals = 20ms)\n", summarize(gaps))
	fmt.Printf("  whole myha switchover command:       %s   (goal: under 0.5s; MHA here 2.5s)\n", summarize(whole))
	return nil
}
