package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/certs"
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

// The capture server's certificate is checked, per monitor, against the
// cluster's TLS settings: a certificate a replica would refuse at a
// failover is a config error naming the key and the monitor.
func TestCaptureTLSCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, other := filepath.Join(dir, "ca"), filepath.Join(dir, "other")
	for _, d := range []string{ca, other} {
		if err := certs.Init(d); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(d, name, ip string) {
		if err := certs.Issue(d, name, []net.IP{net.ParseIP(ip)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	issue(ca, "mon1", "198.18.0.101")
	issue(ca, "mon2", "198.18.0.102")
	issue(other, "mon1", "198.18.0.101")
	issue(other, "mon2", "198.18.0.102")
	issue(ca, "wrongip-mon1", "198.18.0.9")
	issue(ca, "wrongip-mon2", "198.18.0.9")
	caFile := filepath.Join(ca, "ca.crt")
	parse := func(mode, capture string) error {
		tlsBlock := "      mode: " + mode + "\n"
		if mode != "disabled" {
			tlsBlock += "      ca_file: " + caFile + "\n"
		}
		_, err := Parse([]byte(captureMonitors+withTLS(tlsBlock)+"    capture: {enabled: true"+capture+"}\n"), Options{})
		return err
	}
	good := fmt.Sprintf(", cert_file: '%s/{name}.crt', key_file: '%s/{name}.key'", ca, ca)
	for _, mode := range []string{"required", "verify-ca", "verify-full", "preferred"} {
		if err := parse(mode, good); err != nil {
			t.Errorf("%s with the CA's certificates naming each monitor: %v", mode, err)
		}
	}
	if err := parse("preferred", ""); err != nil {
		t.Errorf("preferred without a capture certificate (TLS not offered): %v", err)
	}
	for _, tc := range []struct{ mode, capture, want string }{
		{"verify-full", "", "clusters[0].capture.cert_file: missing: with tls.mode verify-full"},
		{"required", fmt.Sprintf(", cert_file: '%s/{name}.crt'", ca), "clusters[0].capture: set cert_file and key_file together"},
		{"verify-ca", fmt.Sprintf(", cert_file: '%s/{name}.crt', key_file: '%s/{name}.key'", other, other), "clusters[0].capture.cert_file: monitor mon1: " + other + "/mon1.crt does not verify"},
		{"verify-full", fmt.Sprintf(", cert_file: '%s/wrongip-{name}.crt', key_file: '%s/wrongip-{name}.key'", ca, ca), "name the monitor's address 198.18.0.101"},
		{"verify-full", fmt.Sprintf(", cert_file: '%s/{name}.crt', key_file: '%s/nope-{name}.key'", ca, ca), "clusters[0].capture.key_file: monitor mon1: cannot read"},
		{"disabled", good, "clusters[0].capture.cert_file: tls.mode is disabled"},
	} {
		if err := parse(tc.mode, tc.capture); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: got %v\nwant %q", tc.mode, tc.capture, err, tc.want)
		}
	}
	// verify-ca does not check names: the CA's certificate for another
	// address is accepted there.
	if err := parse("verify-ca", fmt.Sprintf(", cert_file: '%s/wrongip-{name}.crt', key_file: '%s/wrongip-{name}.key'", ca, ca)); err != nil {
		t.Errorf("verify-ca with a CA certificate for another address: %v", err)
	}
}
