package topology

// These tests count the statements a probe sends to test/fakeserver, a
// FAKE server speaking the MySQL wire protocol with scripted MariaDB
// state: what is measured is myha's side (which statements it sends and
// what it keeps), not a server's answers.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/myha/myha/test/fakeserver"
)

// keepDialer keeps one session per server open across probes, as the
// daemon's probe pool does, and says when a session is reused.
type keepDialer struct {
	inner SQLDialer
	mu    sync.Mutex
	open  map[string]Querier
	down  map[string]bool
}

type keptSession struct {
	Querier
	reused bool
}

func (k keptSession) Reused() bool { return k.reused }
func (k keptSession) Close() error { return nil }

func (k *keepDialer) Dial(ctx context.Context, addr string) (Querier, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down[addr] {
		return nil, &ServerError{Addr: addr, Op: "connect", Err: errors.New("connection refused")}
	}
	if q, ok := k.open[addr]; ok {
		return keptSession{Querier: q, reused: true}, nil
	}
	q, err := k.inner.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	k.open[addr] = q
	return keptSession{Querier: q}, nil
}

// reconnect closes a server's session: the next probe opens a new one.
func (k *keepDialer) reconnect(addr string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if q, ok := k.open[addr]; ok {
		q.Close()
		delete(k.open, addr)
	}
}

func (k *keepDialer) setDown(addr string, down bool) {
	k.reconnect(addr)
	k.mu.Lock()
	k.down[addr] = down
	k.mu.Unlock()
}

func (k *keepDialer) closeAll() {
	for addr := range k.open {
		k.reconnect(addr)
	}
}

func mariaState(id string, readOnly bool) fakeserver.State {
	ro := "OFF"
	if readOnly {
		ro = "ON"
	}
	return fakeserver.State{
		Version: "10.11.6-MariaDB-log", Comment: "MariaDB Server",
		Vars: map[string]string{"server_id": id, "read_only": ro, "log_bin": "ON", "log_slave_updates": "ON", "binlog_format": "ROW",
			"gtid_binlog_pos": "0-1-10", "gtid_binlog_state": "0-1-10", "gtid_slave_pos": "0-1-10", "gtid_current_pos": "0-1-10",
			"gtid_strict_mode": "ON", "gtid_domain_id": "0"},
		Status:         map[string]string{"Uptime": "1000"},
		ReplicaColumns: []string{"Connection_name", "Master_Host", "Master_Port", "Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master", "Using_Gtid", "Gtid_IO_Pos"},
		BinlogFile:     "mariadb-bin.000001", BinlogPos: 400,
		Grants: []string{"GRANT SUPER, REPLICATION SLAVE ON *.* TO `myha`@`%`"},
	}
}

type factsFixture struct {
	primary, replica *fakeserver.Server
	spec             ClusterSpec
	dialer           *keepDialer
	clock            time.Time
	facts            *FactsCache
}

func newFactsFixture(t *testing.T) *factsFixture {
	t.Helper()
	f := &factsFixture{clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var err error
	pst := mariaState("1", false)
	if f.primary, err = fakeserver.Start("myha", "pw", pst); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(f.primary.Addr(), ":")
	rst := mariaState("2", true)
	rst.ReplicaRows = []map[string]string{{"Connection_name": "", "Master_Host": host, "Master_Port": port, "Slave_IO_Running": "Yes",
		"Slave_SQL_Running": "Yes", "Seconds_Behind_Master": "0", "Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-1-10"}}
	if f.replica, err = fakeserver.Start("myha", "pw", rst); err != nil {
		t.Fatal(err)
	}
	f.primary.SetState(withReplicaHost(pst, f.replica.Addr()))
	f.primary.OnQuery = func(q string) (*gomysql.Result, bool, error) {
		if strings.Contains(q, "USER_PRIVILEGES") {
			res, err := fakeserver.Result([]string{"g"}, []map[string]string{{"g": "'root'@'localhost'"}})
			return res, true, err
		}
		return nil, false, nil
	}
	f.spec = ClusterSpec{Name: "c", Credentials: Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second,
		Servers: []ServerSpec{{Address: f.primary.Addr()}, {Address: f.replica.Addr()}}}
	f.dialer = &keepDialer{inner: SQLDialer{Credentials: f.spec.Credentials, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second},
		open: map[string]Querier{}, down: map[string]bool{}}
	f.facts = NewFactsCache(FactsMaxAge, func() time.Time { return f.clock })
	t.Cleanup(func() { f.dialer.closeAll(); f.primary.Close(); f.replica.Close() })
	return f
}

func withReplicaHost(st fakeserver.State, addr string) fakeserver.State {
	host, port, _ := strings.Cut(addr, ":")
	st.ReplicaHosts = []map[string]string{{"Server_id": "2", "Host": host, "Port": port}}
	return st
}

// count runs one discovery and returns the statements each server got
// (the pooled session's setup excluded: it is sent at login only).
func (f *factsFixture) count(t *testing.T, discover func() Snapshot) (Snapshot, []string, []string) {
	t.Helper()
	p0, r0 := len(f.primary.Statements()), len(f.replica.Statements())
	snap := discover()
	for _, v := range snap.Servers {
		if !v.Reachable || v.Error != "" {
			t.Fatalf("%s: reachable=%v error=%q", v.Spec.Address, v.Reachable, v.Error)
		}
	}
	return snap, probeStatements(f.primary.Statements()[p0:]), probeStatements(f.replica.Statements()[r0:])
}

func probeStatements(all []string) []string {
	var out []string
	for _, s := range all {
		if !strings.HasPrefix(strings.ToUpper(s), "SET ") {
			out = append(out, s)
		}
	}
	return out
}

func (f *factsFixture) routine(t *testing.T) (Snapshot, []string, []string) {
	return f.count(t, func() Snapshot { return DiscoverRoutine(context.Background(), f.spec, f.dialer, f.facts) })
}

func (f *factsFixture) full(t *testing.T) (Snapshot, []string, []string) {
	return f.count(t, func() Snapshot { return Discover(context.Background(), f.spec, f.dialer) })
}

// The statements of a full probe of a writable MariaDB server with a
// binlog: version, variables and status (one statement on MariaDB),
// replica status, binlog position, registered replicas, dump threads,
// privileged accounts, own grants.
const fullPrimaryStatements = 8

// A routine probe reusing the slow facts: variables and status, replica
// status, binlog position.
const routineStatements = 3

func TestRoutineProbeSendsFewerStatements(t *testing.T) {
	f := newFactsFixture(t)
	full, fp, fr := f.full(t)
	if len(fp) != fullPrimaryStatements || len(fr) != fullPrimaryStatements-1 {
		t.Fatalf("full probe: primary %d statements %q, replica %d %q", len(fp), fp, len(fr), fr)
	}
	if full.ReusedFacts() {
		t.Fatal("Discover reused facts")
	}
	// The first routine probe has nothing to reuse.
	if _, p, r := f.routine(t); len(p) != fullPrimaryStatements || len(r) != fullPrimaryStatements-1 {
		t.Fatalf("first routine probe: primary %q, replica %q", p, r)
	}
	f.clock = f.clock.Add(FactsMaxAge / 2)
	snap, p, r := f.routine(t)
	if len(p) != routineStatements || len(r) != routineStatements {
		t.Fatalf("routine probe: primary %d statements %q, replica %d %q; want %d each", len(p), p, len(r), r, routineStatements)
	}
	t.Logf("statements per server: full probe %d (primary) / %d (replica), routine probe %d / %d", len(fp), len(fr), len(p), len(r))
	for _, s := range slices.Concat(p, r) {
		for _, slow := range []string{"SHOW GRANTS", "SHOW SLAVE HOSTS", "PROCESSLIST", "USER_PRIVILEGES", "@@version"} {
			if strings.Contains(s, slow) {
				t.Errorf("routine probe sent %q", s)
			}
		}
	}
	if !snap.ReusedFacts() {
		t.Fatal("a routine probe's snapshot does not say it reused facts")
	}
	// The snapshot is the same as a full read's, apart from when the
	// slow facts were read.
	for i := range snap.Servers {
		got, want := snap.Servers[i], full.Servers[i]
		if got.FactsFrom.IsZero() {
			t.Errorf("%s: facts not marked as reused", got.Spec.Address)
		}
		if got.Dialect != want.Dialect || got.VersionRaw != want.VersionRaw || !slices.Equal(got.Privileges, want.Privileges) ||
			got.GrantsRead != want.GrantsRead || !slices.Equal(got.PrivilegedAccounts, want.PrivilegedAccounts) ||
			!slices.Equal(got.ConnectedReplicas, want.ConnectedReplicas) || got.Role != want.Role || got.Source != want.Source {
			t.Errorf("%s: routine view differs from a full read:\n%+v\n%+v", got.Spec.Address, got.ServerState, want.ServerState)
		}
	}
	if p, _ := snap.Server(f.primary.Addr()); len(p.PrivilegedAccounts) != 1 || len(p.ConnectedReplicas) != 1 || !p.GrantsRead {
		t.Fatalf("primary's slow facts: %+v", p.ServerState)
	}
	// The fresh facts are fresh: a change of read_only... is covered
	// below; here the GTID position a detector compares.
	st := mariaState("1", false)
	st.Vars["gtid_binlog_pos"], st.Vars["gtid_current_pos"] = "0-1-11", "0-1-11"
	f.primary.SetState(withReplicaHost(st, f.replica.Addr()))
	snap, p, _ = f.routine(t)
	if v, _ := snap.Server(f.primary.Addr()); len(p) != routineStatements || v.GTIDBinlogPos.String() != "0-1-11" {
		t.Fatalf("routine probe after a write: %d statements, gtid_binlog_pos %s", len(p), v.GTIDBinlogPos)
	}
}

// isFull says whether a server got a full probe (its version read).
func isFull(stmts []string) bool { return slices.Contains(stmts, VersionQuery) }

func TestSlowFactsRefreshed(t *testing.T) {
	f := newFactsFixture(t)
	f.routine(t)
	step := func(name string, wantFull bool, change func()) {
		t.Helper()
		change()
		_, p, _ := f.routine(t)
		if isFull(p) != wantFull {
			t.Fatalf("%s: full read %v, want %v (statements %q)", name, isFull(p), wantFull, p)
		}
	}
	tick := func() { f.clock = f.clock.Add(time.Second) }
	set := func(mut func(*fakeserver.State)) func() {
		return func() {
			tick()
			st := withReplicaHost(mariaState("1", false), f.replica.Addr())
			st.Status["Uptime"] = "2000"
			mut(&st)
			f.primary.SetState(st)
		}
	}
	step("within the bound", false, tick)
	// New grants show after the bound at the latest.
	set(func(st *fakeserver.State) { st.Grants = []string{"GRANT SELECT ON *.* TO `myha`@`%`"} })()
	snap, _, _ := f.routine(t)
	if v, _ := snap.Server(f.primary.Addr()); !slices.Contains(v.Privileges, "SUPER") {
		t.Fatalf("within the bound the cached grants are used: %v", v.Privileges)
	}
	step("after the bound", true, func() { f.clock = f.clock.Add(FactsMaxAge) })
	snap, _, _ = f.routine(t)
	if v, _ := snap.Server(f.primary.Addr()); !slices.Equal(v.Privileges, []string{"SELECT"}) {
		t.Fatalf("after the bound the grants are read again: %v", v.Privileges)
	}
	step("same server again", false, tick)
	step("server_id changed", true, set(func(st *fakeserver.State) { st.Vars["server_id"] = "9" }))
	step("same server again", false, set(func(st *fakeserver.State) { st.Vars["server_id"] = "9" }))
	step("restarted (Uptime reset)", true, set(func(st *fakeserver.State) { st.Vars["server_id"] = "9"; st.Status["Uptime"] = "1" }))
	f.clock = f.clock.Add(5 * time.Second)
	step("up since the last read", false, set(func(st *fakeserver.State) { st.Vars["server_id"] = "9"; st.Status["Uptime"] = "7" }))
	// read_only flips (a promotion or a demotion): privileged accounts
	// are read on writable servers only, so everything is read again.
	step("read_only changed", true, set(func(st *fakeserver.State) {
		st.Vars["server_id"] = "9"
		st.Vars["read_only"] = "ON"
		st.Status["Uptime"] = "9"
	}))
	step("reconnected", true, func() { tick(); f.dialer.reconnect(f.primary.Addr()) })
	step("same session again", false, tick)
	f.dialer.setDown(f.primary.Addr(), true)
	snap = DiscoverRoutine(context.Background(), f.spec, f.dialer, f.facts)
	if v, _ := snap.Server(f.primary.Addr()); v.Reachable {
		t.Fatal("a server that refuses connections is reachable")
	}
	if f.facts.Len() != 1 {
		t.Fatalf("an unreachable server keeps its facts (%d entries)", f.facts.Len())
	}
	f.dialer.mu.Lock()
	f.dialer.down[f.primary.Addr()] = false
	f.dialer.mu.Unlock()
	step("back after being unreachable", true, tick)
}

// Every path that plans or runs a failover (myha check, failover and
// switchover in the CLI, the executor's rediscovery, the daemon's plan)
// calls Discover, which reads everything on every server, even on
// sessions a routine probe keeps and with facts cached for them.
func TestDiscoverReadsEverythingFresh(t *testing.T) {
	f := newFactsFixture(t)
	f.routine(t)
	if _, p, _ := f.routine(t); isFull(p) {
		t.Fatal("the fixture does not reuse facts")
	}
	snap, p, r := f.full(t)
	if len(p) != fullPrimaryStatements || len(r) != fullPrimaryStatements-1 || snap.ReusedFacts() {
		t.Fatalf("Discover after routine probes: primary %q, replica %q, reused %v", p, r, snap.ReusedFacts())
	}
	// And it sees a change at once, where the routine probe would not yet.
	st := withReplicaHost(mariaState("1", false), f.replica.Addr())
	st.Grants = []string{"GRANT SELECT ON *.* TO `myha`@`%`"}
	f.primary.SetState(st)
	snap, _, _ = f.full(t)
	if v, _ := snap.Server(f.primary.Addr()); !slices.Equal(v.Privileges, []string{"SELECT"}) {
		t.Fatalf("Discover read cached grants: %v", v.Privileges)
	}
}

// The README promises four statements per routine probe of a MySQL
// server with a short gtid_executed: variables and status as two SHOWs,
// replica status and binlog position; a fifth reads gtid_executed whole
// only when it may have been cut (TestProbeReadsLongGTIDSetsWhole). FAKE
// server.
func TestRoutineProbeSendsFourStatementsToMySQL(t *testing.T) {
	s, err := fakeserver.Start("myha", "pw", mysqlState("1", uuidP, uuidP+":1-10", false))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	spec := ClusterSpec{Name: "c", Credentials: Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second,
		Servers: []ServerSpec{{Address: s.Addr()}}}
	dialer := &keepDialer{inner: SQLDialer{Credentials: spec.Credentials, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second},
		open: map[string]Querier{}, down: map[string]bool{}}
	defer dialer.closeAll()
	facts := NewFactsCache(FactsMaxAge, func() time.Time { return clock })
	var last []string
	for range 2 {
		n := len(s.Statements())
		snap := DiscoverRoutine(context.Background(), spec, dialer, facts)
		if v := snap.Servers[0]; !v.Reachable || v.Error != "" {
			t.Fatalf("probe: %q", v.Error)
		}
		last = probeStatements(s.Statements()[n:])
		clock = clock.Add(time.Second)
	}
	if len(last) != 4 {
		t.Fatalf("routine probe of a MySQL server sent %d statements %q, want 4", len(last), last)
	}
}
