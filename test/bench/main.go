// Command bench prints myha's performance figures on real labs (and fakes
// where the standards allow, saying so). Goals are printed next to the
// figures; nothing here passes or fails a build.
//
//	go run ./test/bench [-runs 50] [-only discovery]
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
	flag.Parse()
	// The driver logs broken connections to stderr: expected noise when
	// servers are killed on purpose.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx := context.Background()
	benches := []struct {
		name string
		fn   func(context.Context, int) error
	}{
		{"discovery", benchDiscovery},
		{"check", benchCheck},
		{"failover", benchFailover},
		{"switchover", benchSwitchover},
		{"daemon", benchDaemon},
		{"vip", benchVIP},
	}
	for _, b := range benches {
		if *only != "" && !strings.Contains(b.name, *only) {
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
