package daemon

// These tests run three monitors in one process on FAKES: memberlist's
// MockNetwork, raft's in-memory transport and stores, and test/fakeserver
// MariaDB endpoints. They check the election, gossip and the one-failover
// rule; real servers and real networks are tested in test/integration.

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

var fakeCols = []string{"Connection_name", "Master_Host", "Master_Port", "Master_Server_Id", "Slave_IO_Running", "Slave_SQL_Running",
	"Seconds_Behind_Master", "Using_Gtid", "Gtid_IO_Pos", "Slave_received_heartbeats", "Last_SQL_Error", "Last_IO_Error"}

func fakeMaria(id int, primary *fakeserver.Server, io string) fakeserver.State {
	st := fakeserver.State{Version: "10.11.19-MariaDB-log", Comment: "fake",
		Vars: map[string]string{"server_id": fmt.Sprint(id), "read_only": "ON", "log_bin": "ON", "log_slave_updates": "ON",
			"binlog_format": "ROW", "gtid_strict_mode": "ON", "gtid_binlog_pos": "0-1-10", "gtid_slave_pos": "0-1-10", "gtid_current_pos": "0-1-10"},
		Status: map[string]string{}, ReplicaColumns: fakeCols, BinlogFile: "mysql-bin.000001", BinlogPos: 4}
	if primary == nil {
		st.Vars["read_only"] = "OFF"
		return st
	}
	host, port, _ := net.SplitHostPort(primary.Addr())
	st.ReplicaRows = []map[string]string{{"Connection_name": "", "Master_Host": host, "Master_Port": port, "Master_Server_Id": "1",
		"Slave_IO_Running": io, "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": "0", "Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-1-10",
		"Slave_received_heartbeats": "5", "Last_SQL_Error": "", "Last_IO_Error": ""}}
	return st
}

type testMonitors struct {
	ds      []*Daemon
	raftTr  []*raft.InmemTransport
	cancels []context.CancelFunc
	wg      sync.WaitGroup
}

func startMonitors(t *testing.T, n int, clusters []ClusterConfig) *testMonitors {
	t.Helper()
	return startMonitorsWith(t, n, clusters, nil)
}

// startMonitorsWith lets a test adjust each monitor's config.
func startMonitorsWith(t *testing.T, n int, clusters []ClusterConfig, adjust func(*Config)) *testMonitors {
	t.Helper()
	mock := &memberlist.MockNetwork{}
	var mons []MonitorAddr
	for i := 1; i <= n; i++ {
		mons = append(mons, MonitorAddr{Name: fmt.Sprintf("mon%d", i), Address: "127.0.0.1", GossipPort: i, RaftPort: 10000 + i, APIPort: 0})
	}
	trans := map[string]*raft.InmemTransport{}
	for _, m := range mons {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(hostPort(m.Address, m.RaftPort)))
		trans[m.Name] = tr
	}
	for _, a := range trans {
		for _, b := range trans {
			if a != b {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	// Every mock transport exists before any monitor runs (MockNetwork is
	// not safe to extend while in use).
	gt := map[string]memberlist.Transport{}
	for _, m := range mons {
		gt[m.Name] = udpLike{mock.NewTransport(m.Name)}
	}
	tm := &testMonitors{}
	for _, m := range mons {
		store := raft.NewInmemStore()
		cfg := Config{Self: m.Name, Monitors: mons, Clusters: clusters, GossipLabel: "test",
			GossipTransport: gt[m.Name], RaftTransport: trans[m.Name],
			RaftStores: &RaftStores{Logs: store, Stable: store, Snaps: raft.NewInmemSnapshotStore()}}
		if adjust != nil {
			adjust(&cfg)
		}
		d, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		tm.ds, tm.cancels, tm.raftTr = append(tm.ds, d), append(tm.cancels, cancel), append(tm.raftTr, trans[m.Name])
		tm.wg.Add(1)
		go func() { defer tm.wg.Done(); d.Run(ctx) }()
	}
	t.Cleanup(tm.stopAll)
	return tm
}

// udpLike makes the mock's packets fire-and-forget, as UDP is: the mock
// delivers on unbuffered channels, so three memberlists answering each
// other's pings at once (or one that has shut down) would block every
// sender for good.
type udpLike struct{ *memberlist.MockTransport }

func (u udpLike) WriteTo(b []byte, addr string) (time.Time, error) {
	return u.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (u udpLike) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	go u.MockTransport.WriteToAddress(b, a)
	return time.Now(), nil
}

func (tm *testMonitors) stopAll() {
	for _, c := range tm.cancels {
		c()
	}
	tm.wg.Wait()
}

// leaders returns the indexes of running monitors that believe they lead.
func (tm *testMonitors) leaders(skip map[int]bool) []int {
	var out []int
	for i, d := range tm.ds {
		if !skip[i] && d.isLeader() {
			out = append(out, i)
		}
	}
	return out
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}

func TestElectionAndLeaderLoss(t *testing.T) {
	tm := startMonitors(t, 3, nil)
	eventually(t, "one leader", 10*time.Second, func() bool { return len(tm.leaders(nil)) == 1 })
	old := tm.leaders(nil)[0]
	tm.cancels[old]()
	eventually(t, "a new leader among the other two", 10*time.Second, func() bool {
		l := tm.leaders(map[int]bool{old: true})
		return len(l) == 1 && l[0] != old
	})
}

func TestDeadPrimaryOneFailoverRecordedEverywhere(t *testing.T) {
	primary, err := fakeserver.Start("myha", "pw", fakeMaria(1, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := fakeserver.Start("myha", "pw", fakeMaria(2, primary, "Yes"))
	defer r2.Close()
	r3, _ := fakeserver.Start("myha", "pw", fakeMaria(3, primary, "Yes"))
	defer r3.Close()
	spec := topology.ClusterSpec{Name: "c", Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second,
		Servers: []topology.ServerSpec{{Address: primary.Addr()}, {Address: r2.Addr()}, {Address: r3.Addr()}}}
	cc := ClusterConfig{Spec: spec, Policy: failover.Policy{MaxLag: time.Minute, CatchupTimeout: 2 * time.Second}, Repl: topology.Credentials{User: "repl", Password: "r"},
		Interval: 100 * time.Millisecond, DownAfter: 300 * time.Millisecond, BlockPeriod: time.Hour, Auto: true,
		Fencing: FencingBestEffort} // fakes: no agents, no shutdown_script
	tm := startMonitors(t, 3, []ClusterConfig{cc})
	eventually(t, "one leader", 10*time.Second, func() bool { return len(tm.leaders(nil)) == 1 })
	// Gossip: each monitor holds the other two's observations of the primary.
	eventually(t, "observations from both peers", 10*time.Second, func() bool {
		for _, d := range tm.ds {
			if len(d.gossip().views()["c|"+primary.Addr()]) != 2 {
				return false
			}
		}
		return true
	})
	eventually(t, "the monitors to agree on the primary in service", 10*time.Second, func() bool {
		return tm.ds[0].fsm.snapshot().Primary["c"] == primary.Addr()
	})
	for _, d := range tm.ds {
		if got := d.cluster("c").status()["state"]; got != StateHealthy {
			t.Fatalf("%s: state %v before the kill", d.self.Name, got)
		}
	}

	// The primary dies; its replicas lose it.
	primary.Close()
	for _, r := range []*fakeserver.Server{r2, r3} {
		id := map[*fakeserver.Server]int{r2: 2, r3: 3}[r]
		r.SetState(fakeMaria(id, primary, "Connecting"))
	}
	eventually(t, "a failover recorded on every monitor", 15*time.Second, func() bool {
		for _, d := range tm.ds {
			if len(d.fsm.snapshot().History) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // let any second (wrong) failover show up
	leader := tm.ds[tm.leaders(nil)[0]]
	for _, d := range tm.ds {
		h := d.fsm.snapshot().History
		if len(h) != 1 || h[0].Epoch != 1 || h[0].OldPrimary != primary.Addr() || !h[0].Promoted {
			t.Fatalf("%s history: %+v", d.self.Name, h)
		}
	}
	// Only the leader ran it: its counter says 1.
	if n := testutil.ToFloat64(leader.met.failovers.WithLabelValues("c", string(leader.fsm.snapshot().History[0].Result))); n != 1 {
		t.Fatalf("leader's myha_failovers_total = %v, want 1", n)
	}
	t.Logf("failover by %s: %s → %s, %s", leader.self.Name, leader.fsm.snapshot().History[0].OldPrimary, leader.fsm.snapshot().History[0].NewPrimary, leader.fsm.snapshot().History[0].Result)
}

// A leader cut off from the other monitors steps down; its leadership
// context (which an in-flight failover runs under) must end at once, and
// the executor then stops at its next safe point.
func TestLeadershipLossCancelsLeaderContext(t *testing.T) {
	tm := startMonitors(t, 3, nil)
	eventually(t, "one leader", 10*time.Second, func() bool { return len(tm.leaders(nil)) == 1 })
	i := tm.leaders(nil)[0]
	lctx := tm.ds[i].leaderContext()
	if lctx.Err() != nil {
		t.Fatal("the leader's context is already cancelled")
	}
	for j, o := range tm.raftTr {
		if j != i {
			tm.raftTr[i].Disconnect(o.LocalAddr())
			o.Disconnect(tm.raftTr[i].LocalAddr())
		}
	}
	select {
	case <-lctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the deposed leader's context was not cancelled")
	}
	if tm.ds[i].isLeader() {
		t.Fatal("context cancelled while still leader")
	}
	if tm.ds[i].leaderContext().Err() == nil {
		t.Fatal("a follower hands out a live leadership context")
	}
}
