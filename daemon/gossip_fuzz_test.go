package daemon

import (
	"testing"
	"time"
)

// FuzzGossipStore feeds arbitrary bytes to the gossip receiver, as a peer on
// the network could: it must never panic, and whatever it keeps must be
// readable back.
func FuzzGossipStore(f *testing.F) {
	f.Add([]byte(`{"m":"mon2","at":"2026-11-22T03:00:00Z","o":[{"c":"lab","s":"db1:3306","r":false,"d":1200,"t":"2026-11-22T02:59:59Z"}]}`))
	f.Add([]byte(`{"m":"mon1","k":"lease","l":{"c":"lab","p":"db2:3306","e":3,"d":3000,"w":1500}}`))
	f.Add([]byte(`{"m":"agent","k":"agent","a":{"c":"lab","s":"db1:3306","h":true,"e":2}}`))
	f.Add([]byte(`{"m":"x","k":"lease"}`))
	f.Add([]byte(`{"m":"mon1","k":"lease","l":{"c":"lab","p":"db2:3306","e":3,"d":3000,"w":0,"ld":"mon1","tm":2,"mt":{"db3:3306":"disk swap"}}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &gossip{self: "mon1", peers: map[string]peerState{}, now: time.Now, leases: map[string]leaseState{}, agents: map[string]agentState{}}
		g.NotifyMsg(b)
		g.MergeRemoteState(b, false)
		_ = g.views()
		g.lease("lab")
		g.agent("db1:3306")
	})
}
