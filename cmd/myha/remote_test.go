package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/myha/myha/certs"
)

// The CLI reaches a monitor's API over HTTPS trusting the config's
// ca_file, with the config's token; it refuses an http:// URL when the
// config says the API serves HTTPS (nothing is sent); a server whose
// certificate another CA signed is refused. The token never appears in
// the CLI's output. The monitor here is an httptest server (a fake that
// answers /api/failovers) with a certificate from myha certs.
func TestCLIUsesHTTPSWithTheCA(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(certs.Init(tlsDir))
	must(certs.Issue(tlsDir, "mon1", []net.IP{net.ParseIP("127.0.0.1")}, nil))
	const tok = "cli-read-tok-9Hq"
	must(os.WriteFile(filepath.Join(dir, "api.token"), []byte(tok+"\n"), 0o600))

	var hits, authed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") == "Bearer "+tok {
			authed.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"failovers": []}`))
	}))
	pair, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "mon1.crt"), filepath.Join(tlsDir, "mon1.key"))
	must(err)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()

	writeCfg := func(name, caFile string) string {
		y := "security:\n  api_token_file: " + filepath.Join(dir, "api.token") + "\n" +
			"  ca_file: " + caFile + "\n  cert_file: " + filepath.Join(tlsDir, "{name}.crt") + "\n  key_file: " + filepath.Join(tlsDir, "{name}.key") + "\n" +
			"  api_cert_file: " + filepath.Join(tlsDir, "{name}.crt") + "\n  api_key_file: " + filepath.Join(tlsDir, "{name}.key") + "\n" +
			"  insecure: true\nclusters:\n  - name: app1\n    user: u\n    password: p\n    replication_user: r\n    replication_password: rp\n    servers:\n      - address: 127.0.0.1:3306\n"
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, []byte(y), 0o600))
		return p
	}
	var all strings.Builder
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
		all.WriteString(out.String() + errb.String())
		return code, out.String() + errb.String()
	}
	good := writeCfg("myha.yaml", filepath.Join(tlsDir, certs.CAFile))

	code, out := cli("history", "--daemon", srv.URL, "--config", good)
	if code != 0 || !strings.Contains(out, "no failover recorded") || authed.Load() != 1 {
		t.Fatalf("https with the CA: exit %d, authed %d:\n%s", code, authed.Load(), out)
	}
	code, out = cli("status", "--daemon", srv.URL, "--config", good)
	if authed.Load() != 2 {
		t.Fatalf("status over https did not reach the monitor with the token: exit %d\n%s", code, out)
	}

	// http:// while the config says HTTPS: refused before sending.
	before := hits.Load()
	code, out = cli("history", "--daemon", strings.Replace(srv.URL, "https://", "http://", 1), "--config", good)
	if code != exitProblem || !strings.Contains(out, "serves HTTPS") || hits.Load() != before {
		t.Fatalf("http:// with api_cert_file: exit %d, hits %d→%d:\n%s", code, before, hits.Load(), out)
	}
	code, out = cli("ack", "--cluster", "app1", "--daemon", strings.Replace(srv.URL, "https://", "http://", 1), "--config", good)
	if code != exitProblem || !strings.Contains(out, "serves HTTPS") || hits.Load() != before {
		t.Fatalf("ack over http:// with api_cert_file: exit %d:\n%s", code, out)
	}

	// A config trusting another CA: the monitor's certificate is refused.
	otherDir := filepath.Join(dir, "other")
	must(certs.Init(otherDir))
	other := writeCfg("other.yaml", filepath.Join(otherDir, certs.CAFile))
	code, out = cli("history", "--daemon", srv.URL, "--config", other)
	if code != exitProblem || !strings.Contains(out, "certificate") {
		t.Fatalf("another CA: exit %d:\n%s", code, out)
	}
	// A CA file that cannot be read is named.
	missing := writeCfg("missing.yaml", filepath.Join(dir, "nope.crt"))
	code, out = cli("history", "--daemon", srv.URL, "--config", missing)
	if code != exitProblem || !strings.Contains(out, "security.ca_file") {
		t.Fatalf("unreadable CA: exit %d:\n%s", code, out)
	}
	if strings.Contains(all.String(), tok) {
		t.Fatal("the token in the CLI's output")
	}
}
