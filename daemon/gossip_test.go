package daemon

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func testAllow() *GossipAllow {
	return &GossipAllow{Monitors: map[string]string{"mon1": "198.18.0.21", "mon2": "198.18.0.22", "mon3": "198.18.0.23"},
		Servers: map[string]map[string]bool{"lab": {"198.18.0.11:3306": true, "198.18.0.12:3306": true}}}
}

func newTestGossip(now func() time.Time) *gossip {
	g := &gossip{self: "mon1", peers: map[string]peerState{}, now: now, leases: map[string]leaseState{}, agents: map[string]agentState{},
		monitors: map[string]bool{"mon1": true, "mon2": true, "mon3": true}}
	g.allow.Store(testAllow())
	return g
}

func send(g *gossip, m gossipMsg) {
	b, _ := json.Marshal(m)
	g.NotifyMsg(b)
}

// Only configured monitors' observations count, only about configured
// servers, and a timestamp from the future never yields a vote that does
// not age.
func TestGossipCountsOnlyConfiguredMonitorsWithSaneTimes(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	g := newTestGossip(func() time.Time { return now })
	down := func(at time.Time) []Observation {
		return []Observation{{Cluster: "lab", Server: "198.18.0.11:3306", Reachable: false, DownForMS: 1000, ObservedAt: at}}
	}
	send(g, gossipMsg{Monitor: "mon9", SentAt: now, Obs: down(now)})                               // not a monitor
	send(g, gossipMsg{Monitor: "agent-198.18.0.12:3306", SentAt: now, Obs: down(now)})             // an agent voting
	send(g, gossipMsg{Monitor: "mon2", SentAt: now.Add(time.Hour), Obs: down(now.Add(time.Hour))}) // from the future
	send(g, gossipMsg{Monitor: "mon3", SentAt: now, Obs: down(now.Add(time.Hour))})                // observed after sent
	send(g, gossipMsg{Monitor: "mon3", SentAt: now, Obs: []Observation{{Cluster: "lab", Server: "10.0.0.1:3306", ObservedAt: now}}})
	if v := g.views()["lab|198.18.0.11:3306"]; len(v) != 0 {
		t.Fatalf("forged votes counted: %+v", v)
	}
	if v := g.views()["lab|10.0.0.1:3306"]; len(v) != 0 {
		t.Fatalf("observation of an unconfigured server kept: %+v", v)
	}
	// A real one is counted, and ages.
	send(g, gossipMsg{Monitor: "mon2", SentAt: now, Obs: down(now.Add(-100 * time.Millisecond))})
	if v := g.views()["lab|198.18.0.11:3306"]; len(v) != 1 || v[0].Monitor != "mon2" || v[0].Age < 0 {
		t.Fatalf("real vote: %+v", v)
	}
	// A forged future message under mon2's name would have shut out
	// mon2's next real messages as "out of order": it is refused.
	send(g, gossipMsg{Monitor: "mon2", SentAt: now.Add(24 * time.Hour)})
	now = now.Add(time.Second)
	send(g, gossipMsg{Monitor: "mon2", SentAt: now, Obs: []Observation{{Cluster: "lab", Server: "198.18.0.11:3306", Reachable: true, ObservedAt: now}}})
	if v := g.views()["lab|198.18.0.11:3306"]; len(v) != 1 || !v[0].Reachable {
		t.Fatalf("mon2's later message was not taken: %+v", v)
	}
}

// Leases come from monitors only, about configured clusters; agent
// reports only about configured servers, under that server's agent name.
func TestGossipLeasesAndAgentReportsFromTheRightSenders(t *testing.T) {
	now := time.Now()
	g := newTestGossip(func() time.Time { return now })
	send(g, gossipMsg{Monitor: "agent-198.18.0.12:3306", SentAt: now, Kind: "lease", Lease: &LeaseMsg{Cluster: "lab", Primary: "198.18.0.12:3306", Epoch: 99, LeaseMS: 3000}})
	send(g, gossipMsg{Monitor: "mon2", SentAt: now, Kind: "lease", Lease: &LeaseMsg{Cluster: "other", Primary: "x", LeaseMS: 3000}})
	if _, _, ok := g.lease("lab"); ok {
		t.Fatal("a lease from an agent was kept")
	}
	if _, _, ok := g.lease("other"); ok {
		t.Fatal("a lease for an unconfigured cluster was kept")
	}
	send(g, gossipMsg{Monitor: "mon2", SentAt: now, Kind: "lease", Lease: &LeaseMsg{Cluster: "lab", Primary: "198.18.0.11:3306", Epoch: 1, LeaseMS: 3000, Leader: "mon2", Term: 1}})
	if l, _, ok := g.lease("lab"); !ok || l.Primary != "198.18.0.11:3306" {
		t.Fatal("a monitor's lease was refused")
	}
	send(g, gossipMsg{Monitor: "agent-198.18.0.12:3306", SentAt: now, Kind: "agent", Agent: &AgentMsg{Cluster: "lab", Server: "198.18.0.11:3306", Holding: false}})
	if _, _, ok := g.agent("198.18.0.11:3306"); ok {
		t.Fatal("an agent reported for another server")
	}
	send(g, gossipMsg{Monitor: "agent-198.18.0.11:3306", SentAt: now, Kind: "agent", Agent: &AgentMsg{Cluster: "lab", Server: "198.18.0.11:3306", Holding: true}})
	if a, _, ok := g.agent("198.18.0.11:3306"); !ok || !a.Holding {
		t.Fatal("the server's own agent was refused")
	}
}

// A flood of messages under forged names, clusters and servers must not
// grow the gossip maps: they stay bounded by the configuration (or by a
// fixed cap without one).
func TestGossipFloodOfForgedNamesStaysBounded(t *testing.T) {
	now := time.Now()
	for _, allow := range []*GossipAllow{testAllow(), nil} {
		g := newTestGossip(func() time.Time { return now })
		g.allow.Store(allow)
		for i := range 20000 {
			name := fmt.Sprintf("forged-%d", i)
			send(g, gossipMsg{Monitor: name, SentAt: now, Obs: []Observation{{Cluster: name, Server: name, ObservedAt: now}}})
			send(g, gossipMsg{Monitor: name, SentAt: now, Kind: "lease", Lease: &LeaseMsg{Cluster: name, LeaseMS: 1}})
			send(g, gossipMsg{Monitor: name, SentAt: now, Kind: "agent", Agent: &AgentMsg{Cluster: name, Server: name}})
		}
		g.mu.Lock()
		n := len(g.peers) + g.obsN + len(g.leases) + len(g.agents)
		g.mu.Unlock()
		limit := 0
		if allow == nil {
			limit = 4 * maxGossipEntries
		}
		if n > limit {
			t.Fatalf("allowlist %v: %d entries after the flood, want ≤ %d", allow != nil, n, limit)
		}
	}
}

// Members named after a monitor must be at its address; unknown names are
// not members at all.
func TestGossipMembersBoundToConfiguredAddresses(t *testing.T) {
	g := newTestGossip(time.Now)
	for _, c := range []struct {
		name, ip string
		ok       bool
	}{
		{"mon2", "198.18.0.22", true},
		{"mon2", "198.18.0.99", false},
		{"agent-198.18.0.11:3306", "198.18.0.11", true},
		{"agent-198.18.0.11:3306", "198.18.0.12", false},
		{"rogue", "198.18.0.22", false},
	} {
		err := g.NotifyAlive(&memberlist.Node{Name: c.name, Addr: net.ParseIP(c.ip)})
		if (err == nil) != c.ok {
			t.Errorf("%s at %s: err %v, want ok=%v", c.name, c.ip, err, c.ok)
		}
	}
}

// fakeNodeTransport feeds packets and connections to a filterTransport.
type fakeNodeTransport struct {
	memberlist.NodeAwareTransport
	packets chan *memberlist.Packet
	streams chan net.Conn
}

func (f *fakeNodeTransport) PacketCh() <-chan *memberlist.Packet { return f.packets }
func (f *fakeNodeTransport) StreamCh() <-chan net.Conn           { return f.streams }
func (f *fakeNodeTransport) Shutdown() error                     { return nil }

func TestGossipTransportDropsUnconfiguredHosts(t *testing.T) {
	inner := &fakeNodeTransport{packets: make(chan *memberlist.Packet), streams: make(chan net.Conn)}
	rejected := make(chan string, 10)
	f := newFilterTransport(inner, testAllow().hosts(), func(why string) { rejected <- why })
	defer f.Shutdown()
	inner.packets <- &memberlist.Packet{Buf: []byte("x"), From: &net.UDPAddr{IP: net.ParseIP("203.0.113.5"), Port: 7946}}
	select {
	case why := <-rejected:
		t.Log(why)
	case <-time.After(5 * time.Second):
		t.Fatal("a packet from an unconfigured host was not refused")
	}
	inner.packets <- &memberlist.Packet{Buf: []byte("y"), From: &net.UDPAddr{IP: net.ParseIP("198.18.0.22"), Port: 7946}}
	select {
	case p := <-f.PacketCh():
		if string(p.Buf) != "y" {
			t.Fatalf("got %q", p.Buf)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a monitor's packet was not passed on")
	}
}

// A peer that stopped reading (memberlist's mock transport blocks a send to
// a shut-down member forever, as a full socket buffer would) must never
// block a publish, and leaving must stay bounded: TestDeadPrimaryOne…
// once hung in clusterMon.stop with the probe loop stuck in a publish.
func TestPublishNeverBlocksOnAStuckPeer(t *testing.T) {
	mock := &memberlist.MockNetwork{}
	ta, tb := mock.NewTransport("a"), mock.NewTransport("b")
	a, err := startGossip(GossipConfig{Name: "a", BindAddr: "127.0.0.1", Port: 1, Transport: ta, Label: "t"}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startGossip(GossipConfig{Name: "b", BindAddr: "127.0.0.1", Port: 2, Transport: tb, Label: "t"}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	// The mock network numbers its transports 127.0.0.1:1, :2, ...
	if _, err := a.join([]string{"127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both members", 5*time.Second, func() bool { return a.members() == 2 })
	b.leave() // b stops reading: sends to it now block in the mock transport

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			a.publish([]Observation{{Cluster: "c", Server: "s", Reachable: true, ObservedAt: time.Now()}})
			a.publishLease(LeaseMsg{Cluster: "c", Primary: "s"})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a stuck peer")
	}
	if a.droppedMessages() == 0 {
		t.Fatal("expected the bounded queue to drop the oldest messages while the sender is stuck")
	}
	left := make(chan struct{})
	go func() { a.leave(); close(left) }()
	select {
	case <-left:
	case <-time.After(10 * time.Second):
		t.Fatal("leave hung on a stuck peer")
	}
}

// With many clusters each monitor's messages are about a few clusters at a
// time: a peer's later message about another cluster must not hide what
// it said about this one (one entry per peer lost every other cluster's
// votes, so at scale no dead primary reached a monitor quorum).
func TestGossipPeerMessagesAboutOtherClustersKeepThisOne(t *testing.T) {
	now := time.Now()
	g := newTestGossip(func() time.Time { return now })
	allow := testAllow()
	allow.Servers["lab2"] = map[string]bool{"198.18.0.31:3306": true}
	g.allow.Store(allow)
	send(g, gossipMsg{Monitor: "mon2", SentAt: now, Obs: []Observation{{Cluster: "lab", Server: "198.18.0.11:3306", Reachable: false, DownForMS: 900, ObservedAt: now}}})
	now = now.Add(10 * time.Millisecond)
	send(g, gossipMsg{Monitor: "mon2", SentAt: now, Obs: []Observation{{Cluster: "lab2", Server: "198.18.0.31:3306", Reachable: true, ObservedAt: now}}})
	v := g.viewsOf("lab", "198.18.0.11:3306")
	if len(v) != 1 || v[0].Reachable || v[0].DownForMS != 900 {
		t.Fatalf("mon2's vote on lab after its message about lab2: %+v", v)
	}
	if v := g.viewsOf("lab2", "198.18.0.31:3306"); len(v) != 1 || !v[0].Reachable {
		t.Fatalf("mon2's view of lab2: %+v", v)
	}
	// An older batch arriving late does not roll a cluster back.
	send(g, gossipMsg{Monitor: "mon2", SentAt: now.Add(-time.Second), Obs: []Observation{{Cluster: "lab", Server: "198.18.0.11:3306", Reachable: true, ObservedAt: now.Add(-time.Second)}}})
	if v := g.viewsOf("lab", "198.18.0.11:3306"); len(v) != 1 || v[0].Reachable {
		t.Fatalf("a late, older batch replaced the newer vote: %+v", v)
	}
}

// Observations of many clusters are packed into packets under maxPacket,
// a cluster's never split, and every cluster arrives.
func TestGossipPacksClustersIntoPackets(t *testing.T) {
	now := time.Now()
	a := newTestGossip(func() time.Time { return now })
	a.self, a.pending, a.urgentWake, a.wake, a.latest = "mon2", map[string][]Observation{}, make(chan struct{}, 1), make(chan struct{}, 1), map[string][]Observation{}
	b := newTestGossip(func() time.Time { return now })
	allow := &GossipAllow{Monitors: map[string]string{"mon2": "198.18.0.22"}, Servers: map[string]map[string]bool{}}
	for i := range 100 {
		c := fmt.Sprintf("cluster-%03d", i)
		allow.Servers[c] = map[string]bool{}
		var obs []Observation
		for j := range 3 {
			s := fmt.Sprintf("198.18.%d.%d:3306", i, j)
			allow.Servers[c][s] = true
			obs = append(obs, Observation{Cluster: c, Server: s, Reachable: true, ObservedAt: now})
		}
		a.publish(obs)
		a.publish(obs) // a newer one replaces the unsent one
	}
	b.allow.Store(allow)
	packets := 0
	for p := a.next(); p != nil; p = a.next() {
		packets++
		if len(p) >= maxPacket {
			t.Fatalf("packet of %d bytes", len(p))
		}
		var m gossipMsg
		if err := json.Unmarshal(p, &m); err != nil || m.Monitor != "mon2" {
			t.Fatalf("packet %s: %v", p, err)
		}
		per := map[string]int{}
		for _, o := range m.Obs {
			per[o.Cluster]++
		}
		for c, n := range per {
			if n != 3 {
				t.Fatalf("cluster %s split across packets (%d here)", c, n)
			}
		}
		b.NotifyMsg(p)
	}
	for i := range 100 {
		c := fmt.Sprintf("cluster-%03d", i)
		if v := b.viewsOf(c, fmt.Sprintf("198.18.%d.1:3306", i)); len(v) != 1 {
			t.Fatalf("%s did not arrive: %+v", c, v)
		}
	}
	t.Logf("100 clusters × 3 servers in %d packets", packets)
}

// A cluster a reload removed leaves nothing behind: not our own latest
// observations (push/pull would keep offering them to peers, who refuse
// them), not the peers' votes, unsent observations, leases or agent
// reports; the remaining cluster keeps all of its.
func TestGossipForgetsClustersARemovalDropped(t *testing.T) {
	now := time.Now()
	g := newTestGossip(func() time.Time { return now })
	g.pending, g.urgentWake, g.wake, g.latest = map[string][]Observation{}, make(chan struct{}, 1), make(chan struct{}, 1), map[string][]Observation{}
	allow := testAllow()
	allow.Servers["gone"] = map[string]bool{"198.18.0.41:3306": true}
	g.setAllow(allow)
	for _, c := range []struct{ cluster, server string }{{"lab", "198.18.0.11:3306"}, {"gone", "198.18.0.41:3306"}} {
		g.publish([]Observation{{Cluster: c.cluster, Server: c.server, Reachable: true, ObservedAt: now}})
		send(g, gossipMsg{Monitor: "mon2", SentAt: now, Obs: []Observation{{Cluster: c.cluster, Server: c.server, Reachable: true, ObservedAt: now}}})
		send(g, gossipMsg{Monitor: "mon2", SentAt: now, Kind: "lease", Lease: &LeaseMsg{Cluster: c.cluster, Primary: c.server, Epoch: 1, LeaseMS: 3000, Leader: "mon2", Term: 1}})
		send(g, gossipMsg{Monitor: "agent-" + c.server, SentAt: now, Kind: "agent", Agent: &AgentMsg{Cluster: c.cluster, Server: c.server, Holding: true}})
		now = now.Add(time.Millisecond)
	}
	if _, _, ok := g.lease("gone"); !ok || len(g.viewsOf("gone", "198.18.0.41:3306")) != 1 {
		t.Fatal("the fixture did not keep the second cluster")
	}
	g.setAllow(testAllow()) // the reload removed "gone"
	if _, _, ok := g.lease("gone"); ok {
		t.Error("the removed cluster's lease is kept")
	}
	if _, _, ok := g.agent("198.18.0.41:3306"); ok {
		t.Error("the removed cluster's agent report is kept")
	}
	if v := g.viewsOf("gone", "198.18.0.41:3306"); len(v) != 0 {
		t.Errorf("peers' votes on the removed cluster are kept: %+v", v)
	}
	if st := string(g.LocalState(false)); strings.Contains(st, "gone") {
		t.Errorf("push/pull still offers the removed cluster: %s", st)
	}
	for p := g.next(); p != nil; p = g.next() {
		if strings.Contains(string(p), "gone") {
			t.Errorf("an unsent observation of the removed cluster is still sent: %s", p)
		}
	}
	if _, _, ok := g.lease("lab"); !ok || len(g.viewsOf("lab", "198.18.0.11:3306")) != 1 || !strings.Contains(string(g.LocalState(false)), "lab") {
		t.Error("the remaining cluster lost what gossip kept about it")
	}
	if _, _, ok := g.agent("198.18.0.11:3306"); !ok {
		t.Error("the remaining cluster's agent report was dropped")
	}
	if g.obsN != 1 {
		t.Errorf("obsN %d after the removal, want 1", g.obsN)
	}
}
