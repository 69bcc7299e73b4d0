package failover

import (
	"strings"
	"testing"

	"github.com/myha/myha/topology"
)

func findChecks(cs []Check, name string) []Check {
	var out []Check
	for _, c := range cs {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func TestTLSChecks(t *testing.T) {
	ssl := func(verify bool) srvOpt {
		return func(s *topology.ServerState) { s.Replication[0].SSL, s.Replication[0].SSLVerifyHost = true, verify }
	}
	snap := snapshot(server("db1:3306", 1, "0-1-5", writable),
		server("db2:3306", 2, "0-1-5", replicaOf("db1:3306", 1, ""), ssl(true)),
		server("db3:3306", 3, "0-1-5", replicaOf("db1:3306", 1, "")),
		server("db4:3306", 4, "0-1-5", replicaOf("db1:3306", 1, ""), ssl(false)))
	session := map[string]string{"db1:3306": "TLSv1.3", "db2:3306": ""}
	for _, tc := range []struct {
		mode       topology.TLSMode
		modeStatus Status
		repl       map[string]Status // per server; nil: no replication_tls check
	}{
		{topology.TLSDisabled, Warn, nil},
		{topology.TLSPreferred, Warn, nil},
		{topology.TLSRequired, OK, map[string]Status{"db2:3306": OK, "db3:3306": Warn, "db4:3306": OK}},
		{topology.TLSVerifyFull, OK, map[string]Status{"db2:3306": OK, "db3:3306": Warn, "db4:3306": Warn}},
	} {
		cs := RunChecks(CheckInput{Snapshot: snap, Policy: pol, TLS: tc.mode, SessionTLS: session})
		tl := findChecks(cs, "tls")
		if len(tl) != 3 || tl[0].Server != "" || tl[0].Status != tc.modeStatus || !strings.Contains(tl[0].Message, string(tc.mode)) {
			t.Fatalf("%s: tls checks %+v", tc.mode, tl)
		}
		if tl[1].Server != "db1:3306" || tl[1].Status != OK || tl[2].Server != "db2:3306" || tl[2].Status != Warn {
			t.Fatalf("%s: per-server sessions %+v", tc.mode, tl[1:])
		}
		got := map[string]Status{}
		for _, c := range findChecks(cs, "replication_tls") {
			got[c.Server] = c.Status
		}
		if len(got) != len(tc.repl) {
			t.Fatalf("%s: replication_tls %v, want %v", tc.mode, got, tc.repl)
		}
		for srv, st := range tc.repl {
			if got[srv] != st {
				t.Fatalf("%s: replication_tls %v, want %v", tc.mode, got, tc.repl)
			}
		}
	}
}
