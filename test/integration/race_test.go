package integration

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// cliOutcome is what a `myha failover` run beside the daemon ended with.
type cliOutcome struct {
	res     result
	rep     ReportJSON // zero when the command refused before executing
	err     error
	started time.Time
}

// cliFailover runs `myha failover --yes --json` on its own goroutine-safe
// path, retrying while the replicas have not yet noticed the kill (the
// command rightly refuses then), and reports how it ended.
func cliFailover(cfg string, deadline time.Time) cliOutcome {
	o := cliOutcome{started: time.Now()}
	for {
		o.res, o.err = runMyha(nil, "failover", "--local", "--cluster", lab.ClusterName, "--yes", "--json", "--config", cfg)
		if o.err != nil {
			return o
		}
		if strings.Contains(o.res.stdout, "still replicate from it") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // replicas have not noticed the kill yet
			continue
		}
		json.Unmarshal([]byte(o.res.stdout), &o.rep) // a refused plan is not a report: Result stays ""
		return o
	}
}

// A CLI `myha failover` races the daemon on the same dead primary (kill -9
// with the monitors running): whoever takes the failover lock first
// promotes, the other changes nothing. Exactly one server is promoted,
// never two are writable, every acknowledged row is on the new primary,
// the survivor replicates from it, the monitors record no second
// promotion, and the VIP ends on the new primary alone.
//
// Two moments: the CLI started with the kill (it usually wins: the
// daemon waits down_after), and the CLI started as the daemon decides
// (down_after after the kill), where either may win.
func TestSplitBrainCLIFailoverRacesDaemon(t *testing.T) {
	t.Run("cli_at_kill", func(t *testing.T) { cliRacesDaemon(t, 0) })
	t.Run("cli_at_decision", func(t *testing.T) { cliRacesDaemon(t, 900*time.Millisecond) })
}

func cliRacesDaemon(t *testing.T, cliDelay time.Duration) {
	ctx := context.Background()
	v, smp := startFaultLabOpts(t, lab.Options{Servers: 3, SemiSync: true}, true)
	must(t, v.CreateWriteTable(ctx, "w"))
	must(t, v.WaitReplicated(ctx, 20*time.Second))
	w := v.StartWriter("w", v.Server("db1"), 10*time.Millisecond, true)
	must(t, w.WaitAcked(30, 10*time.Second))

	done := make(chan cliOutcome, 1)
	killed := time.Now()
	go func() {
		time.Sleep(cliDelay) // the injection moment, relative to the kill
		done <- cliFailover(v.cfg, time.Now().Add(15*time.Second))
	}()
	must(t, v.Server("db1").Kill())
	var cli cliOutcome
	select {
	case cli = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("myha failover did not end")
	}
	if cli.err != nil {
		t.Fatal(cli.err)
	}
	cliPromoted := cli.rep.Promoted
	t.Logf("CLI started %s after the kill: exit %d, result %q, promoted %v, error %q",
		cli.started.Sub(killed).Round(time.Millisecond), cli.res.code, cli.rep.Result, cliPromoted, cli.rep.Error)
	if !cliPromoted && cli.res.code == 0 {
		t.Fatalf("the CLI exited 0 without promoting:\n%s\n%s", cli.res.stdout, cli.res.stderr)
	}

	// Exactly one writable server, and the monitors agree on it.
	var newP *lab.Server
	waitFor(t, "one writable server agreed by every monitor", 30*time.Second, func() bool {
		newP = nil
		for _, s := range v.Servers[1:] {
			if ro, err := s.QueryString(ctx, "SELECT @@read_only"); err == nil && ro == "0" {
				if newP != nil {
					return false
				}
				newP = s
			}
		}
		if newP == nil {
			return false
		}
		for _, h := range v.mons {
			var c clustersJSON
			if _, err := getJSON(v.api(h, "/api/clusters"), &c); err != nil || len(c.Clusters) != 1 || c.Clusters[0].Primary != newP.Addr() {
				return false
			}
		}
		return true
	})
	writableAt := time.Now()
	v.waitHolder(t, newP.Name, 20*time.Second)
	t.Logf("%s writable and agreed %s after the kill, VIP on it %s after", newP.Name, writableAt.Sub(killed).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))

	// Whatever the monitors recorded: no epoch twice, the same on every
	// monitor, and together with the CLI exactly one promotion.
	time.Sleep(2 * time.Second) // a late second promotion would show up now; sampled meanwhile
	var daemonRecs []ReportJSON
	for i, h := range v.mons {
		recs, err := v.failovers(h)
		must(t, err)
		epochs := map[int64]int{}
		for _, r := range recs {
			if epochs[r.Epoch]++; epochs[r.Epoch] > 1 {
				t.Fatalf("%s records epoch %d twice: %+v", h.Name, r.Epoch, recs)
			}
		}
		if i == 0 {
			daemonRecs = recs
		} else if len(recs) != len(daemonRecs) {
			t.Fatalf("monitors disagree on the history: %s has %d records, %s %d", h.Name, len(recs), v.mons[0].Name, len(daemonRecs))
		}
	}
	promotions := 0
	if cliPromoted {
		promotions++
	}
	for _, r := range daemonRecs {
		t.Logf("monitors recorded failover %d: %s → %s, result %s, promoted %v, %s", r.Epoch, r.OldPrimary, r.NewPrimary, r.Result, r.Promoted, r.Error)
		if r.Promoted {
			promotions++
			if r.NewPrimary != newP.Addr() {
				t.Fatalf("the monitors promoted %s, but %s is the writable server", r.NewPrimary, newP.Name)
			}
		}
	}
	if promotions != 1 {
		t.Fatalf("%d promotions (CLI %v, monitors %+v), want exactly 1", promotions, cliPromoted, daemonRecs)
	}
	if cliPromoted && cli.rep.NewPrimary != newP.Addr() {
		t.Fatalf("the CLI promoted %s, but %s is the writable server", cli.rep.NewPrimary, newP.Name)
	}
	winner := "daemon"
	if cliPromoted {
		winner = "CLI"
	}
	t.Logf("the %s promoted %s", winner, newP.Name)

	w.Stop()
	other := map[*lab.Server]*lab.Server{v.Server("db2"): v.Server("db3"), v.Server("db3"): v.Server("db2")}[newP]
	assertSurvivors(t, v.Lab, v.cfg, w, newP, newP, other)
	if h := v.holders(); len(h) != 1 || h[0] != newP.Name {
		t.Fatalf("the VIP is on %v, want %s", h, newP.Name)
	}
	smp.finish(t)
}

// primaryCheck is what HAProxy's health check gets from each listed
// server's agent on /primary: the servers answering 200.
func (v *vipLab) primaryCheck() []string {
	var out []string
	for _, s := range v.listed {
		var body map[string]any
		if code, _ := getJSON("http://"+s.IP+":8008/primary", &body); code == 200 {
			out = append(out, s.Name)
		}
	}
	return out
}

// A replica of the primary that the config does not list (db4) is there
// from the monitors' first start: a snapshot problem ("not in the
// config"), which must not stop the monitors from agreeing on the primary
// in service, leasing it the VIP and answering HAProxy. Then a manual CLI
// switchover (not through the daemon) under the running monitors, there
// and back: each new primary stays writable (the leader must not fence
// it), the VIP and HAProxy's 200 follow it, never two writers.
func TestSplitBrainUnlistedReplica(t *testing.T) {
	ctx := context.Background()
	v := startVIPLabWith(t, lab.Options{Servers: 4}, monLabOptions{unlisted: 1})
	db1, db2 := v.Server("db1"), v.Server("db2")
	tp := topology(t, v.cfg)
	if c := tp.Clusters[0]; len(c.Unlisted) != 1 || c.Unlisted[0].ServerID != 4 {
		t.Fatalf("the lab has no unlisted replica: %+v", c.Unlisted)
	}
	v.waitHealthy(t)
	v.waitHolder(t, "db1", 20*time.Second)
	waitFor(t, "HAProxy's /primary check to answer 200 on db1's agent only", 10*time.Second, func() bool {
		p := v.primaryCheck()
		return len(p) == 1 && p[0] == "db1"
	})
	smp := v.splitBrainSampler(t, true)
	for _, target := range []*lab.Server{db2, db1} {
		start := time.Now()
		r := myha(t, "switchover", "--local", "--cluster", lab.ClusterName, "--new-primary", target.Addr(), "--yes", "--config", v.cfg)
		if r.code != 0 {
			t.Fatalf("switchover to %s (exit %d):\n%s\n%s", target.Name, r.code, r.stdout, r.stderr)
		}
		waitFor(t, "every monitor to agree on "+target.Name, 15*time.Second, func() bool {
			for _, h := range v.mons {
				var c clustersJSON
				if _, err := getJSON(v.api(h, "/api/clusters"), &c); err != nil || len(c.Clusters) != 1 || c.Clusters[0].Primary != target.Addr() {
					return false
				}
			}
			return true
		})
		v.waitHolder(t, target.Name, 15*time.Second)
		waitFor(t, "HAProxy's /primary check to answer 200 on "+target.Name+"'s agent only", 10*time.Second, func() bool {
			p := v.primaryCheck()
			return len(p) == 1 && p[0] == target.Name
		})
		t.Logf("switchover to %s: agreed, VIP and /primary on it %s after the command started", target.Name, time.Since(start).Round(time.Millisecond))
		// The leader's corrections run after every probe: a few probes
		// later the new primary must still take writes.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if ro, err := target.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "0" {
				t.Fatalf("the new primary %s is read-only again (%q, %v): the monitors fenced it", target.Name, ro, err)
			}
			time.Sleep(100 * time.Millisecond) // sampling the new primary's read_only
		}
	}
	var j struct {
		Journal []struct{ Kind, Server, Reason string } `json:"journal"`
	}
	getJSON(v.api(v.leader(t), "/api/failovers"), &j)
	for _, e := range j.Journal {
		if e.Kind == "fence_stray" {
			t.Errorf("the leader fenced %s during the switchovers: %s", e.Server, e.Reason)
		}
	}
	v.noFailoverFor(t, time.Second)
	smp.finish(t)
}
