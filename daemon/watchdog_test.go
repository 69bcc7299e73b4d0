package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The watchdog's loop on a FAKE clock and a FAKE action (no server, no
// VIP): the agent's words arrive through a pipe as they would from the
// agent process.
type fakeWatchdog struct {
	t     *testing.T
	clock atomic.Int64 // CLOCK_BOOTTIME ns, advanced by the test
	acts  atomic.Int32
	fail  atomic.Bool
	in    *io.PipeWriter
	done  chan error
}

func startFakeWatchdog(t *testing.T) *fakeWatchdog {
	f := &fakeWatchdog{t: t, done: make(chan error, 1)}
	f.clock.Store(int64(time.Hour))
	r, w := io.Pipe()
	f.in = w
	wd := &watchdog{now: f.clock.Load, log: slog.New(slog.DiscardHandler), act: func(context.Context) error {
		if f.fail.Load() {
			return errors.New("server not answering")
		}
		f.acts.Add(1)
		return nil
	}}
	go func() { f.done <- wd.run(context.Background(), r) }()
	t.Cleanup(func() { w.Close() })
	return f
}

func (f *fakeWatchdog) say(line string) {
	f.t.Helper()
	if _, err := io.WriteString(f.in, line+"\n"); err != nil {
		f.t.Fatal(err)
	}
}

// advance moves the fake clock and wakes the loop with a line it ignores
// (its timers run on the real clock).
func (f *fakeWatchdog) advance(d time.Duration) {
	f.clock.Add(int64(d))
	f.say("nop")
}

// actsAfter gives the loop time to act on what it was just told.
func (f *fakeWatchdog) actsAfter(wait time.Duration) int32 {
	time.Sleep(wait) // nothing to poll for: the test checks that nothing happens
	return f.acts.Load()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestWatchdogActsOnlyWhenTheAgentStopsRenewing(t *testing.T) {
	f := startFakeWatchdog(t)
	now := f.clock.Load()
	// An arm is followed by a line the loop ignores: the pipe hands that
	// one over only after the loop took the arm, so the clock is never
	// advanced past the old moment while the new one waits in the pipe
	// (a timer and the arm both ready: select may pick the timer).
	arm := func(at int64) {
		f.say("arm " + itoa(at))
		f.say("nop")
	}

	// Armed until now+1s: nothing happens within the grace after it.
	arm(now + int64(time.Second))
	f.advance(time.Second + watchdogGrace - 50*time.Millisecond)
	if n := f.actsAfter(100 * time.Millisecond); n != 0 {
		t.Fatalf("acted %d times before the grace ran out", n)
	}
	// Renewed in time: the deadline moves, still nothing.
	arm(f.clock.Load() + int64(time.Second))
	f.advance(time.Second)
	if n := f.actsAfter(100 * time.Millisecond); n != 0 {
		t.Fatalf("acted %d times although renewed", n)
	}
	// Not renewed: past the grace it acts once (the loop's timer, on the
	// real clock, fires within the grace).
	f.advance(watchdogGrace)
	waitActs(t, f, 1)
	if n := f.actsAfter(200 * time.Millisecond); n != 1 {
		t.Fatalf("acted %d times, want once per lapse", n)
	}

	// Disarmed: nothing, however late. The arm lies ahead of the first
	// advance, so a disarm the loop reads late cannot be beaten by it; the
	// second advance passes the arm once the disarm has surely been read.
	arm(f.clock.Load() + int64(2*time.Hour))
	f.say("disarm")
	f.advance(time.Hour)
	if n := f.actsAfter(100 * time.Millisecond); n != 1 {
		t.Fatalf("acted after a disarm: %d", n)
	}
	f.advance(2 * time.Hour)
	if n := f.actsAfter(100 * time.Millisecond); n != 1 {
		t.Fatalf("acted after a disarm: %d", n)
	}

	// A failing action is retried until it succeeds.
	f.fail.Store(true)
	arm(f.clock.Load())
	f.advance(watchdogGrace + time.Millisecond)
	time.Sleep(3 * watchdogRetry)
	f.fail.Store(false)
	waitActs(t, f, 2)

	// The agent dies while armed: the watchdog outlives it, acts when the
	// moment passes, and exits.
	arm(f.clock.Load() + int64(time.Second))
	f.clock.Add(int64(time.Second)) // not yet past the grace
	f.in.Close()
	select {
	case <-f.done:
		t.Fatal("exited before acting on an armed moment")
	case <-time.After(100 * time.Millisecond):
	}
	f.clock.Add(int64(watchdogGrace)) // its real timer fires within the grace
	select {
	case err := <-f.done:
		if err != nil || f.acts.Load() != 3 {
			t.Fatalf("after the agent died: err %v, %d acts", err, f.acts.Load())
		}
	case <-time.After(2 * watchdogGrace):
		t.Fatal("the watchdog did not act and exit after the agent died")
	}
}

func TestWatchdogExitsWhenTheAgentStopsCleanly(t *testing.T) {
	f := startFakeWatchdog(t)
	f.say("arm " + itoa(f.clock.Load()+int64(time.Second)))
	f.say("disarm")
	f.in.Close()
	select {
	case err := <-f.done:
		if err != nil || f.acts.Load() != 0 {
			t.Fatalf("err %v, %d acts", err, f.acts.Load())
		}
	case <-time.After(time.Second):
		t.Fatal("the watchdog did not exit on a clean stop")
	}
}

// A PipeWatchdog's arm line carries an absolute CLOCK_BOOTTIME moment.
func TestPipeWatchdogArmsOnTheBootClock(t *testing.T) {
	r, w := io.Pipe()
	p := NewPipeWatchdog(w)
	var got string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, 64)
		n, _ := r.Read(b)
		got = string(b[:n])
	}()
	before := bootNow()
	if err := p.Arm(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	var at int64
	if _, err := fmt.Sscanf(got, "arm %d\n", &at); err != nil {
		t.Fatalf("line %q: %v", got, err)
	}
	if d := time.Duration(at - before); d < 1900*time.Millisecond || d > 2100*time.Millisecond {
		t.Fatalf("armed %s ahead, want about 2s", d)
	}
}

func waitActs(t *testing.T, f *fakeWatchdog, n int32) {
	t.Helper()
	deadline := time.Now().Add(2 * watchdogGrace)
	for f.acts.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the watchdog acted %d times, want %d", f.acts.Load(), n)
		}
		time.Sleep(10 * time.Millisecond) // polling the fake's counter
	}
}
