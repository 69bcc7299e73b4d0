package daemon

// FAKE servers (test/fakeserver): this tests which cluster monitors a
// reload replaces, not server behaviour.

import (
	"testing"
	"time"
)

// A reload replaces only the clusters whose settings changed: an unchanged
// one keeps running with its sessions and its failure count, a changed one
// restarts with the new settings, a removed one stops.
func TestReloadRestartsOnlyChangedClusters(t *testing.T) {
	_, _, _, a := fakeCluster(t)
	_, _, _, b := fakeCluster(t)
	b.Spec.Name = "b"
	_, _, _, gone := fakeCluster(t)
	gone.Spec.Name = "gone"
	tm := startMonitors(t, 1, []ClusterConfig{a, b, gone})
	d := leaderOf(t, tm)
	eventually(t, "every cluster probed", 10*time.Second, func() bool {
		for _, n := range []string{"c", "b", "gone"} {
			cm := d.cluster(n)
			if cm == nil {
				return false
			}
			cm.mu.Lock()
			at := cm.snapAt
			cm.mu.Unlock()
			if at.IsZero() {
				return false
			}
		}
		return true
	})
	before := map[string]*clusterMon{"c": d.cluster("c"), "b": d.cluster("b")}
	changed := b
	changed.DownAfter = 2 * b.DownAfter
	d.Reload([]ClusterConfig{a, changed})
	if d.cluster("c") != before["c"] {
		t.Error("an unchanged cluster was restarted by the reload")
	}
	if cm := d.cluster("b"); cm == before["b"] || cm.cfg.DownAfter != changed.DownAfter {
		t.Error("a changed cluster was not restarted with its new settings")
	}
	if d.cluster("gone") != nil {
		t.Error("a removed cluster is still monitored")
	}
	reloaded := time.Now()
	eventually(t, "the unchanged cluster probed after the reload", 10*time.Second, func() bool {
		cm := before["c"]
		cm.mu.Lock()
		defer cm.mu.Unlock()
		return cm.snapAt.After(reloaded)
	})
}
