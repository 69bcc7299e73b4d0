package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/binlog"
)

var mariadb = Dialect{Flavor: binlog.MariaDB, Major: 10, Minor: 11, Patch: 19}

// srv makes a reachable MariaDB server state for table tests.
func srv(addr string, id uint32, readOnly bool, binlogPos, slavePos string) ServerState {
	return ServerState{
		Spec: ServerSpec{Address: addr}, Reachable: true, Dialect: mariadb, ServerID: id, ReadOnly: readOnly,
		LogBin: true, LogReplicaUpd: true,
		GTIDBinlogPos: binlog.MustParseMariaDBPos(binlogPos), GTIDSlavePos: binlog.MustParseMariaDBPos(slavePos),
		GTIDCurrentPos: binlog.MustParseMariaDBPos(binlogPos),
	}
}

func from(s ServerState, host string, port int, srcID uint32) ServerState {
	s.Replication = append(s.Replication, ReplicaConn{SourceHost: host, SourcePort: port, SourceServerID: srcID,
		IOState: "Yes", SQLRunning: true, UsingGTID: "Slave_Pos"})
	return s
}

func roles(s Snapshot) string {
	var out []string
	for _, v := range s.Servers {
		out = append(out, string(v.Role))
	}
	return strings.Join(out, ",")
}

func TestBuildRoles(t *testing.T) {
	for _, tc := range []struct {
		name        string
		states      []ServerState
		roles       string
		primary     string
		problemLike string
	}{
		{
			name: "primary and two replicas",
			states: []ServerState{
				srv("10.0.0.1:3306", 1, false, "0-1-10", ""),
				from(srv("10.0.0.2:3306", 2, true, "0-1-10", "0-1-10"), "10.0.0.1", 3306, 1),
				from(srv("10.0.0.3:3306", 3, true, "0-1-9", "0-1-9"), "10.0.0.1", 3306, 1),
			},
			roles: "primary,replica,replica", primary: "10.0.0.1:3306",
		},
		{
			name: "source known by another name, matched by server_id",
			states: []ServerState{
				srv("db1:3306", 1, false, "0-1-10", ""),
				from(srv("db2:3306", 2, true, "0-1-10", "0-1-10"), "10.9.9.9", 3306, 1),
			},
			roles: "primary,replica", primary: "db1:3306",
		},
		{
			name: "intermediate",
			states: []ServerState{
				srv("a:1", 1, false, "0-1-10", ""),
				from(srv("b:1", 2, true, "0-1-10", "0-1-10"), "a", 1, 1),
				from(srv("c:1", 3, true, "0-1-10", "0-1-10"), "b", 1, 2),
			},
			roles: "primary,intermediate,replica", primary: "a:1",
		},
		{
			name: "co-primary pair with a replica",
			states: []ServerState{
				from(srv("a:1", 1, false, "0-1-10", "0-2-3"), "b", 1, 2),
				from(srv("b:1", 2, true, "0-1-10", "0-1-10"), "a", 1, 1),
				from(srv("c:1", 3, true, "0-1-10", "0-1-10"), "a", 1, 1),
			},
			roles: "primary,co-primary,replica", primary: "a:1",
		},
		{
			name: "co-primaries both writable",
			states: []ServerState{
				from(srv("a:1", 1, false, "0-1-10", ""), "b", 1, 2),
				from(srv("b:1", 2, false, "0-1-10", "0-1-10"), "a", 1, 1),
			},
			roles: "unknown,unknown", problemLike: "both writable",
		},
		{
			name: "two writable servers",
			states: []ServerState{
				srv("a:1", 1, false, "0-1-10", ""),
				from(srv("b:1", 2, false, "0-1-10", "0-1-10"), "a", 1, 1),
			},
			roles: "primary,replica", primary: "a:1", problemLike: "2 writable servers",
		},
		{
			name: "replica of an outside server",
			states: []ServerState{
				srv("a:1", 1, false, "0-1-10", ""),
				from(srv("b:1", 2, true, "0-1-10", "0-1-10"), "a", 1, 1),
				from(srv("c:1", 3, true, "0-1-10", "0-1-10"), "elsewhere", 1, 99),
			},
			roles: "primary,replica,unknown", primary: "a:1",
		},
		{
			name: "cycle of three",
			states: []ServerState{
				from(srv("a:1", 1, false, "0-1-10", ""), "c", 1, 3),
				from(srv("b:1", 2, true, "0-1-10", ""), "a", 1, 1),
				from(srv("c:1", 3, true, "0-1-10", ""), "b", 1, 2),
			},
			roles: "unknown,unknown,unknown", problemLike: "no primary",
		},
		{
			name: "dead primary is still the primary",
			states: []ServerState{
				{Spec: ServerSpec{Address: "a:1"}, Error: "connection refused"},
				func() ServerState {
					s := from(srv("b:1", 2, true, "0-1-10", "0-1-10"), "a", 1, 1)
					s.Replication[0].IOState = "Connecting"
					return s
				}(),
			},
			roles: "primary,replica", primary: "a:1", problemLike: "primary a:1 is unreachable",
		},
		{
			name: "two trees",
			states: []ServerState{
				srv("a:1", 1, false, "0-1-10", ""),
				from(srv("b:1", 2, true, "0-1-10", "0-1-10"), "a", 1, 1),
				srv("c:1", 3, false, "0-3-10", ""),
				from(srv("d:1", 4, true, "0-3-10", "0-3-10"), "c", 1, 3),
			},
			roles: "unknown,unknown,unknown,unknown", problemLike: "2 separate replication trees",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Build("c", tc.states, time.Time{})
			if got := roles(s); got != tc.roles {
				t.Errorf("roles %s, want %s (problems %v)", got, tc.roles, s.Problems)
			}
			if s.Primary != tc.primary {
				t.Errorf("primary %q, want %q", s.Primary, tc.primary)
			}
			if tc.problemLike != "" && !strings.Contains(strings.Join(s.Problems, "|"), tc.problemLike) {
				t.Errorf("problems %q lack %q", s.Problems, tc.problemLike)
			}
		})
	}
}

func TestBuildErrantAndUnlisted(t *testing.T) {
	p := srv("a:1", 1, false, "0-1-10", "")
	p.ConnectedReplicas = []ConnectedReplica{{ServerID: 2, Host: "b", Port: 1}, {ServerID: 77, Host: "x", Port: 3306}}
	s := Build("c", []ServerState{p, from(srv("b:1", 2, true, "0-2-11", "0-1-10"), "a", 1, 1)}, time.Time{})
	b, _ := s.Server("b:1")
	if len(b.Errant) != 1 || b.Errant[0] != "0-2-11" {
		t.Fatalf("errant %v, want [0-2-11]", b.Errant)
	}
	if len(s.Unlisted) != 1 || s.Unlisted[0].ServerID != 77 {
		t.Fatalf("unlisted %+v", s.Unlisted)
	}
}

func TestConnProblems(t *testing.T) {
	c := ReplicaConn{IOState: "Connecting", LastIOErrno: 1045, LastIOError: "Access denied", UsingGTID: "No"}
	got := strings.Join(connProblems(c), "|")
	for _, want := range []string{"cannot connect", "1045", "SQL thread not running", "not GTID"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

// With the primary dead, a replica's own local write is still errant unless
// another server holds it (an earlier primary's writes, replicated).
func TestBuildErrantWithDeadPrimary(t *testing.T) {
	dead := ServerState{Spec: ServerSpec{Address: "db1:3306"}, Error: "connection refused"}
	states := []ServerState{
		dead,
		// db2 wrote 0-2-11 locally after replicating 0-1-10: errant.
		from(srv("db2:3306", 2, true, "0-2-11", "0-1-10"), "db1", 3306, 1),
		// db3 is clean; it also holds an old write of db4's (0-4-5, when db4
		// was primary), which is therefore not errant on db4.
		from(srv("db3:3306", 3, true, "0-1-12", "0-1-12"), "db1", 3306, 1),
		from(srv("db4:3306", 4, true, "1-4-5", "0-1-9"), "db1", 3306, 1),
	}
	states[2].GTIDSlavePos = binlog.MustParseMariaDBPos("0-1-12,1-4-5")
	s := Build("c", states, time.Time{})
	if v, _ := s.Server("db2:3306"); len(v.Errant) != 1 || v.Errant[0] != "0-2-11" {
		t.Fatalf("db2 errant %v, want [0-2-11]", v.Errant)
	}
	for _, a := range []string{"db3:3306", "db4:3306"} {
		if v, _ := s.Server(a); len(v.Errant) != 0 {
			t.Fatalf("%s errant %v, want none", a, v.Errant)
		}
	}
}

// A dead active co-primary: the pair and its dialect come from memory.
func TestWithMemoryRestoresPairAndDialect(t *testing.T) {
	states := []ServerState{
		from(srv("db1:3306", 1, false, "0-1-10", "0-2-3"), "db2", 3306, 2),
		from(srv("db2:3306", 2, true, "0-1-10", "0-1-10"), "db1", 3306, 1),
		from(srv("db3:3306", 3, true, "0-1-10", "0-1-10"), "db1", 3306, 1),
	}
	states[0].SemiSync.SourceEnabled = true
	alive := Build("c", states, time.Time{})
	m, ok := Remember(&alive)
	if !ok || m.CoPrimary != "db2:3306" || !m.SemiSync || m.Flavor != "mariadb" {
		t.Fatalf("memory of a live pair: %+v %v", m, ok)
	}
	states[0] = ServerState{Spec: ServerSpec{Address: "db1:3306"}, Error: "refused"}
	dead := Build("c", states, time.Time{})
	if p, _ := dead.Server("db1:3306"); p.CoPrimaryOf != "" || p.Dialect.Flavor != "" {
		t.Fatalf("a dead primary should not know its pair by itself: %+v", p)
	}
	got := dead.WithMemory(m)
	p, _ := got.Server("db1:3306")
	c, _ := got.Server("db2:3306")
	if p.CoPrimaryOf != "db2:3306" || c.CoPrimaryOf != "db1:3306" || !p.SemiSync.SourceEnabled || !p.Dialect.IsMariaDB() || !p.Remembered {
		t.Fatalf("with memory: primary %+v passive %+v", p.CoPrimaryOf, c.CoPrimaryOf)
	}
	if q, _ := dead.Server("db1:3306"); q.Remembered {
		t.Fatal("WithMemory changed the original snapshot")
	}
}

// MySQL: with the primary dead, a replica's transactions under its own
// server_uuid that no other server holds are errant; those another
// replica holds (it was primary once) are not.
func TestLocalErrantMySQL(t *testing.T) {
	const own = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	const other = "4e11fa47-71ca-11e1-9e33-c80aa9429562"
	my := Dialect{Flavor: binlog.MySQL, Major: 8, Minor: 0, Patch: 36}
	r := &ServerState{Dialect: my, ServerUUID: own,
		GTIDExecuted: binlog.MustParseMySQLSet(other + ":1-100," + own + ":1-7")}
	peer := &ServerState{Dialect: my, GTIDExecuted: binlog.MustParseMySQLSet(other + ":1-100," + own + ":1-5")}
	got := localErrant(r, []*ServerState{peer})
	if len(got) != 1 || got[0] != own+":6-7" {
		t.Fatalf("errant %v, want [%s:6-7]", got, own)
	}
	if got := localErrant(r, nil); len(got) != 1 || got[0] != own+":1-7" {
		t.Fatalf("with no other server: %v", got)
	}
}
