package daemon

// Open decisions and failed automatic failovers, on FAKES (memberlist's
// MockNetwork, raft's in-memory transport, test/fakeserver endpoints):
// what the leader does over many probes, which a real lab cannot make
// happen on demand.

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

// fakeCluster is a primary and two replicas on fakes, and the config of a
// cluster over them that fails over automatically every 100 ms probe.
func fakeCluster(t *testing.T) (primary, r2, r3 *fakeserver.Server, cc ClusterConfig) {
	t.Helper()
	primary, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	r2, _ = fakeserver.Start("myha", "pw", fakeMaria(2, primary, "Yes"))
	r3, _ = fakeserver.Start("myha", "pw", fakeMaria(3, primary, "Yes"))
	t.Cleanup(func() { r2.Close(); r3.Close() })
	spec := topology.ClusterSpec{Name: "c", Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second,
		Servers: []topology.ServerSpec{{Address: primary.Addr()}, {Address: r2.Addr()}, {Address: r3.Addr()}}}
	cc = ClusterConfig{Spec: spec, Policy: failover.Policy{MaxLag: time.Minute, CatchupTimeout: 2 * time.Second}, Repl: topology.Credentials{User: "repl", Password: "r"},
		Interval: 100 * time.Millisecond, DownAfter: 300 * time.Millisecond, BlockPeriod: time.Hour, Auto: true,
		Fencing: FencingBestEffort} // fakes: no agents, no shutdown_script
	return primary, r2, r3, cc
}

// killFake closes the primary and makes its replicas lose it.
func killFake(primary, r2, r3 *fakeserver.Server) {
	primary.Close()
	r2.SetState(fakeMaria(2, primary, "Connecting"))
	r3.SetState(fakeMaria(3, primary, "Connecting"))
}

func leaderOf(t *testing.T, tm *testMonitors) *Daemon {
	t.Helper()
	var l *Daemon
	eventually(t, "one leader", 10*time.Second, func() bool {
		ls := tm.leaders(nil)
		if len(ls) == 1 {
			l = tm.ds[ls[0]]
		}
		return len(ls) == 1
	})
	return l
}

// MHA's rule, end to end: an automatic failover whose pre hook fails ends
// "aborted" and blocks automatic failovers until acknowledged. The leader
// keeps probing the dead primary every 100 ms meanwhile and must neither
// start another failover nor run the hook again; after myha ack (the API's
// "ack" command) the next automatic attempt runs.
func TestFailedAutomaticFailoverBlocksFurtherOnesUntilAck(t *testing.T) {
	primary, r2, r3, cc := fakeCluster(t)
	var pre atomic.Int32
	cc.Hooks = failover.Hooks{Pre: []string{"notify"}, Run: func(_ context.Context, _ string, _, env []string) (int, string, error) {
		if strings.Contains(strings.Join(env, " "), "MYHA_PHASE=pre") {
			pre.Add(1)
			return 1, "the pre hook refuses", nil
		}
		return 0, "", nil
	}}
	tm := startMonitors(t, 3, []ClusterConfig{cc})
	leader := leaderOf(t, tm)
	eventually(t, "the monitors to agree on the primary", 10*time.Second, func() bool {
		return leader.fsm.snapshot().Primary["c"] == primary.Addr()
	})
	killFake(primary, r2, r3)
	eventually(t, "the failed automatic failover to be recorded", 15*time.Second, func() bool {
		return len(leader.fsm.snapshot().History) == 1
	})
	time.Sleep(2 * time.Second) // twenty probes of the dead primary: none may start a failover
	st := leader.fsm.snapshot()
	if len(st.History) != 1 || st.History[0].Result != failover.ResultAborted || pre.Load() != 1 {
		t.Fatalf("after a failed automatic failover: %d records (%+v), pre hook ran %d times; want 1 aborted, hook once", len(st.History), st.History, pre.Load())
	}
	if why := leader.cluster("c").status()["automatic_failover_blocked"]; why == nil || !strings.Contains(fmt.Sprint(why), "myha ack") {
		t.Fatalf("status does not say automatic failovers are blocked until acknowledged: %v", why)
	}
	if err := leader.apply(command{Op: "ack", Cluster: "c", At: leader.now()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next automatic attempt after the ack", 10*time.Second, func() bool {
		return len(leader.fsm.snapshot().History) == 2
	})
	if n := pre.Load(); n != 2 {
		t.Fatalf("pre hook ran %d times, want 2 (once per attempt)", n)
	}
}

// A decision left open because another holder has the failover lock (a
// DBA's CLI run) is retried by the same leader with backoff (1 s doubling),
// not every probe, and completed under the same epoch once the lock is
// free: one record, no second decision.
func TestOpenDecisionRetriedWithBackoff(t *testing.T) {
	primary, r2, r3, cc := fakeCluster(t)
	held, attempts := holdLock(r2, cc)
	tm := startMonitors(t, 3, []ClusterConfig{cc})
	leader := leaderOf(t, tm)
	eventually(t, "the monitors to agree on the primary", 10*time.Second, func() bool {
		return leader.fsm.snapshot().Primary["c"] == primary.Addr()
	})
	killFake(primary, r2, r3)
	eventually(t, "the decision to be opened", 15*time.Second, func() bool {
		_, open := leader.fsm.snapshot().Open["c"]
		return open && attempts.Load() > 0
	})
	first := time.Now()
	time.Sleep(5 * time.Second) // fifty probes: with backoff, attempts at about 0, 0.1, 1.1 and 3.1 s
	n := attempts.Load()
	if n < 3 || n > 6 {
		t.Fatalf("%d attempts to take the lock in %s, want 3 to 6 (backoff from 1 s doubling)", n, time.Since(first).Round(time.Millisecond))
	}
	st := leader.fsm.snapshot()
	open, ok := st.Open["c"]
	if !ok || len(st.History) != 0 {
		t.Fatalf("while the lock is held: open %v, history %+v", ok, st.History)
	}
	epoch := open.Epoch
	held.Store(false)
	eventually(t, "the open decision to be completed", 20*time.Second, func() bool {
		return len(leader.fsm.snapshot().History) == 1
	})
	h := leader.fsm.snapshot().History[0]
	// Partial, not success: the fake replicas cannot really replicate
	// from the new primary, so the repoint's verification fails.
	if h.Epoch != epoch || !h.Promoted || (h.Result != failover.ResultSuccess && h.Result != failover.ResultPartial) || leader.fsm.snapshot().Epoch != epoch {
		t.Fatalf("completed as epoch %d %s promoted %v (last epoch %d), want epoch %d promoted, no other decision", h.Epoch, h.Result, h.Promoted, leader.fsm.snapshot().Epoch, epoch)
	}
	t.Logf("%d attempts in all; completed under epoch %d", attempts.Load(), epoch)
}

// holdLock makes r2 (a FAKE server) answer that myha's own account (a
// DBA's CLI run) holds the cluster's failover lock while held is set; it
// counts the attempts to take it.
func holdLock(r2 *fakeserver.Server, cc ClusterConfig) (held *atomic.Bool, attempts *atomic.Int32) {
	held, attempts = new(atomic.Bool), new(atomic.Int32)
	held.Store(true)
	r2.OnQuery = func(q string) (*gomysql.Result, bool, error) {
		if strings.HasPrefix(strings.ToUpper(q), "SELECT L.ID AS ID") && held.Load() {
			res, err := fakeserver.Result([]string{"id", "user", "host", "secs"}, []map[string]string{{"id": "42", "user": cc.Spec.Credentials.User, "host": "10.0.0.9:5000", "secs": "3"}})
			return res, true, err
		}
		if !strings.HasPrefix(strings.ToUpper(q), "SELECT GET_LOCK(") {
			return nil, false, nil
		}
		attempts.Add(1)
		r := "1"
		if held.Load() {
			r = "0" // someone else holds the cluster's failover lock
		}
		res, err := fakeserver.Result([]string{"r"}, []map[string]string{{"r": r}})
		return res, true, err
	}
	return held, attempts
}
