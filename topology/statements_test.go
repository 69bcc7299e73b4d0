package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/binlog"
)

func TestStatementsPerFlavor(t *testing.T) {
	maria := Dialect{Flavor: binlog.MariaDB, Major: 10, Minor: 11, Patch: 19}
	old := Dialect{Flavor: binlog.MariaDB, Major: 10, Minor: 6, Patch: 1}
	my84 := Dialect{Flavor: binlog.MySQL, Major: 8, Minor: 4, Patch: 3}
	my80 := Dialect{Flavor: binlog.MySQL, Major: 8, Minor: 0, Patch: 20}
	src := Source{Host: "db2", Port: 3306, User: "repl", Password: "p'w", Demote: true}
	for _, tc := range []struct {
		got, want string
	}{
		{maria.StopReplicaIO(""), "STOP SLAVE IO_THREAD"},
		{maria.StopReplicaIO("east"), "STOP SLAVE 'east' IO_THREAD"},
		{my84.StopReplicaIO(""), "STOP REPLICA IO_THREAD"},
		{my80.StopReplica("c1"), "STOP SLAVE FOR CHANNEL 'c1'"},
		{maria.ResetReplicaAll(""), "RESET SLAVE ALL"},
		{my84.ResetReplicaAll(""), "RESET REPLICA ALL"},
		{maria.ChangeSource("", src), "CHANGE MASTER TO MASTER_HOST='db2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='p''w', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1, MASTER_DEMOTE_TO_SLAVE=1"},
		{old.ChangeSource("", src), "CHANGE MASTER TO MASTER_HOST='db2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='p''w', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1"},
		{my84.ChangeSource("", src), "CHANGE REPLICATION SOURCE TO SOURCE_HOST='db2', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='p''w', SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1, GET_SOURCE_PUBLIC_KEY=1"},
		{strings.Join(maria.SetReadOnly(true), ";"), "SET GLOBAL read_only=1"},
		{strings.Join(my84.SetReadOnly(false), ";"), "SET GLOBAL super_read_only=0;SET GLOBAL read_only=0"},
		{my84.SemiSyncPrimaryOn(), "SET GLOBAL rpl_semi_sync_source_enabled=1"},
		{maria.GetLock(strings.Repeat("x", 70)), "SELECT GET_LOCK('" + strings.Repeat("x", 64) + "', 0) AS r"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
	if q, ok := maria.WaitForGTID("0-1-5", 1500*time.Millisecond); q != "SELECT MASTER_GTID_WAIT('0-1-5', 1.500) AS r" || ok != "0" {
		t.Errorf("MariaDB wait: %s %s", q, ok)
	}
	if q, _ := my84.WaitForGTID("u:1-5", time.Second); !strings.HasPrefix(q, "SELECT WAIT_FOR_EXECUTED_GTID_SET('u:1-5'") {
		t.Errorf("MySQL wait: %s", q)
	}
}
