package integration

import (
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/myha/myha/certs"
	"github.com/myha/myha/test/lab"
)

// mitmProxy is a man in the middle in front of a real server, on loopback.
// It relays the server's greeting; when the client asks for TLS it speaks
// TLS to the real server and terminates the client's TLS with a
// certificate of its choosing, so that it reads everything the client
// sends. It records what it could read of the client's side.
type mitmProxy struct {
	name   string
	ln     net.Listener
	target string
	cert   tls.Certificate

	mu       sync.Mutex
	asked    int    // SSL requests received
	accepted int    // client TLS handshakes that succeeded
	seen     []byte // client bytes readable by the proxy after the greeting
}

func startMITM(t *testing.T, target string, cert tls.Certificate) *mitmProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &mitmProxy{ln: ln, target: target, cert: cert, name: cert.Leaf.Subject.CommonName}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.serve(c) }()
		}
	}()
	return p
}

func (p *mitmProxy) addr() string { return p.ln.Addr().String() }

func (p *mitmProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked, p.accepted, p.seen = 0, 0, nil
}

func (p *mitmProxy) stats() (asked, accepted int, seen []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked, p.accepted, append([]byte(nil), p.seen...)
}

func (p *mitmProxy) record(b []byte) {
	p.mu.Lock()
	p.seen = append(p.seen, b...)
	p.mu.Unlock()
}

// readPacket reads one MySQL packet (header included).
func readPacket(r io.Reader) ([]byte, error) {
	h := make([]byte, 4)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	b := make([]byte, 4+n)
	copy(b, h)
	_, err := io.ReadFull(r, b[4:])
	return b, err
}

func (p *mitmProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	deadline := time.Now().Add(30 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	greeting, err := readPacket(server)
	if err != nil {
		return
	}
	if _, err := client.Write(greeting); err != nil {
		return
	}
	first, err := readPacket(client)
	if err != nil {
		return
	}
	var c, s net.Conn = client, server
	if len(first) == 4+32 { // an SSL request: the client wants TLS
		p.mu.Lock()
		p.asked++
		p.mu.Unlock()
		if _, err := server.Write(first); err != nil {
			return
		}
		ts := tls.Client(server, &tls.Config{InsecureSkipVerify: true})
		if err := ts.Handshake(); err != nil {
			return
		}
		tc := tls.Server(client, &tls.Config{Certificates: []tls.Certificate{p.cert}})
		if err := tc.Handshake(); err != nil {
			return // the client refused the proxy's certificate
		}
		p.mu.Lock()
		p.accepted++
		p.mu.Unlock()
		c, s = tc, ts
	} else {
		p.record(first)
		if _, err := server.Write(first); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		io.Copy(c, s)
		close(done)
	}()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		p.record(buf[:n])
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	s.Close()
	<-done
}

// otherCACert is a certificate for 127.0.0.1 from a CA of its own.
func otherCACert(t *testing.T) tls.Certificate {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mitm-ca")
	if err := certs.Init(dir); err != nil {
		t.Fatal(err)
	}
	return issueCert(t, dir, "mitm-own-ca", "127.0.0.1")
}

// labCert is a certificate the lab CA signed, for another address: what an
// attacker who took over some other host of the CA would hold.
func labCert(t *testing.T, l *lab.Lab, name string) tls.Certificate {
	t.Helper()
	return issueCert(t, l.TLSDir(), name, "198.18.250.250")
}

func issueCert(t *testing.T, dir, name, ip string) tls.Certificate {
	t.Helper()
	if err := certs.Issue(dir, name, []net.IP{net.ParseIP(ip)}, nil); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}
