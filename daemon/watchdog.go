package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/myha/myha/topology"
	"github.com/myha/myha/vip"
)

// The agent keeps its server writable (and the VIP) only while it runs: a
// running agent fences its server when its lease lapses. A paused agent
// (SIGSTOP, a stuck runtime) or a crashed one cannot, and if its host is
// cut off meanwhile the monitors promote another server once the lease
// has surely ended. The watchdog closes that gap: a separate process the
// agent tells, every round, until when it is entitled to keep its server
// writable; if that moment passes by more than a running agent's reaction
// without a new word (the agent is paused or dead), the watchdog releases
// the VIP and sets read_only=1 itself — within the same bound the monitors
// count for a running agent (agentReaction), so the proof is unchanged.

// Watchdog is the agent's side of the watchdog.
type Watchdog interface {
	// Arm says the agent may keep its server writable until until (a
	// time.Now reading of the agent's clock).
	Arm(until time.Time) error
	// Disarm says there is nothing to guard: the VIP is released and the
	// server is not writable.
	Disarm() error
	// Close disarms and ends the watchdog (a clean stop of the agent).
	Close() error
}

// bootNow reads CLOCK_BOOTTIME: one clock for every process of the host,
// counting time the host spent suspended, never set by anyone.
func bootNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Now().UnixNano() // not Linux: best effort
	}
	return ts.Nano()
}

// PipeWatchdog writes the agent's words to a watchdog process's stdin,
// one line each: "arm <CLOCK_BOOTTIME ns>" or "disarm".
type PipeWatchdog struct {
	mu sync.Mutex
	w  io.WriteCloser
}

// NewPipeWatchdog talks to a watchdog through w.
func NewPipeWatchdog(w io.WriteCloser) *PipeWatchdog { return &PipeWatchdog{w: w} }

// Arm implements Watchdog. The boot clock is read before the agent's own:
// a pause between the two readings moves the deadline earlier, never later.
func (p *PipeWatchdog) Arm(until time.Time) error {
	boot := bootNow()
	at := boot + time.Until(until).Nanoseconds()
	return p.write(fmt.Sprintf("arm %d\n", at))
}

// Disarm implements Watchdog.
func (p *PipeWatchdog) Disarm() error { return p.write("disarm\n") }

// Close implements Watchdog.
func (p *PipeWatchdog) Close() error {
	err := p.Disarm()
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(err, p.w.Close())
}

func (p *PipeWatchdog) write(line string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.w, line)
	return err
}

// WatchdogConfig is the watchdog process's configuration.
type WatchdogConfig struct {
	Server string               // the local server, host:port
	Spec   topology.ClusterSpec // credentials and timeouts
	VIP    *vip.Config
	Log    *slog.Logger
}

// RunWatchdog reads the agent's words from in and acts when they stop in
// time. It returns when in ends (the agent stopped or died) and nothing is
// armed, after acting on an armed moment that passed, or when ctx ends.
func RunWatchdog(ctx context.Context, cfg WatchdogConfig, in io.Reader) error {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var v *vip.VIP
	if cfg.VIP != nil {
		var err error
		if v, err = vip.New(*cfg.VIP, log); err != nil {
			return err
		}
	}
	d := topology.SQLDialer{Credentials: cfg.Spec.Credentials, ConnectTimeout: min(cfg.Spec.ConnectTimeout, agentFenceBound), ReadTimeout: agentFenceBound}
	w := &watchdog{now: bootNow, log: log, act: func(ctx context.Context) error {
		var errs []error
		if v != nil {
			errs = append(errs, v.Release())
		}
		return errors.Join(append(errs, fenceLocal(ctx, d, cfg.Server))...)
	}}
	log.Info("watchdog running", "server", cfg.Server, "grace", watchdogGrace)
	return w.run(ctx, in)
}

// fenceLocal sets read_only=1 on the local server, bounded. A server that
// refuses the connection is not running: nothing takes writes there.
func fenceLocal(ctx context.Context, d topology.Dialer, server string) error {
	fctx, cancel := context.WithTimeout(ctx, agentFenceBound)
	defer cancel()
	q, err := d.Dial(fctx, server)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
			return nil
		}
		return err
	}
	defer q.Close()
	dia := topology.Dialect{}
	if rows, err := q.Query(fctx, topology.VersionQuery); err == nil && len(rows) == 1 {
		dia, _ = topology.DialectFor(rows[0]["version"], rows[0]["comment"])
	}
	stmts := dia.SetReadOnly(true)
	if dia.Flavor == "" {
		stmts = []string{"SET GLOBAL read_only=1"}
	}
	for _, s := range stmts {
		if err := q.Exec(fctx, s); err != nil {
			return err
		}
	}
	return nil
}

// watchdog is the watchdog's loop, with its clock and action injectable.
type watchdog struct {
	now func() int64                    // CLOCK_BOOTTIME ns
	act func(ctx context.Context) error // release the VIP and fence the server
	log *slog.Logger
}

// watchdogRetry spaces attempts to act when one failed.
const watchdogRetry = 100 * time.Millisecond

func (w *watchdog) run(ctx context.Context, in io.Reader) error {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	var until int64 // 0: disarmed
	eof := false
	for {
		var timer <-chan time.Time
		if until != 0 {
			left := time.Duration(until + watchdogGrace.Nanoseconds() - w.now())
			if left <= 0 {
				err := w.act(ctx)
				if err == nil {
					w.log.Error("watchdog: the agent did not renew its hold in time (paused or dead): released the VIP and fenced the local server (read_only=1)",
						"late_by", (-left).Round(time.Millisecond))
					until = 0
					if eof {
						return nil
					}
					continue
				}
				w.log.Error("watchdog: could not release the VIP and fence the local server; retrying", "err", err)
				left = watchdogRetry
			}
			timer = time.After(left)
		} else if eof {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case l, ok := <-lines:
			if !ok {
				eof, lines = true, nil
				continue
			}
			switch f := strings.Fields(l); {
			case len(f) == 2 && f[0] == "arm":
				if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n > 0 {
					until = n
				}
			case len(f) == 1 && f[0] == "disarm":
				until = 0
			}
		case <-timer:
		}
	}
}
