package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/myha/myha/certs"
)

func withTLS(block string) string {
	return strings.Replace(good, "    servers:\n", "    tls:\n"+block+"    servers:\n", 1)
}

func TestTLSDefaultsAndGoodSettings(t *testing.T) {
	c, err := Parse([]byte(good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Clusters[0].TLS.Mode; m != "preferred" {
		t.Fatalf("default tls.mode %q, want preferred", m)
	}
	dir := filepath.Join(t.TempDir(), "tls")
	if err := certs.Init(dir); err != nil {
		t.Fatal(err)
	}
	if err := certs.Issue(dir, "client", nil, nil); err != nil {
		t.Fatal(err)
	}
	ca, crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	for _, block := range []string{
		"      mode: verify-full\n      ca_file: " + ca + "\n",
		"      mode: verify-ca\n      ca_file: " + ca + "\n      cert_file: " + crt + "\n      key_file: " + key + "\n",
		"      mode: required\n", // the system's roots
		"      mode: disabled\n",
	} {
		c, err := Parse([]byte(withTLS(block)), Options{})
		if err != nil {
			t.Fatalf("%s: %v", block, err)
		}
		if !strings.Contains(block, c.Clusters[0].TLS.Mode) {
			t.Fatalf("mode not kept: %+v", c.Clusters[0].TLS)
		}
	}
}

func TestTLSErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	if err := certs.Init(filepath.Join(dir, "tls")); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "tls", "ca.crt")
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	unreadable := filepath.Join(dir, "locked.pem")
	os.WriteFile(unreadable, []byte("x"), 0o644)
	readFile := func(p string) ([]byte, error) {
		if p == unreadable {
			return nil, os.ErrPermission
		}
		return os.ReadFile(p)
	}
	for _, tc := range []struct{ block, want string }{
		{"      mode: strict\n", `clusters[0].tls.mode: "strict": use disabled, preferred, required, verify-ca, verify-full`},
		{"      mode: verify-ca\n", "clusters[0].tls.ca_file: missing"},
		{"      mode: verify-full\n      ca_file: /nonexistent/ca.pem\n", "clusters[0].tls.ca_file: cannot read /nonexistent/ca.pem: no such file"},
		{"      mode: verify-full\n      ca_file: " + unreadable + "\n", "clusters[0].tls.ca_file: cannot read " + unreadable + ": permission denied"},
		{"      mode: verify-full\n      ca_file: " + notPEM + "\n", "clusters[0].tls.ca_file: " + notPEM + " holds no PEM certificate"},
		{"      mode: verify-full\n      ca_file: tls/ca.crt\n", `clusters[0].tls.ca_file: "tls/ca.crt" must be an absolute path`},
		{"      mode: required\n      cert_file: " + ca + "\n", "clusters[0].tls: set cert_file and key_file together"},
		{"      mode: required\n      cert_file: " + ca + "\n      key_file: " + notPEM + "\n", "are not a certificate and its key"},
		{"      mode: disabled\n      ca_file: " + ca + "\n", "clusters[0].tls.mode: disabled, yet ca_file"},
		{"      mode: verify-full\n      ca: " + ca + "\n", "clusters[0].tls.ca: unknown key"},
	} {
		_, err := Parse([]byte(withTLS(tc.block)), Options{ReadFile: readFile})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v\nwant %q", tc.block, err, tc.want)
		}
	}
}
