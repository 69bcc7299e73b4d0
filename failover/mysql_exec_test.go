package failover

// This test uses test/fakeserver, a FAKE server speaking the MySQL wire
// protocol: there is no MySQL 8 server package on this platform, so the
// MySQL 8.4 statement sequence of a failover is checked against scripted
// servers that record what they receive. MariaDB failovers run on real
// servers in test/integration.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/topology"
)

const fu = "3e11fa47-71ca-11e1-9e33-c80aa9429562"

var fakeReplicaCols = []string{"Source_Host", "Source_Port", "Source_Server_Id", "Replica_IO_Running", "Replica_SQL_Running",
	"Seconds_Behind_Source", "Retrieved_Gtid_Set", "Executed_Gtid_Set", "Auto_Position", "Channel_Name", "Last_SQL_Error", "Last_IO_Error"}

func fakeMySQL(t *testing.T, id, executed string, source string, srcID string) *fakeserver.Server {
	st := fakeserver.State{Version: "8.4.3", Comment: "MySQL Community Server - GPL",
		Vars: map[string]string{"server_id": id, "server_uuid": "00000000-0000-0000-0000-00000000000" + id, "read_only": "ON", "super_read_only": "ON",
			"log_bin": "ON", "log_replica_updates": "ON", "gtid_mode": "ON", "gtid_executed": executed, "binlog_format": "ROW"},
		Status: map[string]string{}, ReplicaColumns: fakeReplicaCols, BinlogFile: "binlog.000001", BinlogPos: 4}
	host, port, _ := strings.Cut(source, ":")
	st.ReplicaRows = []map[string]string{{"Source_Host": host, "Source_Port": port, "Source_Server_Id": srcID,
		"Replica_IO_Running": "Connecting", "Replica_SQL_Running": "Yes", "Seconds_Behind_Source": "0",
		"Retrieved_Gtid_Set": executed, "Executed_Gtid_Set": executed, "Auto_Position": "1", "Channel_Name": "", "Last_SQL_Error": "", "Last_IO_Error": ""}}
	f, err := fakeserver.Start("myha", "pw", st)
	if err != nil {
		t.Fatal(err)
	}
	// After a repoint the fake reports what a real server would: both
	// threads running against the new source.
	f.OnQuery = func(q string) (*gomysql.Result, bool, error) {
		if strings.HasPrefix(q, "CHANGE REPLICATION SOURCE TO") {
			st := st
			row := map[string]string{}
			for k, v := range st.ReplicaRows[0] {
				row[k] = v
			}
			row["Replica_IO_Running"], row["Source_Server_Id"] = "Yes", "2"
			st.ReplicaRows = []map[string]string{row}
			f.SetState(st)
		}
		return nil, false, nil
	}
	return f
}

func TestMySQL84FailoverStatementsOnFakes(t *testing.T) {
	ctx := context.Background()
	const deadPrimary = "127.0.0.1:1" // nothing listens: a dead primary
	db2 := fakeMySQL(t, "2", fu+":1-100", deadPrimary, "1")
	defer db2.Close()
	db3 := fakeMySQL(t, "3", fu+":1-90", deadPrimary, "1")
	defer db3.Close()
	spec := topology.ClusterSpec{Name: "my", Credentials: topology.Credentials{User: "myha", Password: "pw"}, ConnectTimeout: time.Second, ReadTimeout: time.Second,
		Servers: []topology.ServerSpec{{Address: deadPrimary}, {Address: db2.Addr()}, {Address: db3.Addr()}}}
	d := topology.SQLDialer{Credentials: spec.Credentials, ConnectTimeout: time.Second, ReadTimeout: time.Second}
	snap := topology.Discover(ctx, spec, d)
	plan := Build(&snap, Policy{MaxLag: time.Minute, CatchupTimeout: 5 * time.Second}, Request{Kind: KindFailover})
	if !plan.OK() || plan.NewPrimary != db2.Addr() || plan.CatchUpFrom != "" {
		t.Fatalf("plan: %+v", plan)
	}
	ex := &Executor{Dialer: d, Repl: topology.Credentials{User: "repl", Password: "rpw"}, Policy: Policy{CatchupTimeout: 5 * time.Second}}
	rep := ex.Execute(ctx, &snap, &plan)
	if rep.Result != ResultSuccess {
		t.Fatalf("result %s: %s %v", rep.Result, rep.Error, rep.Steps)
	}
	changes := func(f *fakeserver.Server) []string {
		var out []string
		for _, q := range f.Statements() {
			up := strings.ToUpper(q)
			if strings.HasPrefix(up, "SHOW") || strings.HasPrefix(up, "SELECT @@") || strings.HasPrefix(up, "SELECT ID") || strings.HasPrefix(up, "SELECT 1") ||
				strings.HasPrefix(up, "SET SQL_MODE") { // the dialer pins every session's sql_mode
				continue
			}
			if strings.HasPrefix(up, "SELECT GET_LOCK") {
				q = "SELECT GET_LOCK"
			}
			if strings.HasPrefix(up, "SELECT WAIT_FOR_EXECUTED_GTID_SET") {
				q = "SELECT WAIT_FOR_EXECUTED_GTID_SET"
			}
			out = append(out, q)
		}
		return out
	}
	want2 := []string{"SELECT GET_LOCK", "STOP REPLICA IO_THREAD", "SELECT WAIT_FOR_EXECUTED_GTID_SET",
		"STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"}
	if got := changes(db2); !slices.Equal(got, want2) {
		t.Fatalf("new primary statements:\n got %q\nwant %q", got, want2)
	}
	want3 := []string{"SELECT GET_LOCK", "STOP REPLICA IO_THREAD", "STOP REPLICA",
		"CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=" + strings.Split(db2.Addr(), ":")[1] +
			", SOURCE_USER='repl', SOURCE_PASSWORD='rpw', SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1, GET_SOURCE_PUBLIC_KEY=1",
		"START REPLICA"}
	if got := changes(db3); !slices.Equal(got, want3) {
		t.Fatalf("repointed replica statements:\n got %q\nwant %q", got, want3)
	}
	for _, s := range rep.Steps {
		if strings.Contains(s.Note, "rpw") {
			t.Fatal("a step note shows the replication password")
		}
	}
}
