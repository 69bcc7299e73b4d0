package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestInitIssueVerify(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir); err == nil {
		t.Fatal("a second init replaced the CA")
	}
	if err := Issue(dir, "mon1", []net.IP{net.ParseIP("198.18.0.21")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := Issue(dir, "../evil", nil, nil); err == nil {
		t.Fatal("a path was accepted as a name")
	}
	st, _ := os.Stat(filepath.Join(dir, "mon1.key"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "mon1.crt"), filepath.Join(dir, "mon1.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	caPEM, _ := os.ReadFile(filepath.Join(dir, CAFile))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "mon1", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := leaf.VerifyHostname("198.18.0.21"); err != nil {
		t.Fatal(err)
	}
}
