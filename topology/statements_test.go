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

// With a verified TLS mode every repoint makes the replica connect with TLS
// and verify its source as the mode says; the CA path is a quoted literal
// (a path with a quote or backslash cannot break out of it).
func TestRepointCarriesReplicationTLS(t *testing.T) {
	maria := Dialect{Flavor: binlog.MariaDB, Major: 10, Minor: 11, Patch: 19}
	my84 := Dialect{Flavor: binlog.MySQL, Major: 8, Minor: 4, Patch: 3}
	my80 := Dialect{Flavor: binlog.MySQL, Major: 8, Minor: 0, Patch: 20}
	base := Source{Host: "db2", Port: 3306, User: "repl", Password: "pw"}
	ca := `/etc/myha/it's\ca.pem`
	with := func(m TLSMode, caFile string) Source { s := base; s.TLS = TLSSpec{Mode: m, CAFile: caFile}; return s }
	const mariaBase = "CHANGE MASTER TO MASTER_HOST='db2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='pw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1"
	const my84Base = "CHANGE REPLICATION SOURCE TO SOURCE_HOST='db2', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='pw', SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1"
	for _, tc := range []struct {
		name      string
		got, want string
	}{
		{"MariaDB disabled", maria.ChangeSource("", with(TLSDisabled, "")), mariaBase},
		{"MariaDB preferred leaves the replica's setting", maria.ChangeSource("", with(TLSPreferred, ca)), mariaBase},
		{"MariaDB required", maria.ChangeSource("", with(TLSRequired, "")), mariaBase + ", MASTER_SSL=1, MASTER_SSL_VERIFY_SERVER_CERT=0"},
		{"MariaDB verify-ca", maria.ChangeSource("", with(TLSVerifyCA, ca)), mariaBase + `, MASTER_SSL=1, MASTER_SSL_CA='/etc/myha/it''s\\ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=0`},
		{"MariaDB verify-full", maria.ChangeSource("", with(TLSVerifyFull, "/ca.pem")), mariaBase + ", MASTER_SSL=1, MASTER_SSL_CA='/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1"},
		{"MariaDB named connection", maria.ChangeSource("east", with(TLSVerifyFull, "/ca.pem")), strings.Replace(mariaBase, "CHANGE MASTER TO", "CHANGE MASTER 'east' TO", 1) + ", MASTER_SSL=1, MASTER_SSL_CA='/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1"},
		{"MySQL 8.4 preferred keeps the key exchange", my84.ChangeSource("", with(TLSPreferred, "")), my84Base + ", GET_SOURCE_PUBLIC_KEY=1"},
		{"MySQL 8.4 verify-full, over TLS no key exchange", my84.ChangeSource("c1", with(TLSVerifyFull, "/ca.pem")), my84Base + ", SOURCE_SSL=1, SOURCE_SSL_CA='/ca.pem', SOURCE_SSL_VERIFY_SERVER_CERT=1 FOR CHANNEL 'c1'"},
		{"MySQL 8.0.20 verify-ca", my80.ChangeSource("", with(TLSVerifyCA, "/ca.pem")), "CHANGE MASTER TO MASTER_HOST='db2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='pw', MASTER_AUTO_POSITION=1, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1, MASTER_SSL=1, MASTER_SSL_CA='/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=0"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.name, tc.got, tc.want)
		}
	}
	// Repoint, the one list every demotion and repoint uses, carries it.
	stmts := maria.Repoint("", with(TLSVerifyFull, "/ca.pem"))
	if len(stmts) != 3 || !strings.HasSuffix(stmts[1], "MASTER_SSL=1, MASTER_SSL_CA='/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1") {
		t.Fatalf("Repoint: %q", stmts)
	}
}
