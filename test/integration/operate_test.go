package integration

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// agentReplica is the HTTP status (and body) of a server's agent on
// /replica, HAProxy's check for read traffic.
func agentReplica(s *lab.Server) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + s.IP + ":8008/replica")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// monitorClusterJSON is the part of a monitor's /api/clusters this test reads.
type monitorClusterJSON struct {
	Clusters []struct {
		State        string         `json:"state"`
		Primary      string         `json:"agreed_primary"`
		Paused       map[string]any `json:"paused"`
		Maintenance  map[string]any `json:"maintenance"`
		BlockedUntil string         `json:"automatic_failover_blocked_until"`
		Blocked      string         `json:"automatic_failover_blocked"`
	} `json:"clusters"`
}

func (m *monitorsLab) clusterOf(h *lab.Host) (c struct {
	State, Primary, BlockedUntil, Blocked string
	Paused, Maintenance                   map[string]any
}, ok bool) {
	var v monitorClusterJSON
	if _, err := getJSON(m.api(h, "/api/clusters"), &v); err != nil || len(v.Clusters) != 1 {
		return c, false
	}
	x := v.Clusters[0]
	c.State, c.Primary, c.BlockedUntil, c.Blocked, c.Paused, c.Maintenance = x.State, x.Primary, x.BlockedUntil, x.Blocked, x.Paused, x.Maintenance
	return c, true
}

func (m *monitorsLab) metricsText(t *testing.T, h *lab.Host) string {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(m.api(h, "/metrics"))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// historyStaysFor asserts that every monitor's history holds exactly n
// records (none added) for a while.
func (m *monitorsLab) historyStaysFor(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, h := range m.mons {
			if f, err := m.failovers(h); err == nil && len(f) != n {
				t.Fatalf("%s records %d failovers/switchovers, want %d: %+v", h.Name, len(f), n, f[len(f)-1])
			}
		}
		time.Sleep(200 * time.Millisecond) // sampling for an unwanted failover
	}
}

// secondRecordEverywhere waits until every monitor records a second
// entry (after the switchover), the same one, and no third.
func (m *monitorsLab) secondRecordEverywhere(t *testing.T) ReportJSON {
	t.Helper()
	waitFor(t, "the failover to be recorded on every monitor", 30*time.Second, func() bool {
		for _, h := range m.mons {
			if f, err := m.failovers(h); err != nil || len(f) < 2 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // a further failover would show up now
	var first ReportJSON
	for i, h := range m.mons {
		f, _ := m.failovers(h)
		if len(f) != 2 {
			t.Fatalf("%s records %d entries, want the switchover and one failover: %+v", h.Name, len(f), f)
		}
		if i == 0 {
			first = f[1]
		} else if f[1].NewPrimary != first.NewPrimary || f[1].Epoch != first.Epoch {
			t.Fatalf("monitors disagree: %+v vs %+v", f[1], first)
		}
	}
	return first
}

// One lab, the operator's day through the CLI, which talks to the
// monitors by default (the config lists them):
//   - myha maintenance on db2 (the preferred candidate: candidate: true and
//     first in config order): its agent's /replica answers 503 with the
//     reason while db3's answers 200;
//   - a timed pause lets a switchover through the monitors run (to db3:
//     agreed, VIP moved) and ends by itself after its 10 s on every monitor;
//   - myha pause, then the primary (db3) is killed: no failover while paused
//     (sampled on every monitor well past the time a failover takes), and
//     myha status shows the pause and the dead primary;
//   - myha resume: the failover runs, to db1 (never db2, in maintenance),
//     every acknowledged row is on the new primary and on db2, exactly one
//     server is writable and one host holds the VIP throughout;
//   - myha ack, sent while the first monitor of the config is down (the CLI
//     goes on to the next), lifts the block on every monitor, including the
//     first once restarted, which also still holds the maintenance;
//   - myha maintenance off puts db2 back in /replica.
func TestOperatorPauseMaintenanceAndAckThroughMonitors(t *testing.T) {
	ctx := context.Background()
	started := time.Now()
	v := startVIPLabWith(t, lab.Options{Servers: 3}, monLabOptions{serverYAML: map[string]string{"db2": "        candidate: true\n"}})
	v.waitHealthy(t)
	v.waitHolder(t, "db1", 20*time.Second)
	smp := v.splitBrainSampler(t, false)
	db1, db2, db3 := v.Server("db1"), v.Server("db2"), v.Server("db3")
	must(t, v.CreateWriteTable(ctx, "w"))
	t.Logf("lab up in %s", time.Since(started).Round(time.Millisecond))

	// Maintenance: db2 leaves /replica, db3 stays.
	r := myha(t, "maintenance", "on", "--cluster", "lab", "--server", db2.Addr(), "--reason", "disk swap", "--config", v.cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "in maintenance on every monitor") {
		t.Fatalf("maintenance on (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "db2's agent to answer 503 on /replica with the reason, db3's 200", 10*time.Second, func() bool {
		c2, b2 := agentReplica(db2)
		c3, _ := agentReplica(db3)
		return c2 == 503 && strings.Contains(b2, "disk swap") && c3 == 200
	})

	// A timed pause: a switchover through the monitors (to db3: db2 is in
	// maintenance) still runs while paused (agreed, VIP moved), and the
	// pause ends by itself.
	// The leader stamps the pause between these two readings.
	beforePause := time.Now()
	r = myha(t, "pause", "--cluster", "lab", "--for", "10s", "--config", v.cfg)
	pausedAt := time.Now()
	if r.code != 0 || !strings.Contains(r.stdout, "ends by itself") {
		t.Fatalf("pause --for 10s (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = myha(t, "switchover", "--cluster", "lab", "--new-primary", db3.Addr(), "--yes", "--config", v.cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "SUCCESS") {
		t.Fatalf("switchover through the monitors while paused (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "every monitor to agree on db3 while still paused", 10*time.Second, func() bool {
		for _, h := range v.mons {
			if c, ok := v.clusterOf(h); !ok || c.Primary != db3.Addr() || c.Paused == nil {
				return false
			}
		}
		return true
	})
	v.waitHolder(t, "db3", 10*time.Second)
	if d := time.Since(pausedAt); d >= 10*time.Second {
		t.Fatalf("the switchover and its VIP move took %s: past the pause, so this run proves nothing", d)
	}
	t.Logf("switchover to db3 while paused: agreed and VIP moved %s after the pause began", time.Since(pausedAt).Round(time.Millisecond))
	waitFor(t, "the timed pause to end by itself on every monitor", 20*time.Second, func() bool {
		for _, h := range v.mons {
			if c, ok := v.clusterOf(h); !ok || c.Paused != nil || !strings.Contains(v.metricsText(t, h), `myha_cluster_paused{cluster="lab"} 0`) {
				return false
			}
		}
		return true
	})
	if d := time.Since(beforePause); d < 10*time.Second {
		t.Fatalf("the 10 s pause ended %s after myha pause was started", d)
	}
	t.Logf("the 10 s pause ended on every monitor %s after myha pause was started", time.Since(beforePause).Round(time.Millisecond))

	// Pause, then kill the primary under writes.
	r = myha(t, "pause", "--cluster", "lab", "--reason", "upgrade", "--config", v.cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "paused on every monitor") || !strings.Contains(r.stdout, "Manual failover and switchover") {
		t.Fatalf("pause (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "every monitor to show the pause and the maintenance in the API and the metrics", 10*time.Second, func() bool {
		for _, h := range v.mons {
			c, ok := v.clusterOf(h)
			met := v.metricsText(t, h)
			if !ok || c.Paused == nil || c.Maintenance[db2.Addr()] == nil ||
				!strings.Contains(met, `myha_cluster_paused{cluster="lab"} 1`) ||
				!strings.Contains(met, `myha_server_maintenance{cluster="lab",server="`+db2.Addr()+`"} 1`) ||
				!strings.Contains(met, `myha_server_maintenance{cluster="lab",server="`+db3.Addr()+`"} 0`) {
				return false
			}
		}
		return true
	})
	chk := myha(t, "check", "--cluster", "lab", "--config", v.cfg)
	if !strings.Contains(chk.stdout, "paused since") || !strings.Contains(chk.stdout, "in maintenance (disk swap)") {
		t.Fatalf("myha check does not show the pause and the maintenance:\n%s\n%s", chk.stdout, chk.stderr)
	}
	w := v.StartWriter("w", db3, 10*time.Millisecond, false)
	must(t, w.WaitAcked(30, 10*time.Second))
	must(t, db3.Kill())
	killed := time.Now()
	w.Stop()
	waitFor(t, "every monitor to judge the paused cluster's primary dead", 15*time.Second, func() bool {
		for _, h := range v.mons {
			if c, ok := v.clusterOf(h); !ok || c.State != "dead_primary" || c.Paused == nil {
				return false
			}
		}
		return true
	})
	// A failover takes about a second here once the primary is judged
	// dead (measured below after resume); sampled for five.
	v.historyStaysFor(t, 1, 5*time.Second) // the switchover only
	for _, s := range v.Servers {
		if s == db3 {
			continue
		}
		if ro, err := s.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "1" {
			t.Fatalf("%s was made writable while the cluster was paused: read_only=%q %v", s.Name, ro, err)
		}
	}
	st := myha(t, "status", "--config", v.cfg)
	if !strings.Contains(st.stdout, "dead_primary") || !strings.Contains(st.stdout, "PAUSED") || !strings.Contains(st.stdout, db2.Addr()+" in maintenance") {
		t.Fatalf("myha status does not show the paused cluster with its dead primary and db2 in maintenance:\n%s\n%s", st.stdout, st.stderr)
	}
	tp := myha(t, "topology", "--cluster", "lab", "--config", v.cfg)
	if !strings.Contains(tp.stdout, "[MAINTENANCE: disk swap]") || !strings.Contains(tp.stdout, "PAUSED") {
		t.Fatalf("myha topology does not mark the maintenance and the pause:\n%s\n%s", tp.stdout, tp.stderr)
	}
	t.Logf("no failover for %s after the kill while paused", time.Since(killed).Round(time.Millisecond))

	// Resume: the failover runs, never to db2.
	resumed := time.Now()
	r = myha(t, "resume", "--cluster", "lab", "--config", v.cfg)
	if r.code != 0 {
		t.Fatalf("resume (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep := v.secondRecordEverywhere(t)
	if rep.Result != "success" || rep.NewPrimary != db1.Addr() {
		t.Fatalf("failover after resume: want success to db1 (db2 is in maintenance): %+v", rep)
	}
	t.Logf("failover recorded on every monitor %s after myha resume", time.Since(resumed).Round(time.Millisecond))
	assertSurvivors(t, v.Lab, v.cfg, w, db1, db1, db2)
	v.waitHolder(t, "db1", 20*time.Second)

	// The automatic failover blocks further ones; ack through the CLI,
	// with the first monitor of the config down, lifts it everywhere.
	for _, h := range v.mons {
		if c, ok := v.clusterOf(h); !ok || c.BlockedUntil == "" && c.Blocked == "" {
			t.Fatalf("%s does not show automatic failovers blocked after the failover: %+v", h.Name, c)
		}
	}
	mon1 := v.Host("mon1")
	v.kill("mon1")
	v.leader(t, v.Host("mon2"), v.Host("mon3")) // mon1 may have led
	r = myha(t, "ack", "--cluster", "lab", "--config", v.cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "acknowledged through the monitors") {
		t.Fatalf("ack through the monitors with mon1 down (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	v.start(t, mon1)
	waitFor(t, "every monitor, mon1 restarted, to show no block and db2 still in maintenance", 30*time.Second, func() bool {
		for _, h := range v.mons {
			c, ok := v.clusterOf(h)
			if !ok || c.BlockedUntil != "" || c.Blocked != "" || c.Maintenance[db2.Addr()] == nil || c.Primary != db1.Addr() {
				return false
			}
		}
		return true
	})

	// Out of maintenance: db2 (a replica of db1 now) is back in /replica.
	r = myha(t, "maintenance", "off", "--cluster", "lab", "--server", db2.Addr(), "--config", v.cfg)
	if r.code != 0 {
		t.Fatalf("maintenance off (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "db2's agent to answer 200 on /replica again", 10*time.Second, func() bool {
		c, _ := agentReplica(db2)
		return c == 200
	})

	smp.finish(t)
	t.Logf("whole test %s", time.Since(started).Round(time.Millisecond))
}
