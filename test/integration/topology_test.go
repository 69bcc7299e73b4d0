package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/myha/myha/test/lab"
)

func TestTopologyPrimaryAndReplicas(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 3})
	tp := topology(t, writeConfig(t, l))
	c := tp.Clusters[0]
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	if c.Primary == nil || *c.Primary != db1.Addr() {
		t.Fatalf("primary %v, want %s", ptr(c.Primary), db1.Addr())
	}
	if len(c.Problems) != 0 {
		t.Fatalf("healthy lab has problems: %v", c.Problems)
	}
	p := tp.server(t, db1.Addr())
	if p.Role != "primary" || p.ReadOnly || p.Source != nil || !p.Reachable {
		t.Fatalf("primary: %+v", p)
	}
	for _, s := range []*lab.Server{db2, db3} {
		r := tp.server(t, s.Addr())
		if r.Role != "replica" || !r.ReadOnly || r.Source == nil || *r.Source != db1.Addr() {
			t.Fatalf("%s: %+v", s.Name, r)
		}
		if !*r.IORunning || !*r.SQLRunning || r.LagSeconds == nil || *r.LagSeconds != 0 || len(r.Errors) != 0 {
			t.Fatalf("%s threads/lag: %+v", s.Name, r)
		}
		if r.GTIDPosition != p.GTIDPosition || r.GTIDPosition == "" {
			t.Fatalf("%s at %q, primary at %q", s.Name, r.GTIDPosition, p.GTIDPosition)
		}
	}

	// The text tree names the same things.
	out := myha(t, "topology", "--config", writeConfig(t, l))
	if out.code != 0 || !strings.Contains(out.stdout, "primary: "+db1.Addr()) || strings.Count(out.stdout, "replica") != 2 {
		t.Fatalf("tree output (exit %d):\n%s%s", out.code, out.stdout, out.stderr)
	}
}

func TestTopologyCoPrimaryPair(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 3, CoPrimary: true})
	tp := topology(t, writeConfig(t, l))
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	c := tp.Clusters[0]
	if c.Primary == nil || *c.Primary != db1.Addr() {
		t.Fatalf("primary %v, want the writable co-primary %s", ptr(c.Primary), db1.Addr())
	}
	a, b := tp.server(t, db1.Addr()), tp.server(t, db2.Addr())
	if a.Role != "primary" || b.Role != "co-primary" || a.CoPrimaryOf != db2.Addr() || b.CoPrimaryOf != db1.Addr() {
		t.Fatalf("pair roles: %+v / %+v", a, b)
	}
	if *a.Source != db2.Addr() || *b.Source != db1.Addr() {
		t.Fatal("co-primaries must replicate from each other")
	}
	if r := tp.server(t, db3.Addr()); r.Role != "replica" || *r.Source != db1.Addr() {
		t.Fatalf("db3: %+v", r)
	}
}

func TestTopologyStoppedSQLThread(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	db2 := l.Server("db2")
	if err := db2.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	tp := topology(t, writeConfig(t, l))
	r := tp.server(t, db2.Addr())
	if *r.SQLRunning || !*r.IORunning || !has(r.Errors, "SQL thread not running") {
		t.Fatalf("db2 with a stopped SQL thread: %+v", r)
	}
	if r.Role != "replica" {
		t.Fatalf("a stopped replica is still a replica, got %s", r.Role)
	}
	if o := tp.server(t, l.Server("db3").Addr()); !*o.SQLRunning || len(o.Errors) != 0 {
		t.Fatalf("db3 must be healthy: %+v", o)
	}
}

func TestTopologyBrokenIOThread(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	db1, db3 := l.Server("db1"), l.Server("db3")
	if err := db3.Exec(ctx, "STOP SLAVE", "CHANGE MASTER TO MASTER_PASSWORD='wrong-password'", "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, l)
	tp := waitTopology(t, cfg, "db3's IO thread to fail with access denied", func(tp Topology) bool {
		return has(tp.server(t, db3.Addr()).Errors, "1045")
	})
	r := tp.server(t, db3.Addr())
	if *r.IORunning || r.IOState != "Connecting" || !has(r.Errors, "cannot connect") || *r.Source != db1.Addr() {
		t.Fatalf("db3 with a wrong replication password: %+v", r)
	}
}

func TestTopologyKilledReplica(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 3})
	db1, db3 := l.Server("db1"), l.Server("db3")
	if err := db3.Kill(); err != nil {
		t.Fatal(err)
	}
	tp := topology(t, writeConfig(t, l))
	r := tp.server(t, db3.Addr())
	if r.Reachable || !has(r.Errors, "unreachable") {
		t.Fatalf("killed db3: %+v", r)
	}
	if c := tp.Clusters[0]; c.Primary == nil || *c.Primary != db1.Addr() {
		t.Fatalf("a dead replica must not hide the primary: %v", ptr(c.Primary))
	}
}

func TestTopologyUnlistedReplica(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 3})
	db1, db2, db3 := l.Server("db1"), l.Server("db2"), l.Server("db3")
	tp := topology(t, writeConfig(t, l, db1, db2)) // db3 left out of the config
	c := tp.Clusters[0]
	if len(c.Unlisted) != 1 || c.Unlisted[0].ServerID != 3 || c.Unlisted[0].Host != db3.IP || c.Unlisted[0].Source != db1.Addr() {
		t.Fatalf("unlisted replicas: %+v", c.Unlisted)
	}
	if !has(c.Problems, "not in the config") {
		t.Fatalf("problems: %v", c.Problems)
	}
}

func TestTopologyLaggingReplica(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	db1, db2 := l.Server("db1"), l.Server("db2")
	// A delayed replica is a lagging one whose lag we control.
	if err := db2.Exec(ctx, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=60", "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	if err := db1.Exec(ctx, "CREATE TABLE lab.lag (id INT PRIMARY KEY)", "INSERT INTO lab.lag VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, l)
	tp := waitTopology(t, cfg, "db2 to lag by 2s", func(tp Topology) bool {
		r := tp.server(t, db2.Addr())
		return r.LagSeconds != nil && *r.LagSeconds >= 2
	})
	r, p := tp.server(t, db2.Addr()), tp.server(t, db1.Addr())
	if r.GTIDPosition == p.GTIDPosition {
		t.Fatalf("lagging db2 must be behind the primary: %s vs %s", r.GTIDPosition, p.GTIDPosition)
	}
	if o := tp.server(t, l.Server("db3").Addr()); *o.LagSeconds != 0 || o.GTIDPosition != p.GTIDPosition {
		t.Fatalf("db3 must be caught up: %+v", o)
	}
}

func TestTopologyErrantTransaction(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	db1, db3 := l.Server("db1"), l.Server("db3")
	// A DBA "fixes" something directly on a replica: the write gets db3's
	// server_id in the binlog and the primary never has it.
	if err := db3.Exec(ctx, "SET GLOBAL read_only=0", "INSERT INTO lab.seed VALUES (42)", "SET GLOBAL read_only=1"); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, l)
	tp := topology(t, cfg)
	r := tp.server(t, db3.Addr())
	if len(r.Errant) != 1 || !strings.HasPrefix(r.Errant[0], "0-3-") || !has(r.Errors, "errant transactions") {
		t.Fatalf("db3 errant: %+v", r)
	}
	if o := tp.server(t, l.Server("db2").Addr()); len(o.Errant) != 0 {
		t.Fatalf("db2 has no errant transactions: %+v", o)
	}

	// The primary writes on; strict mode stops db3's SQL thread, and the
	// errant write must still be reported although db1 is now past its seq.
	if err := db1.Exec(ctx, "INSERT INTO lab.seed VALUES (1)", "INSERT INTO lab.seed VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	tp = waitTopology(t, cfg, "db3's SQL thread to stop on the GTID conflict", func(tp Topology) bool {
		return !*tp.server(t, db3.Addr()).SQLRunning
	})
	if r := tp.server(t, db3.Addr()); len(r.Errant) != 1 || !strings.HasPrefix(r.Errant[0], "0-3-") {
		t.Fatalf("errant write hidden once the primary moved on: %+v", r)
	}
}

func TestTopologyNoFalseErrantUnderWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := lab.New(t, lab.Options{Servers: 3})
	db1 := l.Server("db1")
	if err := db1.Exec(ctx, "CREATE TABLE lab.w (id INT AUTO_INCREMENT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			db1.Exec(ctx, "INSERT INTO lab.w VALUES ()")
		}
	}()
	cfg := writeConfig(t, l)
	for i := 0; i < 15; i++ {
		tp := topology(t, cfg)
		for _, s := range tp.Clusters[0].Servers {
			if len(s.Errant) != 0 {
				t.Fatalf("round %d: %s reported errant %v while only the primary writes", i, s.Address, s.Errant)
			}
		}
	}
	cancel()
	<-done
}
