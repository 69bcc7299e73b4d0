package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// A cluster whose servers refuse plain TCP (require_secure_transport=ON)
// and myha with tls.mode verify-full: check, topology and a failover under
// writes work, every acknowledged row survives, and after the failover the
// survivors replicate from the new primary over verified TLS.
func TestTLSClusterVerifyFullFailover(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3, TLS: true, RequireSecureTransport: true})
	cfg := haConfig(t, l, "", nil)
	if b, _ := os.ReadFile(cfg); !strings.Contains(string(b), "mode: verify-full") {
		t.Fatalf("the lab config does not ask for verify-full:\n%s", b)
	}
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")

	c, code := check(t, cfg)
	if code > 1 || len(c.failures()) > 0 {
		t.Fatalf("check on a TLS cluster: exit %d, failures %v", code, c.failures())
	}
	if st, msg := c.status("tls", ""); st != "ok" || !strings.Contains(msg, "verify-full") {
		t.Fatalf("tls check: %s %s", st, msg)
	}
	for _, s := range l.Servers {
		if st, msg := c.status("tls", s.Addr()); st != "ok" || !strings.Contains(msg, "TLSv1") {
			t.Fatalf("%s: myha's session: %s %s", s.Name, st, msg)
		}
	}
	tp := topology(t, cfg)
	if p := tp.Clusters[0].Primary; p == nil || *p != db1.Addr() {
		t.Fatalf("topology over TLS: primary %v, problems %v", ptr(p), tp.Clusters[0].Problems)
	}

	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	w := l.StartWriter("w", db1, 10*time.Millisecond, false) // over TLS too: plain TCP is refused
	must(t, w.WaitAcked(50, 10*time.Second))
	must(t, db1.Kill())
	w.Stop()
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || rep.Result != "success" || !rep.Promoted {
		t.Fatalf("failover over TLS: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	newP, other := db2, db3
	if rep.NewPrimary == db3.Addr() {
		newP, other = db3, db2
	}
	assertSurvivors(t, l, cfg, w, newP, newP, other)
	// The repoint gave the survivor TLS with host verification: with
	// require_secure_transport it could not replicate otherwise.
	for col, want := range map[string]string{"Master_Host": newP.IP, "Master_SSL_Allowed": "Yes", "Master_SSL_Verify_Server_Cert": "Yes",
		"Master_SSL_CA_File": l.CAFile(), "Slave_IO_Running": "Yes"} {
		if got := slaveField(t, other, col); got != want {
			t.Fatalf("%s after the failover: %s=%q, want %q", other.Name, col, got, want)
		}
	}
	c, _ = check(t, cfg)
	if st, msg := c.status("replication_tls", other.Addr()); st != "ok" {
		t.Fatalf("replication_tls on %s: %s %s", other.Name, st, msg)
	}
}

// mitmConfig is a one-server cluster reached through the proxy.
func mitmConfig(t *testing.T, l *lab.Lab, addr, mode string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\nclusters:\n  - name: lab\n    user: %s\n    password: %s\n    replication_user: %s\n    replication_password: %s\n",
		filepath.Join(t.TempDir(), "state"), lab.AdminUser, lab.AdminPass, lab.ReplUser, lab.ReplPass)
	fmt.Fprintf(&b, "    tls:\n      mode: %s\n", mode)
	if mode != "disabled" && mode != "preferred" {
		fmt.Fprintf(&b, "      ca_file: %s\n", l.CAFile())
	}
	fmt.Fprintf(&b, "    connect_timeout: 2s\n    servers:\n      - address: %s\n", addr)
	p := filepath.Join(t.TempDir(), "myha.yaml")
	must(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

// A man in the middle between myha and a real TLS server, presenting a
// certificate myha should not trust: from a CA of its own, or the lab CA's
// certificate of another server. With required, verify-ca and verify-full
// myha names the server, says why, and closes the connection in the TLS
// handshake: the proxy never receives the login packet, so neither the
// user name nor anything derived from the password. With disabled and
// preferred the session works through the proxy, which reads it, and
// check warns.
func TestTLSManInTheMiddle(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 2, TLS: true})
	db1 := l.Server("db1")
	foreign := startMITM(t, db1.Addr(), otherCACert(t))
	stolen := startMITM(t, db1.Addr(), labCert(t, l, "stolen")) // signed by the lab CA, for another address

	for _, tc := range []struct {
		proxy *mitmProxy
		mode  string
		want  string
	}{
		{foreign, "verify-full", "certificate signed by unknown authority"},
		{foreign, "verify-ca", "certificate signed by unknown authority"},
		{foreign, "required", "certificate signed by unknown authority"},
		{stolen, "verify-full", "not 127.0.0.1"},
	} {
		t.Run(tc.mode+" via "+tc.proxy.name, func(t *testing.T) {
			tc.proxy.reset()
			cfg := mitmConfig(t, l, tc.proxy.addr(), tc.mode)
			tp := topology(t, cfg)
			v := tp.server(t, tc.proxy.addr())
			if v.Reachable || !has(v.Errors, tc.want) || !has(v.Errors, "connect: its TLS certificate is not trusted (tls.mode "+tc.mode) ||
				!has(v.Errors, "before sending the user name or password") {
				t.Fatalf("topology through a man in the middle: reachable=%v errors %v", v.Reachable, v.Errors)
			}
			// The text report names the server on the line that says why.
			r := myha(t, "topology", "--config", cfg)
			if !hasLine(r.stdout+r.stderr, tc.proxy.addr(), "not trusted") {
				t.Fatalf("topology text does not name the server with the reason:\n%s%s", r.stdout, r.stderr)
			}
			c, _ := check(t, cfg)
			if st, msg := c.status("reachable", tc.proxy.addr()); st != "fail" || !strings.Contains(msg, "not trusted") {
				t.Fatalf("check: reachable %s %s", st, msg)
			}
			asked, accepted, seen := tc.proxy.stats()
			if asked == 0 || accepted != 0 || len(seen) != 0 {
				t.Fatalf("proxy: %d TLS requests, %d TLS sessions accepted by myha, %d bytes of the login read; want >0, 0, 0", asked, accepted, len(seen))
			}
		})
	}
	// The stolen certificate is one the lab CA signed: verify-ca accepts it
	// (it checks the chain only), which is why verify-full exists.
	t.Run("verify-ca accepts another server's certificate of the same CA", func(t *testing.T) {
		stolen.reset()
		tp := topology(t, mitmConfig(t, l, stolen.addr(), "verify-ca"))
		if v := tp.server(t, stolen.addr()); !v.Reachable {
			t.Fatalf("verify-ca with a certificate of the right CA: %v", v.Errors)
		}
	})
	for _, mode := range []string{"disabled", "preferred"} {
		t.Run(mode+" works through the proxy, which reads it, and check warns", func(t *testing.T) {
			foreign.reset()
			cfg := mitmConfig(t, l, foreign.addr(), mode)
			tp := topology(t, cfg)
			if v := tp.server(t, foreign.addr()); !v.Reachable {
				t.Fatalf("%s through the proxy: %v", mode, v.Errors)
			}
			_, _, seen := foreign.stats()
			if !strings.Contains(string(seen), lab.AdminUser) || !strings.Contains(string(seen), "information_schema.GLOBAL_VARIABLES") {
				t.Fatalf("%s: the proxy read %d bytes but not the session (the test proxy is broken)", mode, len(seen))
			}
			if strings.Contains(string(seen), lab.AdminPass) {
				t.Fatal("the password itself crossed the proxy")
			}
			c, _ := check(t, cfg)
			if st, msg := c.status("tls", ""); st != "warn" || !strings.Contains(msg, mode) {
				t.Fatalf("check: tls %s %s", st, msg)
			}
		})
	}
}

// hasLine reports whether one line of out contains every part.
func hasLine(out string, parts ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
