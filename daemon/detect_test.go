package daemon

import (
	"testing"
	"time"
)

func TestDetect(t *testing.T) {
	base := DetectInput{Primary: "db1", Monitors: 3, OwnFailures: 3, OwnDownFor: 2 * time.Second,
		Peers:     []PeerView{{Monitor: "m2", DownFor: time.Second, Age: 100 * time.Millisecond}, {Monitor: "m3", DownFor: time.Second, Age: 100 * time.Millisecond}},
		Replicas:  []ReplicaView{{Address: "db2", Reachable: true}, {Address: "db3", Reachable: true}},
		DownAfter: time.Second, Freshness: 3 * time.Second, ReplicaSilence: 2 * time.Second}
	for _, tc := range []struct {
		name string
		mod  func(*DetectInput)
		want State
	}{
		{"dead: quorum and replicas confirm", func(*DetectInput) {}, StateDead},
		{"healthy from here", func(in *DetectInput) { in.OwnReachable = true }, StateHealthy},
		{"a blip shorter than down_after", func(in *DetectInput) { in.OwnDownFor = 500 * time.Millisecond }, StateSuspect},
		{"one failed probe", func(in *DetectInput) { in.OwnFailures = 1 }, StateSuspect},
		{"two monitors still reach it", func(in *DetectInput) { in.Peers[0].Reachable, in.Peers[1].Reachable = true, true }, StateNoQuorum},
		{"one peer reaches it: still a majority", func(in *DetectInput) { in.Peers[0].Reachable = true }, StateDead},
		{"peer observations stale", func(in *DetectInput) { in.Peers[0].Age, in.Peers[1].Age = time.Minute, time.Minute }, StateNoQuorum},
		{"alone of three", func(in *DetectInput) { in.Peers = nil }, StateNoQuorum},
		{"single monitor deployment", func(in *DetectInput) { in.Monitors, in.Peers = 1, nil }, StateDead},
		{"a replica still replicates", func(in *DetectInput) { in.Replicas[1].IORunning = true }, StateUnreachable},
		{"IO thread says Yes but hears nothing", func(in *DetectInput) {
			in.Replicas[1].IORunning, in.Replicas[1].SilentFor = true, 3*time.Second
		}, StateDead},
		{"replicas unreachable too", func(in *DetectInput) { in.Replicas[0].Reachable, in.Replicas[1].Reachable = false, false }, StateAllDown},
		{"no primary", func(in *DetectInput) { in.Primary = "" }, StateNoPrimary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			in.Peers = append([]PeerView{}, base.Peers...)
			in.Replicas = append([]ReplicaView{}, base.Replicas...)
			tc.mod(&in)
			if v := Detect(in); v.State != tc.want {
				t.Fatalf("got %s (%v), want %s", v.State, v.Reasons, tc.want)
			}
		})
	}
}
