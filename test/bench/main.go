// Command bench prints myha's performance figures on real labs (and fakes
// where the standards allow, saying so). Goals are printed next to the
// figures; nothing here passes or fails a build.
//
//	go run ./test/bench [-runs 50] [-only discovery]
//	go run ./test/bench -only scale [-scale-n 10,100] [-scale-monitors 3]  (make scale)
package main

import (
	"io"
	"log"

	"context"
	"flag"
	"fmt"
	"github.com/go-sql-driver/mysql"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/myha/myha/test/lab"
)

func main() {
	runs := flag.Int("runs", 50, "repetitions per measurement")
	only := flag.String("only", "", "run only benchmarks whose name contains this")
	scaleN := flag.String("scale-n", "10,100,300,1000", "scale: cluster counts (3 FAKE servers each)")
	scaleMons := flag.Int("scale-monitors", 1, "scale: monitors (1 or 3)")
	scaleWindow := flag.Duration("scale-window", 20*time.Second, "scale: steady state measured per N")
	scaleBin := flag.String("scale-bin", "", "scale: a myha binary to run (default: build ./cmd/myha)")
	scaleKills := flag.Int("scale-kills", 5, "scale: primaries killed one after the other per N, for the detection figures")
	scaleProfile := flag.String("scale-profile", "", "scale: write each monitor's CPU profile to DIR/cpu-N<n>-m<i>.pprof")
	flag.Parse()
	// The driver logs broken connections to stderr: expected noise when
	// servers are killed on purpose.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx := context.Background()
	var ns []int
	for _, f := range strings.Split(*scaleN, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "-scale-n %q: want cluster counts like 10,100,300\n", *scaleN)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	benches := []struct {
		name string
		fn   func(context.Context, int) error
		// optIn benchmarks run only when -only names them.
		optIn bool
	}{
		{name: "discovery", fn: benchDiscovery},
		{name: "check", fn: benchCheck},
		{name: "failover", fn: benchFailover},
		{name: "switchover", fn: benchSwitchover},
		{name: "daemon", fn: benchDaemon},
		{name: "vip", fn: benchVIP},
		{name: "scale", fn: func(ctx context.Context, _ int) error {
			return benchScale(ctx, scaleOpts{ns: ns, monitors: *scaleMons, window: *scaleWindow, bin: *scaleBin, profileDir: *scaleProfile, kills: *scaleKills})
		}, optIn: true},
	}
	for _, b := range benches {
		if *only != "" && !strings.Contains(b.name, *only) || *only == "" && b.optIn {
			continue
		}
		if err := b.fn(ctx, *runs); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", b.name, err)
			os.Exit(1)
		}
	}
}

// stats summarizes durations as median, p90, min and max.
type stats struct{ median, p90, min, max time.Duration }

func summarize(ds []time.Duration) stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	return stats{median: s[len(s)/2], p90: s[len(s)*9/10], min: s[0], max: s[len(s)-1]}
}

func (s stats) String() string {
	r := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("median %-9s p90 %-9s min %-9s max %s", r(s.median), r(s.p90), r(s.min), r(s.max))
}

func startLab(ctx context.Context, opts lab.Options) (*lab.Lab, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return lab.Start(cctx, opts)
}
