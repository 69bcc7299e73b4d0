package lab

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/certs"
)

// TestLabTLS proves what the TLS lab and myha's replication TLS settings
// rely on, on real MariaDB: replicas replicate over verified TLS, plain
// TCP is refused under require_secure_transport, and a replica whose
// MASTER_SSL_CA is another CA cannot connect even with
// MASTER_SSL_VERIFY_SERVER_CERT=0 (the server verifies the chain whenever a
// CA is set: what tls.mode required and verify-ca give replicas).
func TestLabTLS(t *testing.T) {
	ctx := context.Background()
	l := New(t, Options{Servers: 2, TLS: true, RequireSecureTransport: true})
	db1, db2 := l.Server("db1"), l.Server("db2")
	if v, err := db2.SlaveStatus(ctx, "Master_SSL_Allowed"); err != nil || v != "Yes" {
		t.Fatalf("db2 Master_SSL_Allowed=%q (%v)", v, err)
	}
	if err := db1.Exec(ctx, "CREATE TABLE lab.t (id INT PRIMARY KEY)", "INSERT INTO lab.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Over TLS the application account works; in plain text it is refused.
	if err := l.AsUser(ctx, db1, AppUser, AppPass, "INSERT INTO lab.t VALUES (2)"); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.Timeout = AppUser, AppPass, "tcp", db1.Addr(), 2*time.Second
	c, _ := mysql.NewConnector(cfg)
	plain := sql.OpenDB(c)
	defer plain.Close()
	// MariaDB 10.11 answers a plain login under require_secure_transport
	// with "Access denied" (1045); the same credentials worked over TLS.
	if err := plain.PingContext(ctx); err == nil || !strings.Contains(err.Error(), "1045") && !strings.Contains(err.Error(), "3159") {
		t.Fatalf("plain TCP under require_secure_transport: %v, want a refusal", err)
	}

	// Another CA: the chain does not verify, host check or not.
	other := filepath.Join(t.TempDir(), "other")
	if err := certs.Init(other); err != nil {
		t.Fatal(err)
	}
	for _, verify := range []int{0, 1} {
		stmt := fmt.Sprintf("CHANGE MASTER TO MASTER_SSL=1, MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=%d",
			quote(filepath.Join(other, certs.CAFile)), verify)
		if err := db2.Exec(ctx, "STOP SLAVE", stmt, "START SLAVE"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			errno, _ := db2.SlaveStatus(ctx, "Last_IO_Errno")
			io, _ := db2.SlaveStatus(ctx, "Slave_IO_Running")
			if io == "Yes" {
				t.Fatalf("VERIFY_SERVER_CERT=%d: db2 connected to db1 with a CA that did not sign db1's certificate", verify)
			}
			if errno != "0" && errno != "" {
				msg, _ := db2.SlaveStatus(ctx, "Last_IO_Error")
				t.Logf("VERIFY_SERVER_CERT=%d: refused as it should: %s %s", verify, errno, msg)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("VERIFY_SERVER_CERT=%d: no connection error after 15s (IO %s)", verify, io)
			}
			time.Sleep(100 * time.Millisecond) // polling the IO thread's state
		}
	}
	// Back to the right CA without host check: connects (chain only).
	if err := db2.Exec(ctx, "STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=0", quote(l.CAFile())), "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatalf("with the right CA: %v", err)
	}
}
