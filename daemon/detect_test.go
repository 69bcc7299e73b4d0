package daemon

import (
	"strings"
	"testing"
	"time"
)

func TestDetect(t *testing.T) {
	base := DetectInput{Primary: "db1", Monitors: 3, OwnFailures: 3, OwnDownFor: 2 * time.Second,
		Peers: []PeerView{{Monitor: "m2", DownFor: time.Second, Age: 100 * time.Millisecond}, {Monitor: "m3", DownFor: time.Second, Age: 100 * time.Millisecond}},
		Replicas: []ReplicaView{{Address: "db2", Reachable: true, HeartbeatPeriod: time.Second},
			{Address: "db3", Reachable: true, HeartbeatPeriod: time.Second}},
		DownAfter: time.Second, Freshness: 3 * time.Second, MinSilence: 1500 * time.Millisecond}
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
		{"1 s heartbeat, silent 1.6 s: within 1.5 periods + margin", func(in *DetectInput) {
			in.Replicas[1].IORunning, in.Replicas[1].SilentFor = true, 1600*time.Millisecond
		}, StateUnreachable},
		{"1 s heartbeat, silent 1.8 s: lost it", func(in *DetectInput) {
			in.Replicas[1].IORunning, in.Replicas[1].SilentFor = true, 1800*time.Millisecond
		}, StateDead},
		// An idle healthy primary with default heartbeats (slave_net_timeout/2
		// = 30 s) sends nothing for 30 s: silence of a few seconds is normal.
		{"default 30 s heartbeat, silent 3 s: still replicating", func(in *DetectInput) {
			in.Replicas[1].IORunning, in.Replicas[1].SilentFor, in.Replicas[1].HeartbeatPeriod = true, 3*time.Second, 30*time.Second
		}, StateUnreachable},
		{"default 30 s heartbeat, silent 46 s: lost it", func(in *DetectInput) {
			in.Replicas[1].IORunning, in.Replicas[1].SilentFor, in.Replicas[1].HeartbeatPeriod = true, 46*time.Second, 30*time.Second
		}, StateDead},
		{"unknown heartbeat period: silence proves nothing", func(in *DetectInput) {
			in.Replicas[1].IORunning, in.Replicas[1].SilentFor, in.Replicas[1].HeartbeatPeriod = true, time.Hour, 0
		}, StateUnreachable},
		{"unknown heartbeat period, IO thread not connected: lost it", func(in *DetectInput) { in.Replicas[1].HeartbeatPeriod = 0 }, StateDead},
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

func TestSilenceLimit(t *testing.T) {
	for _, tc := range []struct {
		hb, min, want time.Duration
		ok            bool
	}{
		{time.Second, 1500 * time.Millisecond, 1750 * time.Millisecond, true},
		{30 * time.Second, 1500 * time.Millisecond, 45*time.Second + silenceMargin, true},
		{100 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond, true},
		{0, time.Second, 0, false},
	} {
		if got, ok := SilenceLimit(tc.hb, tc.min); got != tc.want || ok != tc.ok {
			t.Errorf("SilenceLimit(%s, %s) = %s %v, want %s %v", tc.hb, tc.min, got, ok, tc.want, tc.ok)
		}
	}
}

// A replica whose heartbeat period is too long for down_after is named in
// the verdict's warnings whatever the state, so status and check say so.
func TestDetectWarnsLongHeartbeat(t *testing.T) {
	in := DetectInput{Primary: "db1", Monitors: 1, OwnReachable: true, DownAfter: time.Second, MinSilence: 1500 * time.Millisecond,
		Replicas: []ReplicaView{{Address: "db2", Reachable: true, IORunning: true, HeartbeatPeriod: 30 * time.Second},
			{Address: "db3", Reachable: true, IORunning: true, HeartbeatPeriod: time.Second}}}
	v := Detect(in)
	if v.State != StateHealthy || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "db2") || !strings.Contains(v.Warnings[0], "MASTER_HEARTBEAT_PERIOD=30s") {
		t.Fatalf("verdict %+v", v)
	}
	in.Replicas[0].HeartbeatPeriod = 0
	if v := Detect(in); len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "no heartbeat period") {
		t.Fatalf("unknown period: %+v", v.Warnings)
	}
}
