package daemon

import (
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

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
