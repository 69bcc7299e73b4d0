package topology

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
)

// authGuard sits under the MySQL driver on every connection myha opens and
// reads the server's side of the login before the driver does. On a
// connection that does not authenticate the server (plain text: tls.mode
// disabled, or preferred with a server that offers no TLS) it refuses the
// exchanges that hand the password to whoever answers:
//
//   - a request for full caching_sha2_password or sha256_password
//     authentication, after which go-sql-driver asks the server for its RSA
//     public key and encrypts the password with whatever key comes back
//     (the driver has no option to refuse that), and any other
//     "more data" packet carrying a key;
//   - a switch to mysql_clear_password or sha256_password.
//
// Hash-based logins (mysql_native_password, client_ed25519, a cached
// caching_sha2_password) pass. Once the server offers TLS and the client
// takes it, or the login is over, bytes pass through untouched: the TLS
// layer then decides whom to trust.
//
// It is a decoder of network input, so it bounds what it buffers and never
// indexes past what it read (FuzzAuthGuard).
type authGuard struct {
	net.Conn
	tlsNext bool // the driver switches to TLS if the server offers it
	onErr   func(error)

	mu    sync.Mutex
	state guardState
	in    []byte // read from the server, not yet a whole packet
	out   []byte // whole packets checked, for the driver
	err   error
}

type guardState int

const (
	guardGreeting guardState = iota
	guardAuth
	guardDone
)

// maxGuardBuffer bounds what the guard holds while the login runs: login
// packets are a few hundred bytes.
const maxGuardBuffer = 64 << 10

// MySQL protocol constants the guard needs.
const (
	capSSL             = 0x0800
	authMoreData       = 0x01
	fastAuthSuccess    = 0x03
	authSwitchRequest  = 0xFE
	okPacket           = 0x00
	errPacket          = 0xFF
	protocolVersion10  = 10
	handshakeFixedPart = 4 + 8 + 1 // connection id, scramble part 1, filler
)

// ErrPasswordExposed is why the guard closed a login: the server asked for
// something that would reveal the password over an unauthenticated channel.
var ErrPasswordExposed = errors.New("the server asked for the password in a form anyone on the network path could read " +
	"(full caching_sha2_password/sha256_password authentication, an RSA key or cleartext) over a connection that does not verify the server; " +
	"myha refused before sending it: set tls.mode to required, verify-ca or verify-full, or give the account mysql_native_password or ed25519")

// GuardLogin puts the login guard of myha's own connections under another
// MySQL client's fresh connection to a server (the binlog capture's
// go-mysql client, which would send the password to whoever asks for it in
// clear text): the same refusals, the same ErrPasswordExposed, passed to
// onErr as well because the client reports only a read error. tlsNext
// says the client switches to TLS when the server offers it.
func GuardLogin(c net.Conn, tlsNext bool, onErr func(error)) net.Conn {
	return &authGuard{Conn: c, tlsNext: tlsNext, onErr: onErr}
}

func (g *authGuard) Read(p []byte) (int, error) {
	g.mu.Lock()
	if g.state == guardDone && len(g.out) == 0 && len(g.in) == 0 {
		g.mu.Unlock()
		return g.Conn.Read(p)
	}
	defer g.mu.Unlock()
	for len(g.out) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		if g.state == guardDone {
			g.out, g.in = g.in, nil
			if len(g.out) == 0 {
				return g.Conn.Read(p)
			}
			break
		}
		buf := make([]byte, 4096)
		n, err := g.Conn.Read(buf)
		g.feed(buf[:n])
		if len(g.out) > 0 {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

// feed takes bytes from the server and moves every whole packet that passes
// the checks to out; a refused packet sets err and is never delivered.
func (g *authGuard) feed(b []byte) {
	g.in = append(g.in, b...)
	for g.err == nil && g.state != guardDone {
		if len(g.in) < 4 {
			break
		}
		n := int(g.in[0]) | int(g.in[1])<<8 | int(g.in[2])<<16
		if 4+n > maxGuardBuffer {
			g.fail(fmt.Errorf("the server sent a %d-byte packet during the login: not a MySQL server", n))
			return
		}
		if len(g.in) < 4+n {
			break
		}
		if err := g.inspect(g.in[4 : 4+n]); err != nil {
			g.fail(err)
			return
		}
		g.out = append(g.out, g.in[:4+n]...)
		g.in = g.in[4+n:]
	}
	if g.state == guardDone {
		g.out = append(g.out, g.in...)
		g.in = nil
	}
	if len(g.in) > maxGuardBuffer {
		g.fail(errors.New("the server sent an oversized login packet: not a MySQL server"))
	}
}

func (g *authGuard) fail(err error) {
	g.err, g.in = err, nil // what passed before it is still delivered
	if g.onErr != nil {
		g.onErr(err)
	}
}

// inspect judges one server packet of the login.
func (g *authGuard) inspect(pkt []byte) error {
	if len(pkt) == 0 {
		g.state = guardDone // not a login packet: the driver rejects it
		return nil
	}
	switch g.state {
	case guardGreeting:
		g.state = guardAuth
		if pkt[0] != protocolVersion10 {
			g.state = guardDone // an error packet, or a protocol the driver refuses
			return nil
		}
		nul := bytes.IndexByte(pkt[1:], 0)
		if nul < 0 || 1+nul+1+handshakeFixedPart+2 > len(pkt) {
			return nil // the driver rejects the malformed greeting
		}
		caps := binary.LittleEndian.Uint16(pkt[1+nul+1+handshakeFixedPart:])
		if g.tlsNext && caps&capSSL != 0 {
			g.state = guardDone // TLS comes next; it verifies the server as the mode says
		}
	case guardAuth:
		switch pkt[0] {
		case okPacket, errPacket:
			g.state = guardDone
		case authMoreData:
			if len(pkt) == 2 && pkt[1] == fastAuthSuccess {
				return nil
			}
			return ErrPasswordExposed
		case authSwitchRequest:
			plugin := pkt[1:]
			if i := bytes.IndexByte(plugin, 0); i >= 0 {
				plugin = plugin[:i]
			}
			switch string(plugin) {
			case "mysql_clear_password", "sha256_password":
				return ErrPasswordExposed
			}
		}
	}
	return nil
}
