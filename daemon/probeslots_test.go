package daemon

// FAKE servers (test/fakeserver): this checks the prober's scheduling.

import (
	"context"
	"testing"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

// With every routine probe slot taken (a host short of CPU, thousands of
// healthy clusters queued), routine probes wait, but a probe woken by the
// primary watch, and every probe of a failing primary, runs at once (in a
// slot of the other pool).
func TestFailingClusterSkipsTheProbeQueue(t *testing.T) {
	primary, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	r2, _ := fakeserver.Start("myha", "pw", fakeMaria(2, primary, "Yes"))
	defer r2.Close()
	spec := topology.ClusterSpec{Name: "c", Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second,
		Servers: []topology.ServerSpec{{Address: primary.Addr()}, {Address: r2.Addr()}}}
	cc := ClusterConfig{Spec: spec, Policy: failover.Policy{MaxLag: time.Minute}, Repl: topology.Credentials{User: "repl", Password: "r"},
		Interval: 100 * time.Millisecond, DownAfter: time.Hour, BlockPeriod: time.Hour}
	tm := startMonitors(t, 1, []ClusterConfig{cc})
	d := tm.ds[0]
	snapAt := func() time.Time {
		cm := d.cluster("c")
		cm.mu.Lock()
		defer cm.mu.Unlock()
		return cm.snapAt
	}
	eventually(t, "a first probe", 10*time.Second, func() bool { return d.cluster("c") != nil && !snapAt().IsZero() })
	ctx := context.Background()
	for i := 0; i < cap(d.probeSlots); i++ {
		d.probeSlots.acquire(ctx)
	}
	defer func() {
		for i := 0; i < cap(d.probeSlots); i++ {
			d.probeSlots.release()
		}
	}()
	time.Sleep(300 * time.Millisecond) // a probe already past its turn ends
	before := snapAt()
	time.Sleep(500 * time.Millisecond) // five intervals
	if !snapAt().Equal(before) {
		t.Fatal("a routine probe ran with every slot taken")
	}
	d.cluster("c").poke() // what the primary watch does when its session breaks
	eventually(t, "the woken probe", 2*time.Second, func() bool { return snapAt().After(before) })
	primary.Kill()
	d.cluster("c").poke() // the watch's session breaks (it may be between sessions: poke as it would)
	eventually(t, "the failing primary re-probed without a slot", 3*time.Second, func() bool {
		cm := d.cluster("c")
		cm.mu.Lock()
		defer cm.mu.Unlock()
		return cm.failures >= 3
	})
}
