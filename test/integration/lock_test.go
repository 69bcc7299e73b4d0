package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/test/lab"
)

// lockHolder is a session of the application account (ordinary
// privileges on lab.* only) holding myha's failover lock.
type lockHolder struct {
	db   *sql.DB
	conn *sql.Conn
	id   string // its CONNECTION_ID()
}

func holdFailoverLock(t *testing.T, l *lab.Lab, s *lab.Server) *lockHolder {
	t.Helper()
	ctx := context.Background()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.Timeout = lab.AppUser, lab.AppPass, "tcp", s.Addr(), 2*time.Second
	c.ReadTimeout, c.WriteTimeout = 5*time.Second, 5*time.Second
	c.TLS = l.ClientTLS(s)
	conn, err := mysql.NewConnector(c)
	must(t, err)
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	h := &lockHolder{db: db}
	h.conn, err = db.Conn(ctx)
	must(t, err)
	var got int
	must(t, h.conn.QueryRowContext(ctx, "SELECT GET_LOCK('myha_failover_lab', 0)").Scan(&got))
	must(t, h.conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&h.id))
	if got != 1 {
		t.Fatalf("the application account could not take the lock on %s", s.Name)
	}
	return h
}

// alive reports whether the holder's session still answers.
func (h *lockHolder) alive() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return h.conn.PingContext(ctx) == nil
}

// An application account holds myha's failover lock on every replica from
// its own sessions (GET_LOCK needs no privilege). myha check names the
// holder on each; after kill -9 of the primary, myha failover ends those
// sessions, says so, and completes: one writable server, every acknowledged
// row on every survivor.
func TestFailoverLockHeldByAnApplication(t *testing.T) {
	ctx := context.Background()
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := haConfig(t, l, "", nil)
	db2, db3 := l.Server("db2"), l.Server("db3")
	must(t, l.CreateWriteTable(ctx, "w"))
	must(t, l.WaitReplicated(ctx, 10*time.Second))
	w := l.StartWriter("w", l.Server("db1"), 10*time.Millisecond, false)
	must(t, w.WaitAcked(50, 10*time.Second))
	holders := map[*lab.Server]*lockHolder{db2: holdFailoverLock(t, l, db2), db3: holdFailoverLock(t, l, db3)}

	c, _ := check(t, cfg)
	for s, h := range holders {
		st, msg := c.status("failover_lock", s.Addr())
		if st != "warn" || !strings.Contains(msg, "'app'@") || !strings.Contains(msg, "connection "+h.id+",") || !strings.Contains(msg, "not myha's") {
			t.Fatalf("check on %s: %s %q, want a warning naming app and connection %s", s.Name, st, msg, h.id)
		}
	}

	must(t, l.Server("db1").Kill())
	w.Stop()
	rep, r := runFailover(t, "failover", "--cluster", "lab", "--yes", "--config", cfg)
	if r.code != 0 || rep.Result != "success" || !rep.Promoted {
		t.Fatalf("failover with the lock held by an application: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	for s, h := range holders {
		if !has(rep.Warnings, fmt.Sprintf("%s: ended the session of 'app'@", s.Addr())) || !has(rep.Warnings, "connection "+h.id+",") {
			t.Fatalf("the report does not say the session on %s was ended: %q", s.Name, rep.Warnings)
		}
		if h.alive() {
			t.Fatalf("the application's lock session on %s is still alive", s.Name)
		}
	}
	if !strings.Contains(r.stderr, "not myha's") || !strings.Contains(r.stderr, "holder=app@") {
		t.Fatalf("no log line naming the holder:\n%s", r.stderr)
	}
	newP, other := db2, db3
	if rep.NewPrimary == db3.Addr() {
		newP, other = db3, db2
	}
	assertSurvivors(t, l, cfg, w, newP, newP, other)
	if ws := writables(t, l); len(ws) != 1 || ws[0] != newP.Name {
		t.Fatalf("writable servers %v, want only %s", ws, newP.Name)
	}
}

// The daemon path: monitors fail over automatically although an
// application account holds the lock on every replica.
func TestDaemonFailoverWithLockHeldByAnApplication(t *testing.T) {
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "")
	must(t, m.CreateWriteTable(ctx, "w"))
	m.waitHealthy(t)
	w := m.StartWriter("w", m.Server("db1"), 10*time.Millisecond, false)
	must(t, w.WaitAcked(30, 10*time.Second))
	h2, h3 := holdFailoverLock(t, m.Lab, m.Server("db2")), holdFailoverLock(t, m.Lab, m.Server("db3"))
	must(t, m.Server("db1").Kill())
	w.Stop()
	rep := m.oneFailoverEverywhere(t)
	if rep.Result != "success" || !rep.Promoted {
		t.Fatalf("automatic failover with the lock held by an application: %+v", rep)
	}
	if h2.alive() || h3.alive() {
		t.Fatal("an application's lock session survived the failover")
	}
	logged := false
	for _, f := range m.logs {
		b, _ := os.ReadFile(f.Name())
		logged = logged || strings.Contains(string(b), "not myha's") && strings.Contains(string(b), h2.id)
	}
	if !logged {
		t.Fatal("no monitor logged the foreign holder with its connection id")
	}
	newP, other := m.Server("db2"), m.Server("db3")
	if rep.NewPrimary == other.Addr() {
		newP, other = other, newP
	}
	assertSurvivors(t, m.Lab, m.cfg, w, newP, newP, other)
}

// myha rejoin on a TLS cluster (plain TCP refused) while an application
// holds the failover lock on the returning old primary: the session is
// ended and said so, and the old primary replicates from the new one over
// verified TLS.
func TestRejoinOverTLSWithLockHeldByAnApplication(t *testing.T) {
	ctx := context.Background()
	l, cfg := labWithTable(t, lab.Options{Servers: 3, TLS: true, RequireSecureTransport: true}, "")
	db1, db2 := l.Server("db1"), l.Server("db2")
	must(t, db1.Kill())
	if r := myha(t, "failover", "--cluster", "lab", "--yes", "--new-primary", db2.Addr(), "--config", cfg); r.code != 0 {
		t.Fatalf("failover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	must(t, db2.Exec(ctx, "INSERT INTO lab.w (id, at) VALUES (1001, NOW(6))"))
	must(t, db1.Start(ctx))
	h := holdFailoverLock(t, l, db1)
	r := myha(t, "rejoin", "--server", db1.Addr(), "--yes", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, db1.Addr()+" replicates from "+db2.Addr()) ||
		!strings.Contains(r.stdout, "ended the session of 'app'@") || !strings.Contains(r.stdout, "connection "+h.id+",") {
		t.Fatalf("rejoin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if h.alive() {
		t.Fatal("the application's lock session survived the rejoin")
	}
	for col, want := range map[string]string{"Master_Host": db2.IP, "Master_SSL_Allowed": "Yes", "Master_SSL_Verify_Server_Cert": "Yes"} {
		if got := slaveField(t, db1, col); got != want {
			t.Fatalf("db1 after rejoin: %s=%q, want %q", col, got, want)
		}
	}
	waitFor(t, "db1 has the row written on the new primary, over TLS", 10*time.Second, func() bool {
		n, err := db1.QueryString(ctx, "SELECT COUNT(*) FROM lab.w WHERE id = 1001")
		return err == nil && n == "1"
	})
	if w := writables(t, l); len(w) != 1 || w[0] != "db2" {
		t.Fatalf("writable servers %v, want only db2", w)
	}
}
