package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// TLSFiles are the PEM files of mutual TLS: the deployment's CA, and this
// node's certificate and key (made by `myha certs`).
type TLSFiles struct {
	CA, Cert, Key string
}

// handshakeTimeout bounds a TLS handshake on the raft port: a peer that
// connects and says nothing holds nothing for long.
const handshakeTimeout = 5 * time.Second

// loadTLS reads the CA pool and this node's key pair.
func loadTLS(f TLSFiles) (*x509.CertPool, tls.Certificate, error) {
	pemCA, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("security.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCA) {
		return nil, tls.Certificate{}, fmt.Errorf("security.ca_file %s: no PEM certificate", f.CA)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("security.cert_file/key_file: %w", err)
	}
	return pool, pair, nil
}

// tlsStream is a raft.StreamLayer over mutual TLS: both ends show a
// certificate signed by the deployment's CA, and each end checks that the
// other's certificate names the monitor configured at its address. A node
// without such a certificate cannot append entries, vote or stand for
// leader: its connection ends in the handshake.
type tlsStream struct {
	ln       net.Listener
	pool     *x509.CertPool
	cert     tls.Certificate
	monitors []MonitorAddr
	log      *slog.Logger
}

func newTLSStream(bind string, files TLSFiles, monitors []MonitorAddr, log *slog.Logger) (*tlsStream, error) {
	pool, cert, err := loadTLS(files)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("raft on %s: %w", bind, err)
	}
	return &tlsStream{ln: ln, pool: pool, cert: cert, monitors: monitors, log: log}, nil
}

// peerIsMonitor checks that the verified leaf certificate names a
// configured monitor living at remote.
func (s *tlsStream) peerIsMonitor(cs tls.ConnectionState, remote net.Addr) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	ip := addrIP(remote)
	for _, m := range s.monitors {
		if leaf.VerifyHostname(m.Name) != nil {
			continue
		}
		for _, a := range resolveHost(m.Address) {
			if a.Unmap() == ip {
				return nil
			}
		}
	}
	return fmt.Errorf("certificate %q does not name the monitor configured at %s", leaf.Subject.CommonName, ip)
}

func addrIP(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

// Accept implements net.Listener. The handshake runs on the connection's
// first read or write, bounded by handshakeTimeout, so one slow client does
// not hold up the accept loop.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{s.cert}, ClientCAs: s.pool,
		ClientAuth: tls.RequireAndVerifyClientCert}
	remote := c.RemoteAddr()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { return s.peerIsMonitor(cs, remote) }
	return &serverConn{Conn: tls.Server(c, cfg), log: s.log}, nil
}

// Close implements net.Listener.
func (s *tlsStream) Close() error { return s.ln.Close() }

// Addr implements net.Listener.
func (s *tlsStream) Addr() net.Addr { return s.ln.Addr() }

// Dial implements raft.StreamLayer: only configured monitors are dialled,
// and the server must present the certificate of the one we meant.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	name := ""
	for _, m := range s.monitors {
		if hostPort(m.Address, m.RaftPort) == string(address) {
			name = m.Name
		}
	}
	if name == "" {
		return nil, fmt.Errorf("raft: %s is not a configured monitor", address)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{s.cert}, RootCAs: s.pool, ServerName: name}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	return d.DialContext(ctx, "tcp", string(address))
}

// serverConn completes the TLS handshake, bounded, before the first byte
// reaches raft, and logs refused peers.
type serverConn struct {
	*tls.Conn
	log  *slog.Logger
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		c.Conn.SetDeadline(time.Now().Add(handshakeTimeout))
		c.err = c.Conn.Handshake()
		c.Conn.SetDeadline(time.Time{})
		if c.err != nil && c.log != nil {
			c.log.Warn("raft connection refused: TLS handshake failed", "remote", c.Conn.RemoteAddr().String(), "err", c.err)
		}
	})
	return c.err
}

func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
