package capture

// Against a FAKE server (go-mysql's server package on loopback): what the
// capture's client sends when a server it does not verify asks for the
// password in clear text.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"

	"github.com/myha/myha/topology"
)

// recorder keeps every byte a client sent to the fake server.
type recorder struct {
	net.Conn
	mu  *sync.Mutex
	got *bytes.Buffer
}

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.got.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

// clearTextServer greets with mysql_native_password, then asks to switch
// to mysql_clear_password, as a man in the middle of a plain-text
// connection would, and returns what clients sent it.
func clearTextServer(t *testing.T) (string, func() []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var got bytes.Buffer
	srv := server.NewServer("10.11.99-mitm", gomysql.DEFAULT_COLLATION_ID, gomysql.AUTH_NATIVE_PASSWORD, nil, nil)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
				auth := server.NewInMemoryAuthenticationHandler(gomysql.AUTH_CLEAR_PASSWORD)
				_ = auth.AddUser("repl", "whatever")
				_, _ = srv.NewCustomizedConn(recorder{nc, &mu, &got}, auth, server.EmptyHandler{})
			}()
		}
	}()
	return ln.Addr().String(), func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return bytes.Clone(got.Bytes())
	}
}

func TestCaptureClientNeverSendsThePasswordInClearText(t *testing.T) {
	const secret = "s3cret-repl-pw"
	for _, mode := range []topology.TLSMode{topology.TLSDisabled, topology.TLSPreferred} {
		addr, sent := clearTextServer(t)
		spec := topology.TLSSpec{Mode: mode}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := QueryPosition(ctx, addr, "repl", secret, ClientTLS{Config: spec.ClientConfig, Optional: mode == topology.TLSPreferred, Guard: topology.GuardLogin}, 2*time.Second)
		cancel()
		if !errors.Is(err, topology.ErrPasswordExposed) {
			t.Fatalf("%s: %v, want the login refused (ErrPasswordExposed)", mode, err)
		}
		if bytes.Contains(sent(), []byte(secret)) {
			t.Fatalf("%s: the password reached the server in clear text", mode)
		}
	}
	// Without the guard go-mysql's client hands the password over: what
	// the guard is for.
	addr, sent := clearTextServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = QueryPosition(ctx, addr, "repl", secret, ClientTLS{}, 2*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for !bytes.Contains(sent(), []byte(secret)) {
		if time.Now().After(deadline) {
			t.Fatal("control: without the guard the fake server never received the password; the test proves nothing")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
