package lab

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestLabReplicates proves the lab is what tests rely on: a write on db1
// reaches every replica, a killed replica catches up after restart, and a
// cut host is really unreachable until healed.
func TestLabReplicates(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	l := New(t, Options{Servers: 3, Hosts: []string{"client"}})
	t.Logf("3-server lab up in %s (netns=%v)", time.Since(start).Round(time.Millisecond), l.Netns)

	db1, db3 := l.Server("db1"), l.Server("db3")
	if err := db1.Exec(ctx, "CREATE TABLE lab.t (id INT PRIMARY KEY)", "INSERT INTO lab.t VALUES (1),(2)"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Servers {
		if n, err := s.QueryString(ctx, "SELECT COUNT(*) FROM lab.t"); err != nil || n != "2" {
			t.Fatalf("%s has %s rows (%v), want 2", s.Name, n, err)
		}
		ro, _ := s.QueryString(ctx, "SELECT @@read_only")
		if want := map[bool]string{true: "0", false: "1"}[s == db1]; ro != want {
			t.Fatalf("%s read_only=%s, want %s", s.Name, ro, want)
		}
	}

	if err := db3.Kill(); err != nil {
		t.Fatal(err)
	}
	if db3.Running() {
		t.Fatal("db3 still running after kill -9")
	}
	if err := db1.Exec(ctx, "INSERT INTO lab.t VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	if err := db3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, _ := db3.QueryString(ctx, "SELECT COUNT(*) FROM lab.t"); n != "3" {
		t.Fatalf("restarted db3 has %s rows, want 3", n)
	}

	if !l.Netns {
		t.Log("loopback lab: skipping the network cut part")
		return
	}
	client := l.Host("client")
	if !client.CanReach(ctx, db3.Addr()) {
		t.Fatal("client cannot reach db3 before the cut")
	}
	if err := db3.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if client.CanReach(ctx, db3.Addr()) {
		t.Fatal("client still reaches db3 after the cut")
	}
	if err := db3.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if !client.CanReach(ctx, db3.Addr()) {
		t.Fatal("client cannot reach db3 after healing")
	}
}

func TestLabCoPrimary(t *testing.T) {
	ctx := context.Background()
	l := New(t, Options{Servers: 2, CoPrimary: true})
	// A write on the passive side must reach the active side too.
	db2 := l.Server("db2")
	if err := db2.Exec(ctx, "SET SESSION gtid_domain_id=0", "SET GLOBAL read_only=0", "CREATE TABLE lab.p (id INT PRIMARY KEY)", "SET GLOBAL read_only=1"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicatedFrom(ctx, db2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Server("db1").QueryString(ctx, "SELECT COUNT(*) FROM lab.p"); err != nil {
		t.Fatalf("write on db2 did not reach db1: %v", err)
	}
}

// TestLabLoopback runs the fallback used without root, so it is exercised
// even on machines where tests run as root.
func TestLabLoopback(t *testing.T) {
	ctx := context.Background()
	l := New(t, Options{Servers: 2, Loopback: true, Hosts: []string{"client"}})
	if l.Netns || l.Servers[0].IP != "127.0.0.1" || l.Servers[0].Port == l.Servers[1].Port {
		t.Fatalf("loopback lab: netns=%v %s %s", l.Netns, l.Servers[0].Addr(), l.Servers[1].Addr())
	}
	if err := l.Server("db1").Exec(ctx, "CREATE TABLE lab.lo (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitReplicated(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Server("db2").Cut(ctx); err != ErrNoNamespaces {
		t.Fatalf("Cut on loopback = %v, want ErrNoNamespaces", err)
	}
}

// Packet-drop partitions: both directions, one direction, and healing.
func TestLabPacketDrops(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	l := New(t, Options{Servers: 1, NoReplication: true, Hosts: []string{"a", "b"}})
	l.RequireNetns(t)
	ctx := context.Background()
	a, db := l.Host("a"), l.Server("db1")
	if !a.CanReach(ctx, db.Addr()) {
		t.Fatal("no connectivity before the partition")
	}
	if err := db.DropFrom(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.CanReach(ctx, db.Addr()) {
		t.Fatal("a still reaches db1 through a two-way drop")
	}
	if !l.Host("b").CanReach(ctx, db.Addr()) {
		t.Fatal("b lost db1 too: the drop is not limited to a")
	}
	if err := db.HealDrops(ctx); err != nil {
		t.Fatal(err)
	}
	if !a.CanReach(ctx, db.Addr()) {
		t.Fatal("still cut after HealDrops")
	}
	// One way: db1 drops what it sends to a; a's SYNs arrive, answers do not.
	if err := db.DropOutgoingTo(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.CanReach(ctx, db.Addr()) {
		t.Fatal("a completed a TCP handshake although db1's answers are dropped")
	}
	if err := db.HealDrops(ctx); err != nil {
		t.Fatal(err)
	}
}
