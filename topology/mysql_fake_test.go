package topology

// These tests use test/fakeserver, a FAKE server speaking the MySQL wire
// protocol: no MySQL 8 server package exists on this platform, so the MySQL
// 8.4 dialect is checked here against scripted state. MariaDB is tested on
// real servers in test/integration.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/fakeserver"
)

const (
	uuidP = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidR = "4e11fa47-71ca-11e1-9e33-c80aa9429563"
)

var mysqlReplicaCols = []string{"Replica_IO_State", "Source_Host", "Source_User", "Source_Port", "Connect_Retry",
	"Source_Log_File", "Read_Source_Log_Pos", "Relay_Source_Log_File", "Exec_Source_Log_Pos",
	"Replica_IO_Running", "Replica_SQL_Running", "Last_IO_Errno", "Last_IO_Error", "Last_SQL_Errno", "Last_SQL_Error",
	"Seconds_Behind_Source", "Source_Server_Id", "Source_UUID", "Replica_SQL_Running_State",
	"Retrieved_Gtid_Set", "Executed_Gtid_Set", "Auto_Position", "Channel_Name"}

func mysqlState(id, uuid, executed string, readOnly bool) fakeserver.State {
	ro := "OFF"
	if readOnly {
		ro = "ON"
	}
	return fakeserver.State{
		Version: "8.4.3", Comment: "MySQL Community Server - GPL",
		Vars: map[string]string{"server_id": id, "server_uuid": uuid, "read_only": ro, "super_read_only": ro,
			"log_bin": "ON", "log_replica_updates": "ON", "binlog_format": "ROW", "gtid_mode": "ON",
			"gtid_executed": executed, "enforce_gtid_consistency": "ON"},
		Status:         map[string]string{"Uptime": "100"},
		ReplicaColumns: mysqlReplicaCols,
		BinlogFile:     "binlog.000002", BinlogPos: 1234,
	}
}

func replicaOf(st fakeserver.State, src *fakeserver.Server, srcID, executed string, sqlRunning bool) fakeserver.State {
	host, port, _ := strings.Cut(src.Addr(), ":")
	running := "Yes"
	if !sqlRunning {
		running = "No"
		st.NullColumns = []string{"Seconds_Behind_Source"}
	}
	st.ReplicaRows = []map[string]string{{
		"Source_Host": host, "Source_Port": port, "Source_Server_Id": srcID, "Source_UUID": uuidP,
		"Replica_IO_Running": "Yes", "Replica_SQL_Running": running, "Seconds_Behind_Source": "0",
		"Retrieved_Gtid_Set": executed, "Executed_Gtid_Set": executed, "Auto_Position": "1", "Channel_Name": "",
		"Last_IO_Errno": "0", "Last_SQL_Errno": "0", "Last_IO_Error": "", "Last_SQL_Error": "",
	}}
	return st
}

func TestMySQL84DiscoveryOnFakeServers(t *testing.T) {
	primary, err := fakeserver.Start("myha", "pw", mysqlState("1", uuidP, uuidP+":1-100", false))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	good, _ := fakeserver.Start("myha", "pw", replicaOf(mysqlState("2", uuidR, uuidP+":1-100", true), primary, "1", uuidP+":1-100", true))
	defer good.Close()
	errant := uuidP + ":1-90," + uuidR + ":1-2"
	bad, _ := fakeserver.Start("myha", "pw", replicaOf(mysqlState("3", uuidR, errant, true), primary, "1", errant, false))
	defer bad.Close()

	spec := ClusterSpec{Name: "my", Credentials: Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second,
		Servers: []ServerSpec{{Address: primary.Addr()}, {Address: good.Addr()}, {Address: bad.Addr()}}}
	snap := Discover(context.Background(), spec, SQLDialer{Credentials: spec.Credentials, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second})

	if snap.Primary != primary.Addr() {
		t.Fatalf("primary %q, want %s; problems %v", snap.Primary, primary.Addr(), snap.Problems)
	}
	g, _ := snap.Server(good.Addr())
	b, _ := snap.Server(bad.Addr())
	if g.Role != RoleReplica || len(g.Errant) != 0 || !g.SuperReadOnly {
		t.Fatalf("good replica: role %s errant %v problems %v", g.Role, g.Errant, g.Problems)
	}
	if len(b.Errant) != 1 || b.Errant[0] != uuidR+":1-2" {
		t.Fatalf("errant set %v, want %s:1-2", b.Errant, uuidR)
	}
	c, _ := b.PrimaryConn()
	if c.SQLRunning || c.LagSeconds != nil || c.UsingGTID != "Auto_Position" {
		t.Fatalf("stopped replica connection: %+v", c)
	}
	if p, _ := snap.Server(primary.Addr()); p.BinlogCoord.String() != "binlog.000002:1234" {
		t.Fatalf("binlog coordinate %q", p.BinlogCoord)
	}
	// MySQL 8.4 removed SHOW SLAVE STATUS, SHOW MASTER STATUS and SHOW SLAVE
	// HOSTS: the dialect must not send them.
	for _, q := range good.Statements() {
		for _, gone := range []string{"SHOW SLAVE STATUS", "SHOW MASTER STATUS", "SHOW SLAVE HOSTS", "SHOW ALL SLAVES"} {
			if strings.EqualFold(q, gone) {
				t.Errorf("sent %q to MySQL 8.4", q)
			}
		}
	}
	if !slices.Contains(good.Statements(), "SHOW REPLICA STATUS") || !slices.Contains(primary.Statements(), "SHOW BINARY LOG STATUS") {
		t.Fatalf("statements: %q", good.Statements())
	}
}

func TestUnreachableServerOnFakeCluster(t *testing.T) {
	primary, _ := fakeserver.Start("myha", "pw", mysqlState("1", uuidP, uuidP+":1-5", false))
	defer primary.Close()
	spec := ClusterSpec{Name: "my", Credentials: Credentials{User: "myha", Password: "wrong"}, ConnectTimeout: time.Second, ReadTimeout: time.Second,
		Servers: []ServerSpec{{Address: primary.Addr()}}}
	snap := Discover(context.Background(), spec, SQLDialer{Credentials: spec.Credentials, ConnectTimeout: time.Second, ReadTimeout: time.Second})
	v := snap.Servers[0]
	if v.Reachable || !v.Answered || !strings.Contains(v.Error, "1045") {
		t.Fatalf("wrong password: reachable=%v error=%q", v.Reachable, v.Error)
	}
	if strings.Contains(v.Error, "wrong") {
		t.Fatal("error message contains the password")
	}
}

// Servers cut a long variable value in SHOW GLOBAL VARIABLES and its
// tables (MySQL 5.7+ at 1,024 characters, MariaDB at 4,096; the fake cuts
// as they do), and a GTID set of many sources with gaps is longer: the
// probe reads the positions whole from @@GLOBAL. (MariaDB is also shown on
// real servers: TestProbeReadsLongGTIDPositionsWhole.)
func TestProbeReadsLongGTIDSetsWhole(t *testing.T) {
	var my, maria []string
	for i := range 60 {
		my = append(my, fmt.Sprintf("%08x-71ca-11e1-9e33-c80aa9429562:1-%d:%d-%d", i, 10+i, 20+i, 90+i))
	}
	for i := range 400 {
		maria = append(maria, fmt.Sprintf("%d-1-%d", 1000*(i+1), 5+i))
	}
	myState := mysqlState("1", uuidP, strings.Join(my, ","), false)
	mariaState := mariaState("1", false)
	for _, v := range []string{"gtid_binlog_pos", "gtid_binlog_state", "gtid_current_pos"} {
		mariaState.Vars[v] = strings.Join(maria, ",")
	}
	mariaState.Vars["gtid_slave_pos"] = ""
	for _, tc := range []struct {
		name  string
		st    fakeserver.State
		width int
		got   func(ServerState) string
	}{
		{"MySQL gtid_executed", myState, 1024, func(s ServerState) string { return s.GTIDExecuted.String() }},
		{"MariaDB gtid_binlog_pos", mariaState, 4096, func(s ServerState) string { return s.GTIDBinlogPos.String() }},
	} {
		raw := tc.st.Vars["gtid_executed"] + tc.st.Vars["gtid_binlog_pos"]
		if len(raw) <= tc.width {
			t.Fatalf("%s: fixture of %d bytes is not longer than the cut at %d", tc.name, len(raw), tc.width)
		}
		s, err := fakeserver.Start("myha", "pw", tc.st)
		if err != nil {
			t.Fatal(err)
		}
		st := Probe(context.Background(), SQLDialer{Credentials: Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second}, ServerSpec{Address: s.Addr()})
		s.Close()
		if st.Error != "" {
			t.Fatalf("%s: probe error %.200q", tc.name, st.Error)
		}
		if got := tc.got(st); got != raw {
			t.Fatalf("%s: probe read %d bytes, want all %d", tc.name, len(got), len(raw))
		}
	}
}
