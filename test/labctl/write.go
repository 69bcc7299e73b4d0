package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/myha/myha/test/lab"
)

// write is the demo's client: it inserts a row every interval as the app
// user (no READ_ONLY ADMIN, so read_only stops it as it stops applications)
// into lab.demo, moving to whichever server accepts writes when its server
// fails. On SIGTERM or SIGINT it stops and prints one line of numbers, each
// measured here:
//
//   - new primary writable: from the time in -killed-at to the first write a
//     server other than the first one acknowledged (an upper bound: the client
//     tries every interval);
//   - client write outage: the longest time between two acknowledged writes;
//   - rows acknowledged, and rows in lab.demo on the server it writes to last.
func write(args []string) {
	fs := flag.NewFlagSet("write", flag.ExitOnError)
	id := fs.Int("id", 0, "the lab to write to (labctl up prints it)")
	interval := fs.Duration("interval", 20*time.Millisecond, "time between writes")
	killedAt := fs.String("killed-at", "", "file holding the Unix time (seconds, fractional) the primary was killed")
	fs.Parse(args)
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "labctl write: %v\n", err)
		os.Exit(1)
	}
	l, err := lab.Attach(*id)
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var primary *lab.Server
	for _, s := range l.Servers {
		if ro, err := s.QueryString(ctx, "SELECT @@read_only"); err == nil && ro == "0" {
			primary = s
			break
		}
	}
	if primary == nil {
		fail(fmt.Errorf("lab %d has no writable server", *id))
	}
	if err := primary.Exec(ctx, "CREATE TABLE IF NOT EXISTS lab.demo (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB"); err != nil {
		fail(err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	// A killed server's dropped connection is expected here; the driver
	// captures its logger when a connection is configured, so set it first.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	w := l.StartWriter("demo", primary, *interval, true)
	if err := w.WaitAcked(1, 10*time.Second); err != nil {
		w.Stop()
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "client: writing a row every %s to %s as %s\n", *interval, primary.Addr(), lab.AppUser)
	<-stop
	w.Stop()

	b, err := os.ReadFile(*killedAt)
	if err != nil {
		fail(fmt.Errorf("no kill time: %w", err))
	}
	sec, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(string(b)), ",", "."), 64) // EPOCHREALTIME follows the locale
	if err != nil {
		fail(fmt.Errorf("kill time %q: %w", b, err))
	}
	killed := time.Unix(0, int64(sec*1e9))
	acked := len(w.Acked())
	at, np, ok := w.FirstAckAfter(killed, primary)
	if !ok {
		fmt.Printf("primary killed → no other server accepted a write before the client stopped; rows acknowledged %d\n", acked)
		return
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	rows, err := np.QueryString(rctx, "SELECT COUNT(*) FROM lab.demo")
	if err != nil {
		fail(err)
	}
	missing, err := w.Missing(rctx, np)
	if err != nil {
		fail(err)
	}
	fmt.Printf("primary killed → new primary writable: %.2f s; client write outage: %.2f s; rows acknowledged %d, rows on the new primary %s\n",
		at.Sub(killed).Seconds(), w.MaxGap().Seconds(), acked, rows)
	fmt.Printf("  new primary %s (%s); acknowledged rows missing there: %d\n", np.Name, np.Addr(), len(missing))
	if n, err := strconv.Atoi(rows); err == nil && n > acked-len(missing) {
		fmt.Printf("  %d row(s) there were never acknowledged: writes that committed but whose answer the client did not receive (the server died, or the answer timed out)\n", n-(acked-len(missing)))
	}
}
