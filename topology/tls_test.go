package topology

// TLS modes of the SQL dialer against test/fakeserver, a FAKE server
// speaking the MySQL wire protocol (go-mysql's server package) with TLS and
// caching_sha2_password, which the MariaDB servers here do not have. Each
// fake counts the logins it received and the passwords it verified, which
// is how these tests prove what a client revealed. Real MariaDB servers with
// TLS are tested in test/integration (TestTLSCluster*).

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"database/sql"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/certs"
	"github.com/myha/myha/test/fakeserver"
)

// pki is a CA and certificates issued by it, in a test directory.
type pki struct{ dir string }

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := certs.Init(dir); err != nil {
		t.Fatal(err)
	}
	return pki{dir}
}

func (p pki) ca() string { return filepath.Join(p.dir, certs.CAFile) }

// serverTLS issues a certificate named name for ips and returns a server
// configuration presenting it.
func (p pki) serverTLS(t *testing.T, name string, ips ...string) *tls.Config {
	t.Helper()
	var ipl []net.IP
	for _, ip := range ips {
		ipl = append(ipl, net.ParseIP(ip))
	}
	if err := certs.Issue(p.dir, name, ipl, nil); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}
}

func startFake(t *testing.T, opt fakeserver.Options) *fakeserver.Server {
	t.Helper()
	s, err := fakeserver.StartWith("myha", "s3cret", fakeserver.State{Version: "8.4.3"}, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dialTLS(s *fakeserver.Server, spec TLSSpec) error {
	d := SQLDialer{Credentials: Credentials{User: "myha", Password: "s3cret"}, ConnectTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, TLS: spec}
	q, err := d.Dial(context.Background(), s.Addr())
	if err == nil {
		q.Close()
	}
	return err
}

func TestTLSModesAgainstServerCertificates(t *testing.T) {
	good, other := newPKI(t), newPKI(t)
	right := good.serverTLS(t, "db1", "127.0.0.1")
	wrongCA := other.serverTLS(t, "db1", "127.0.0.1")
	wrongHost := good.serverTLS(t, "db9", "198.18.0.99") // the right CA, another host's certificate
	for _, tc := range []struct {
		name   string
		server *tls.Config // nil: the server offers no TLS
		spec   TLSSpec
		want   string // "" = logs in; else a substring of the error
	}{
		{"verify-full, trusted certificate for this IP", right, TLSSpec{Mode: TLSVerifyFull, CAFile: good.ca()}, ""},
		{"verify-ca, trusted certificate", right, TLSSpec{Mode: TLSVerifyCA, CAFile: good.ca()}, ""},
		{"required, trusted certificate", right, TLSSpec{Mode: TLSRequired, CAFile: good.ca()}, ""},
		{"verify-full, certificate from another CA", wrongCA, TLSSpec{Mode: TLSVerifyFull, CAFile: good.ca()}, "not trusted (tls.mode verify-full"},
		{"verify-ca, certificate from another CA", wrongCA, TLSSpec{Mode: TLSVerifyCA, CAFile: good.ca()}, "certificate signed by unknown authority"},
		{"required, certificate from another CA", wrongCA, TLSSpec{Mode: TLSRequired, CAFile: good.ca()}, "not trusted (tls.mode required"},
		{"required, private CA against system roots", right, TLSSpec{Mode: TLSRequired}, "the system's trusted roots"},
		{"verify-full, another host's certificate", wrongHost, TLSSpec{Mode: TLSVerifyFull, CAFile: good.ca()}, "127.0.0.1"},
		{"verify-ca, another host's certificate", wrongHost, TLSSpec{Mode: TLSVerifyCA, CAFile: good.ca()}, ""},
		{"required, another host's certificate", wrongHost, TLSSpec{Mode: TLSRequired, CAFile: good.ca()}, ""},
		{"verify-full, server without TLS", nil, TLSSpec{Mode: TLSVerifyFull, CAFile: good.ca()}, "does not offer TLS"},
		{"required, server without TLS", nil, TLSSpec{Mode: TLSRequired, CAFile: good.ca()}, "does not offer TLS"},
		{"preferred, server without TLS", nil, TLSSpec{Mode: TLSPreferred}, ""},
		{"preferred, certificate from another CA", wrongCA, TLSSpec{Mode: TLSPreferred}, ""},
		{"disabled, server with TLS", right, TLSSpec{Mode: TLSDisabled}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startFake(t, fakeserver.Options{TLS: tc.server})
			err := dialTLS(s, tc.spec)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if s.Successes() != 1 {
					t.Fatalf("%d verified logins, want 1", s.Successes())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), s.Addr()+": connect: ") {
				t.Fatalf("error %v, want one naming %s and %q", err, s.Addr(), tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatal("the error shows the password")
			}
			// Refused before the login packet: the server never even
			// learned the user name, let alone a password proof.
			if s.Logins() != 0 {
				t.Fatalf("the server received %d login packet(s) from a client that did not trust it", s.Logins())
			}
		})
	}
}

// caching_sha2_password full authentication: over verified TLS the password
// goes to the server (it must, to be checked); over plain text the driver
// would fetch an RSA key from whoever answers and encrypt the password with
// it. The guard refuses that, where the bare driver hands it over.
func TestCachingSHA2FullAuthNeverOverAnUnverifiedChannel(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := newPKI(t)
	t.Run("plain text: refused before the password", func(t *testing.T) {
		s := startFake(t, fakeserver.Options{AuthMethod: "caching_sha2_password", RSAKey: key})
		for _, spec := range []TLSSpec{{Mode: TLSDisabled}, {Mode: TLSPreferred}} {
			err := dialTLS(s, spec)
			if !errors.Is(err, ErrPasswordExposed) || !strings.Contains(err.Error(), s.Addr()) {
				t.Fatalf("%s: %v, want the password-exposure refusal naming the server", spec.Mode, err)
			}
		}
		if s.Successes() != 0 {
			t.Fatalf("the fake server decrypted the password %d time(s)", s.Successes())
		}
		// Control: the same login through the bare driver gives the fake
		// server the password (it decrypts it with its own key and logs
		// the client in): what a man in the middle would get.
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.Timeout = "myha", "s3cret", "tcp", s.Addr(), 2*time.Second
		c, _ := mysql.NewConnector(cfg)
		db := sql.OpenDB(c)
		defer db.Close()
		if err := db.Ping(); err != nil || s.Successes() != 1 {
			t.Fatalf("control: bare driver %v, %d successes: the test no longer shows the leak it guards against", err, s.Successes())
		}
	})
	t.Run("verified TLS: logs in", func(t *testing.T) {
		s := startFake(t, fakeserver.Options{AuthMethod: "caching_sha2_password", RSAKey: key, TLS: p.serverTLS(t, "db1", "127.0.0.1")})
		if err := dialTLS(s, TLSSpec{Mode: TLSVerifyFull, CAFile: p.ca()}); err != nil || s.Successes() != 1 {
			t.Fatalf("verify-full with caching_sha2_password: %v (%d logins)", err, s.Successes())
		}
	})
}

func TestTLSSpecFileErrors(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		spec TLSSpec
		want string
	}{
		{TLSSpec{Mode: TLSVerifyFull, CAFile: "/nonexistent/ca.pem"}, "tls.ca_file: open /nonexistent/ca.pem"},
		{TLSSpec{Mode: TLSVerifyFull, CAFile: filepath.Join(p.dir, certs.CAKeyFile)}, "holds no PEM certificate"},
		{TLSSpec{Mode: TLSVerifyCA}, "verify-ca needs tls.ca_file"},
		{TLSSpec{Mode: TLSRequired, CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}, "tls.cert_file/key_file"},
		{TLSSpec{Mode: "maybe"}, `unknown tls.mode "maybe"`},
	} {
		if _, err := tc.spec.ClientConfig("db1:3306"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.spec, err, tc.want)
		}
	}
	if c, err := (TLSSpec{}).ClientConfig("db1:3306"); c != nil || err != nil {
		t.Fatalf("an unset mode is plain text: %v %v", c, err)
	}
}

// Client certificates are presented to servers that ask for them.
func TestTLSClientCertificate(t *testing.T) {
	p := newPKI(t)
	srv := p.serverTLS(t, "db1", "127.0.0.1")
	pool, err := LoadCAFile(p.ca())
	if err != nil {
		t.Fatal(err)
	}
	srv.ClientCAs, srv.ClientAuth = pool, tls.RequireAndVerifyClientCert
	if err := certs.Issue(p.dir, "client", nil, nil); err != nil {
		t.Fatal(err)
	}
	s := startFake(t, fakeserver.Options{TLS: srv})
	if err := dialTLS(s, TLSSpec{Mode: TLSVerifyFull, CAFile: p.ca()}); err == nil {
		t.Fatal("a server requiring a client certificate let a client without one in")
	}
	spec := TLSSpec{Mode: TLSVerifyFull, CAFile: p.ca(), CertFile: filepath.Join(p.dir, "client.crt"), KeyFile: filepath.Join(p.dir, "client.key")}
	if err := dialTLS(s, spec); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
}
