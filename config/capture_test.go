package config

import (
	"strings"
	"testing"
	"time"
)

const captureMonitors = `
monitors:
  - {name: mon1, address: 198.18.0.101}
  - {name: mon2, address: 198.18.0.102}
security: {insecure: true}
`

func TestCaptureDefaultsAndErrors(t *testing.T) {
	c, err := Parse([]byte(captureMonitors+good+"    capture: {enabled: true}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp := c.Clusters[0].Capture
	if cp.Port != DefaultCapturePort || cp.ClusterDir("mon1", "app1") != "/var/lib/myha/monitor-mon1/capture/app1" || cp.Retain != 24*time.Hour || !cp.SemiSyncAck() || cp.ServerIDBase != DefaultCaptureServerIDBase {
		t.Fatalf("defaults not applied: %+v", cp)
	}
	for _, tc := range []struct{ capture, want string }{
		{"{enabled: true, colour: blue}", "colour"},
		{"{enabled: true, port: 70000}", "clusters[0].capture.port"},
		{"{enabled: true, port: 7946}", "gossip, raft or API port"},
		{"{enabled: true, dir: relative/dir}", "clusters[0].capture.dir"},
		{"{enabled: true, retain: 10s}", "clusters[0].capture.retain"},
		{"{enabled: true, retain: 10}", "retain"},
		{"{enabled: true, retain_bytes: 1000}", "clusters[0].capture.retain_bytes"},
		{"{enabled: true, segment_bytes: 10}", "clusters[0].capture.segment_bytes"},
		{"{enabled: true, server_id_base: -5}", "clusters[0].capture.server_id_base"},
	} {
		_, err := Parse([]byte(captureMonitors+good+"    capture: "+tc.capture+"\n"), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("capture %s: error %v, want one naming %q", tc.capture, err, tc.want)
		}
	}
	if _, err := Parse([]byte(good+"    capture: {enabled: true}\n"), Options{}); err == nil || !strings.Contains(err.Error(), "monitors") {
		t.Errorf("capture without monitors: %v", err)
	}
}
