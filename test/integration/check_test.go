package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// CheckJSON is the part of `myha check --json` the tests read.
type CheckJSON struct {
	Clusters []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Checks []struct {
			Name, Status, Server, Message, Fix string
		} `json:"checks"`
		Plan PlanJSON `json:"plan"`
	} `json:"clusters"`
}

// PlanJSON is the part of a plan the tests read.
type PlanJSON struct {
	OldPrimary   string   `json:"old_primary"`
	NewPrimary   string   `json:"new_primary"`
	CatchUpFrom  string   `json:"catch_up_from"`
	Blockers     []string `json:"blockers"`
	LostReplicas []struct {
		Address, Reason string
	} `json:"lost_replicas"`
	Steps []struct {
		Kind, Server, Source string
	} `json:"steps"`
}

func check(t *testing.T, cfg string) (CheckJSON, int) {
	t.Helper()
	r := myha(t, "check", "--json", "--config", cfg)
	var c CheckJSON
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("check JSON (exit %d): %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	return c, r.code
}

// status returns the worst status of the named check on a server ("" = any).
func (c CheckJSON) status(name, server string) (string, string) {
	worst, msg := "", ""
	rank := map[string]int{"": 0, "ok": 1, "warn": 2, "fail": 3}
	for _, ch := range c.Clusters[0].Checks {
		if ch.Name == name && (server == "" || ch.Server == server) && rank[ch.Status] > rank[worst] {
			worst, msg = ch.Status, ch.Message
		}
	}
	return worst, msg
}

func (c CheckJSON) failures() []string {
	var out []string
	for _, ch := range c.Clusters[0].Checks {
		if ch.Status == "fail" {
			out = append(out, fmt.Sprintf("%s %s: %s", ch.Name, ch.Server, ch.Message))
		}
	}
	return out
}

func TestCheckHealthyLab(t *testing.T) {
	l := lab.New(t, lab.Options{Servers: 3})
	cfg := writeConfig(t, l)
	c, code := check(t, cfg)
	if code > 1 || c.Clusters[0].Status == "fail" {
		t.Fatalf("healthy lab: exit %d, failures %v", code, c.failures())
	}
	for _, name := range []string{"reachable", "single_writer", "replica_io_running", "replica_sql_running", "replication_lag",
		"server_id_unique", "server_uuid_unique", "log_bin", "log_slave_updates", "binlog_format_consistent",
		"replication_filters_consistent", "gtid_consistent", "errant_transactions", "replica_read_only", "candidate_available",
		"privileges", "detection_timeouts", "semi_sync", "durability", "version_compatibility", "vip"} {
		if st, _ := c.status(name, ""); st == "" {
			t.Errorf("check %s missing from the report", name)
		}
	}
	if p := c.Clusters[0].Plan; p.NewPrimary != l.Server("db2").Addr() || len(p.Blockers) != 0 {
		t.Fatalf("plan for a healthy lab: %+v", p)
	}
	// The text report ends with a verdict and names the plan.
	r := myha(t, "check", "--config", cfg)
	if r.code != code || !strings.Contains(r.stdout, "If the primary died now:") || !strings.Contains(r.stdout, "new primary: "+l.Server("db2").Addr()) {
		t.Fatalf("text report (exit %d):\n%s", r.code, r.stdout)
	}
}

// Each broken state, made for real, is reported by its check, on the right
// server, and makes `myha check` exit 2.
func TestCheckFindsRealProblems(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		breakf func(t *testing.T, l *lab.Lab) *lab.Server // returns the server the finding must name
		check  string
		status string
	}{
		{"stopped SQL thread", func(t *testing.T, l *lab.Lab) *lab.Server {
			must(t, l.Server("db2").Exec(ctx, "STOP SLAVE SQL_THREAD"))
			return l.Server("db2")
		}, "replica_sql_running", "fail"},
		{"writable replica", func(t *testing.T, l *lab.Lab) *lab.Server {
			must(t, l.Server("db3").Exec(ctx, "SET GLOBAL read_only=0"))
			return l.Server("db3")
		}, "replica_read_only", "fail"},
		{"errant transaction", func(t *testing.T, l *lab.Lab) *lab.Server {
			must(t, l.Server("db3").Exec(ctx, "SET GLOBAL read_only=0", "INSERT INTO lab.seed VALUES (7)", "SET GLOBAL read_only=1"))
			return l.Server("db3")
		}, "errant_transactions", "fail"},
		{"log_slave_updates off", func(t *testing.T, l *lab.Lab) *lab.Server {
			must(t, l.Server("db2").Restart(ctx, "--log-slave-updates=0"))
			return l.Server("db2")
		}, "log_slave_updates", "warn"},
		{"replication account cannot log in", func(t *testing.T, l *lab.Lab) *lab.Server {
			// sql_log_bin=0: the change must not itself become an errant transaction.
			must(t, l.Server("db3").Exec(ctx, "SET SESSION sql_log_bin=0", "ALTER USER 'repl'@'%' IDENTIFIED BY 'not-the-configured-one'"))
			return l.Server("db3")
		}, "privileges", "fail"},
		{"myha account without failover privileges", func(t *testing.T, l *lab.Lab) *lab.Server {
			must(t, l.Server("db2").Exec(ctx, "SET SESSION sql_log_bin=0",
				"REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'myha'@'%'",
				"GRANT SELECT, PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'myha'@'%'"))
			return l.Server("db2")
		}, "privileges", "fail"},
		{"two servers with the same server_id", func(t *testing.T, l *lab.Lab) *lab.Server {
			must(t, l.Server("db3").Restart(ctx, "--server-id=2"))
			return l.Server("db3")
		}, "server_id_unique", "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lab.New(t, lab.Options{Servers: 3})
			bad := tc.breakf(t, l)
			c, code := check(t, writeConfig(t, l))
			st, msg := c.status(tc.check, bad.Addr())
			if st != tc.status {
				t.Fatalf("%s on %s: %q (%s), want %s; failures: %v", tc.check, bad.Name, st, msg, tc.status, c.failures())
			}
			want := map[string]int{"fail": 2, "warn": 1}[tc.status]
			if code < want {
				t.Fatalf("exit %d, want at least %d", code, want)
			}
			t.Logf("%s %s: %s", tc.check, bad.Name, msg)
			// The others must not be blamed for it.
			for _, s := range l.Servers {
				if s == bad || tc.check == "server_id_unique" {
					continue
				}
				if st, msg := c.status(tc.check, s.Addr()); st == "fail" {
					t.Errorf("%s blamed %s too: %s", tc.check, s.Name, msg)
				}
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// behind makes db3 less advanced than db2: it stops replicating, then the
// primary writes.
func behind(t *testing.T, l *lab.Lab, s *lab.Server) {
	ctx := context.Background()
	must(t, s.Exec(ctx, "STOP SLAVE"))
	must(t, l.Server("db1").Exec(ctx, "CREATE TABLE lab.more (id INT PRIMARY KEY)", "INSERT INTO lab.more VALUES (1),(2)"))
	must(t, l.Server("db2").Exec(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", mustQ(t, l.Server("db1"), "SELECT @@gtid_binlog_pos"))))
}

func mustQ(t testing.TB, s *lab.Server, q string) string {
	t.Helper()
	v, err := s.QueryString(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPlanChoosesTheRightNewPrimary(t *testing.T) {
	t.Run("plain primary with two replicas", func(t *testing.T) {
		l := lab.New(t, lab.Options{Servers: 3})
		behind(t, l, l.Server("db3"))
		c, _ := check(t, writeConfig(t, l))
		if p := c.Clusters[0].Plan; p.NewPrimary != l.Server("db2").Addr() || p.CatchUpFrom != "" {
			t.Fatalf("plan: %+v", p)
		}
	})
	t.Run("candidate on the less advanced replica", func(t *testing.T) {
		l := lab.New(t, lab.Options{Servers: 3})
		db2, db3 := l.Server("db2"), l.Server("db3")
		behind(t, l, db3)
		cfg := writeConfigWith(t, l, l.Servers, map[*lab.Server]string{db3: "candidate: true"})
		c, _ := check(t, cfg)
		p := c.Clusters[0].Plan
		if p.NewPrimary != db3.Addr() || p.CatchUpFrom != db2.Addr() || !hasStepJSON(p, "catch_up", db3.Addr()) {
			t.Fatalf("plan: %+v", p)
		}
	})
	t.Run("no_master on the most advanced", func(t *testing.T) {
		l := lab.New(t, lab.Options{Servers: 3})
		db2, db3 := l.Server("db2"), l.Server("db3")
		behind(t, l, db3)
		cfg := writeConfigWith(t, l, l.Servers, map[*lab.Server]string{db2: "no_master: true"})
		c, _ := check(t, cfg)
		p := c.Clusters[0].Plan
		if p.NewPrimary != db3.Addr() || p.CatchUpFrom != db2.Addr() {
			t.Fatalf("plan: %+v", p)
		}
		// The dry run of a real failover says the same, and refuses because db1 lives.
		r := myha(t, "failover", "--dry-run", "--json", "--config", cfg)
		var out struct{ Plan PlanJSON }
		json.Unmarshal([]byte(r.stdout), &out)
		if r.code != 2 || out.Plan.NewPrimary != db3.Addr() || len(out.Plan.Blockers) == 0 || !strings.Contains(out.Plan.Blockers[0], "not dead") {
			t.Fatalf("failover --dry-run on a live primary: exit %d %+v", r.code, out.Plan)
		}
	})
	t.Run("co-primary pair", func(t *testing.T) {
		l := lab.New(t, lab.Options{Servers: 3, CoPrimary: true})
		c, _ := check(t, writeConfig(t, l))
		p := c.Clusters[0].Plan
		if p.NewPrimary != l.Server("db2").Addr() || !hasStepJSON(p, "repoint", l.Server("db3").Addr()) {
			t.Fatalf("plan: %+v", p)
		}
	})
	t.Run("dead primary, dry run", func(t *testing.T) {
		l := lab.New(t, lab.Options{Servers: 3})
		must(t, l.Server("db1").Kill())
		cfg := writeConfig(t, l)
		// The replicas notice at once that the killed primary's connection
		// reset; wait until discovery sees their IO threads down.
		var r result
		deadline := time.Now().Add(20 * time.Second)
		for {
			r = myha(t, "failover", "--dry-run", "--config", cfg)
			if r.code == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond) // polling the replicas' view of the dead primary
		}
		if r.code != 0 || !strings.Contains(r.stdout, "new primary: "+l.Server("db2").Addr()) {
			t.Fatalf("dry run after kill -9 (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		}
		// A dry run changes nothing: db2 is still a read-only replica.
		if ro := mustQ(t, l.Server("db2"), "SELECT @@read_only"); ro != "1" {
			t.Fatal("dry run changed read_only")
		}
	})
}

func hasStepJSON(p PlanJSON, kind, server string) bool {
	for _, s := range p.Steps {
		if s.Kind == kind && s.Server == server {
			return true
		}
	}
	return false
}
