package lab

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/myha/myha/certs"
)

// TLS labs (Options.TLS): a CA of the lab's own in Dir/tls, and a server
// certificate per server named after it (db1, ...) for its IP address, so
// verify-full holds for the addresses myha's config lists. mariadbd gets
// ssl_ca, ssl_cert and ssl_key; replicas connect with MASTER_SSL=1,
// MASTER_SSL_CA and MASTER_SSL_VERIFY_SERVER_CERT=1.

// TLSDir is where a TLS lab keeps its CA and certificates.
func (l *Lab) TLSDir() string { return filepath.Join(l.Dir, "tls") }

// CAFile is the lab CA's certificate (PEM), for tls.ca_file.
func (l *Lab) CAFile() string { return filepath.Join(l.TLSDir(), certs.CAFile) }

func (l *Lab) makeCerts() error {
	if err := certs.Init(l.TLSDir()); err != nil {
		return fmt.Errorf("lab: TLS CA: %w", err)
	}
	for _, s := range l.Servers {
		if err := certs.Issue(l.TLSDir(), s.Name, []net.IP{net.ParseIP(s.IP)}, nil); err != nil {
			return fmt.Errorf("lab: certificate for %s: %w", s.Name, err)
		}
	}
	return nil
}

// tlsArgs are the mariadbd options of a TLS lab.
func (s *Server) tlsArgs() []string {
	l := s.lab
	if !l.opts.TLS {
		return nil
	}
	a := []string{"--ssl-ca=" + l.CAFile(), "--ssl-cert=" + filepath.Join(l.TLSDir(), s.Name+".crt"),
		"--ssl-key=" + filepath.Join(l.TLSDir(), s.Name+".key")}
	if l.opts.RequireSecureTransport {
		a = append(a, "--require-secure-transport=ON")
	}
	return a
}

// replicationTLS is what ReplicateFrom adds to CHANGE MASTER in a TLS lab.
func (l *Lab) replicationTLS() string {
	if !l.opts.TLS {
		return ""
	}
	return fmt.Sprintf(", MASTER_SSL=1, MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=1", quote(l.CAFile()))
}

// ClientTLS is a client configuration that verifies s against the lab CA
// (nil in a lab without TLS), for the lab's own TCP clients.
func (l *Lab) ClientTLS(s *Server) *tls.Config {
	if !l.opts.TLS {
		return nil
	}
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(l.CAFile()); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &tls.Config{RootCAs: pool, ServerName: s.IP, MinVersion: tls.VersionTLS12}
}
