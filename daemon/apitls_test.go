package daemon

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/certs"
)

// The API over HTTPS with a certificate from the deployment's CA (myha
// certs): a client trusting the CA gets answers with its token, the
// monitors' own client (followers forwarding) trusts it too; plain HTTP to
// the TLS port and a client that does not trust the CA get nothing; a bad
// key pair stops the start. No token appears in the daemon's log or in any
// client error.
func TestAPIOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	if err := certs.Init(dir); err != nil {
		t.Fatal(err)
	}
	if err := certs.Issue(dir, "mon1", []net.IP{net.ParseIP("127.0.0.1")}, nil); err != nil {
		t.Fatal(err)
	}
	files := &TLSFiles{CA: filepath.Join(dir, certs.CAFile), Cert: filepath.Join(dir, "mon1.crt"), Key: filepath.Join(dir, "mon1.key")}
	const writeTok, readTok = "write-tok-7fQ", "read-tok-2mR"
	var logs syncBuffer
	tm := startMonitorsWith(t, 1, nil, func(c *Config) {
		c.APIToken, c.APIReadToken, c.APICert, c.TLS = writeTok, readTok, files, files
		c.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	d := tm.ds[0]
	eventually(t, "leadership", 10*time.Second, func() bool { return d.isLeader() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serveAPI(ln, d.apiHandler(context.Background()), files, d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "https://" + ln.Addr().String()

	pemCA, _ := os.ReadFile(files.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	client := func(roots *x509.CertPool) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	}
	var errs []string
	do := func(c *http.Client, method, url, tok string) (int, error) {
		req, _ := http.NewRequest(method, url, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			errs = append(errs, err.Error())
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	trusting := client(pool)
	for _, c := range []struct {
		method, path, tok string
		want              int
	}{
		{"GET", "/api/clusters", readTok, 200},
		{"GET", "/api/clusters", "", 401},
		{"GET", "/api/clusters", "wrong-tok", 401},
		{"POST", "/api/clusters/none/ack", writeTok, 404},
		{"POST", "/api/clusters/none/ack", readTok, 401},
	} {
		if got, err := do(trusting, c.method, base+c.path, c.tok); err != nil || got != c.want {
			t.Errorf("HTTPS %s %s with %q: %d %v, want %d", c.method, c.path, c.tok, got, err, c.want)
		}
	}
	// The monitors' own client (a follower forwarding to the leader).
	if got, err := do(d.apiClient(), "GET", base+"/api/clusters", readTok); err != nil || got != 200 {
		t.Errorf("the monitors' API client: %d %v", got, err)
	}
	// A client that does not trust the deployment's CA (the system roots).
	if _, err := do(client(nil), "GET", base+"/api/clusters", readTok); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v", err)
	}
	// Another CA's trust.
	other := t.TempDir()
	certs.Init(other)
	otherPEM, _ := os.ReadFile(filepath.Join(other, certs.CAFile))
	otherPool := x509.NewCertPool()
	otherPool.AppendCertsFromPEM(otherPEM)
	if _, err := do(client(otherPool), "GET", base+"/api/clusters", readTok); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA: %v", err)
	}
	// Plain HTTP to the TLS port: no answer from the API.
	if got, err := do(&http.Client{Timeout: 5 * time.Second}, "GET", "http://"+ln.Addr().String()+"/api/clusters", readTok); err == nil && got != http.StatusBadRequest {
		t.Errorf("plain HTTP to the HTTPS port: %d", got)
	}
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if strings.Contains(line, "200") {
		t.Errorf("plain HTTP /health answered: %q", line)
	}

	// A key pair that does not load is an error at start, naming the keys.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln2.Close()
	if _, err := serveAPI(ln2, d.apiHandler(context.Background()), &TLSFiles{Cert: files.Cert, Key: filepath.Join(dir, "none.key")}, d.log); err == nil || !strings.Contains(err.Error(), "api_cert_file/api_key_file") {
		t.Errorf("a missing API key: %v", err)
	}

	eventually(t, "the failed handshakes to be logged", 5*time.Second, func() bool { return strings.Contains(logs.String(), "TLS handshake error") })
	out := logs.String() + strings.Join(errs, "\n")
	for _, tok := range []string{writeTok, readTok, "wrong-tok"} {
		if strings.Contains(out, tok) {
			t.Fatalf("token %q in the log or a client error:\n%s", tok, out)
		}
	}
}
