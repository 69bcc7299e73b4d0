package capture

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/client"
)

// ClientTLS is how the capture's client connections (the dump from the
// primary, a position query to another monitor's capture server) are
// protected. Config is the cluster's TLS builder (topology.TLSSpec's
// ClientConfig), passed in so the capture verifies servers exactly as
// myha's other connections do; it returns nil for plain text.
type ClientTLS struct {
	Config func(addr string) (*tls.Config, error)
	// Optional allows plain text when the server offers no TLS (tls.mode
	// preferred). Without it a server that offers no TLS, or whose
	// certificate does not verify, is refused before the login packet:
	// never a fallback to plain text.
	Optional bool
	// Guard wraps each new connection before the client reads the
	// server's greeting (topology.GuardLogin): on a connection that does
	// not verify the server it refuses logins that would hand over the
	// password (a switch to mysql_clear_password, an RSA key exchange),
	// which go-mysql's client would otherwise answer. It reports the
	// refusal through onErr.
	Guard func(c net.Conn, tlsNext bool, onErr func(error)) net.Conn
}

// errNoTLSOffered is go-mysql's refusal when the server's handshake lacks
// CLIENT_SSL and a TLS configuration was given (client/auth.go).
const errNoTLSOffered = "does not support TLS"

// connect opens a go-mysql client connection to addr with the TLS the
// cluster asks for. configure sets timeouts and attributes.
func connect(ctx context.Context, addr, user, password string, t ClientTLS, dialer client.Dialer, configure func(*client.Conn) error) (*client.Conn, error) {
	if dialer == nil {
		dialer = (&net.Dialer{}).DialContext
	}
	var cfg *tls.Config
	if t.Config != nil {
		var err error
		if cfg, err = t.Config(addr); err != nil {
			return nil, fmt.Errorf("TLS settings for %s: %w", addr, err)
		}
	}
	var refusal atomic.Pointer[error]
	guarded := func(tlsNext bool) client.Dialer {
		return func(ctx context.Context, network, a string) (net.Conn, error) {
			nc, err := dialer(ctx, network, a)
			if err != nil || t.Guard == nil {
				return nc, err
			}
			return t.Guard(nc, tlsNext, func(e error) { refusal.CompareAndSwap(nil, &e) }), nil
		}
	}
	withTLS := func(cfg *tls.Config) func(*client.Conn) error {
		return func(c *client.Conn) error {
			if cfg != nil {
				c.SetTLSConfig(cfg)
			}
			return configure(c)
		}
	}
	c, err := client.ConnectWithDialer(ctx, "tcp", addr, user, password, "", guarded(cfg != nil), withTLS(cfg))
	if err != nil && cfg != nil && t.Optional && strings.Contains(err.Error(), errNoTLSOffered) {
		// tls.mode preferred: the server offers no TLS, so plain text,
		// as with myha's other connections in this mode.
		c, err = client.ConnectWithDialer(ctx, "tcp", addr, user, password, "", guarded(false), withTLS(nil))
	}
	if err != nil {
		if r := refusal.Load(); r != nil {
			return nil, *r // the client reports only the closed read
		}
		if cfg != nil && strings.Contains(err.Error(), errNoTLSOffered) {
			return nil, errors.New("the server offers no TLS, which the cluster's tls.mode requires; nothing was sent")
		}
	}
	return c, err
}

// ServerTLS makes a capture server offer TLS with the certificate and key
// in these files, read at each handshake so a renewed certificate is used
// without a restart.
func ServerTLS(certFile, keyFile string) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("capture certificate: %w", err)
			}
			return &pair, nil
		}}
}
