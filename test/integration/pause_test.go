package integration

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// The primary's agent is paused (SIGSTOP) and then its host is cut off by
// dropped packets: a paused agent cannot fence its server when its lease
// lapses, so its watchdog (a process of its own) releases the VIP and sets
// read_only=1 within the bound the monitors count before they promote.
// The old primary is never writable together with the new one, and the
// agent, resumed and healed, neither takes the VIP back nor re-opens its
// server; one VIP holder throughout.
func TestSplitBrainPausedAgentCutOff(t *testing.T) {
	ctx := context.Background()
	v, smp := startFaultLab(t, true)
	db1 := v.Server("db1")
	v.pause(t, "db1") // the agent, not the server
	start := time.Now()
	must(t, db1.DropFrom(ctx, v.hostsExcept(&db1.Host)...))
	rep := v.oneFailoverEverywhere(t)
	if rep.Result != "success" {
		t.Fatalf("failover after cutting off the host of a paused agent: %+v", rep)
	}
	newP := v.newPrimaryOf(t, rep)
	v.waitHolder(t, newP.Name, 20*time.Second)
	t.Logf("new primary %s holds the VIP %s after the cut", newP.Name, time.Since(start).Round(time.Millisecond))
	if ro, err := db1.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "1" {
		t.Fatalf("the cut-off old primary is not fenced while its agent is paused: read_only=%q (%v)", ro, err)
	}

	// Resumed, still cut off, then healed: db1 stays read-only and never
	// holds the VIP again (sampled throughout).
	v.signal(t, "db1", syscall.SIGCONT)
	time.Sleep(2 * time.Second) // the resumed agent decides a few rounds; sampled meanwhile
	must(t, db1.HealDrops(ctx))
	waitFor(t, "every monitor to agree on "+newP.Name+" after the heal", 15*time.Second, func() bool {
		for _, h := range v.mons {
			var c clustersJSON
			if _, err := getJSON(v.api(h, "/api/clusters"), &c); err != nil || len(c.Clusters) != 1 || c.Clusters[0].Primary != newP.Addr() {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // healed: the old side must stay fenced; sampled meanwhile
	if h := v.holders(); len(h) != 1 || h[0] != newP.Name {
		t.Fatalf("after the heal the VIP is on %v, want %s", h, newP.Name)
	}
	if ro, err := db1.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "1" {
		t.Fatalf("the old primary is writable again after its agent resumed: read_only=%q (%v)", ro, err)
	}
	smp.finish(t)
}
