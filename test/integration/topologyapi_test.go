package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// TestTopologyThroughMonitors: an operator's config that holds no database
// password, only the API's read token, runs `myha topology --api --json`
// and gets the primary and replicas the direct `myha topology --json` finds
// on the servers; the text output names the monitor that answered and the
// snapshot's age. A wrong token fails with the API's message; with no
// monitor answering, the error names every monitor tried.
func TestTopologyThroughMonitors(t *testing.T) {
	dir := t.TempDir()
	const readTok = "topo-read-token-4Kx"
	readFile := filepath.Join(dir, "read.token")
	must(t, os.WriteFile(readFile, []byte(readTok+"\n"), 0o600))
	m := startMonitorsLabWith(t, lab.Options{Servers: 3}, monLabOptions{securityYAML: "  api_read_token_file: " + readFile + "\n"})
	// No m.waitHealthy: it reads the API without a token, which these
	// monitors refuse. The loop below waits on topology --api instead.
	direct := myha(t, "topology", "--json", "--config", m.cfg)
	if direct.code != 0 {
		t.Fatalf("direct topology: exit %d\n%s%s", direct.code, direct.stdout, direct.stderr)
	}

	// The laptop's config: the monitors' file without the database
	// passwords and the write token, with its own read token.
	raw, err := os.ReadFile(m.cfg)
	must(t, err)
	laptop := func(name, token string) string {
		tf := filepath.Join(dir, name+".token")
		must(t, os.WriteFile(tf, []byte(token+"\n"), 0o600))
		var keep []string
		for _, line := range strings.Split(string(raw), "\n") {
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "password:") || strings.HasPrefix(trimmed, "replication_password:") ||
				strings.HasPrefix(trimmed, "api_token_file:") || strings.HasPrefix(trimmed, "api_read_token_file:") {
				continue
			}
			keep = append(keep, line)
			if trimmed == "security:" {
				keep = append(keep, "  api_read_token_file: "+tf)
			}
		}
		y := strings.Join(keep, "\n")
		if strings.Contains(y, lab.AdminPass) || strings.Contains(y, lab.ReplPass) || strings.Contains(y, apiToken) {
			t.Fatal("the laptop's config holds a database password or the write token")
		}
		p := filepath.Join(dir, name+".yaml")
		must(t, os.WriteFile(p, []byte(y), 0o600))
		return p
	}
	cfg := laptop("laptop", readTok)

	// The snapshot is a monitor's, probed every check_interval once it
	// has started: wait until it agrees with the direct discovery above.
	want := treeShape(t, direct.stdout)
	var viaAPI result
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		viaAPI = myha(t, "topology", "--api", "--json", "--config", cfg)
		got := ""
		if viaAPI.code == 0 {
			got = treeShape(t, viaAPI.stdout)
		}
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topology --api (exit %d) never showed the direct tree within 30s:\ndirect:   %s\nvia API:  %s\n%s%s", viaAPI.code, want, got, viaAPI.stdout, viaAPI.stderr)
		}
	}
	t.Logf("direct and through the monitors: %s", want)
	if !strings.Contains(want, "primary="+m.Server("db1").Addr()) {
		t.Fatalf("the lab's primary is not db1: %s", want)
	}

	text := myha(t, "topology", "--api", "--config", cfg)
	if text.code != 0 || !strings.Contains(text.stdout, "read from monitor mon") || !strings.Contains(text.stdout, " old\n") ||
		!strings.Contains(text.stdout, "primary: "+m.Server("db1").Addr()) || strings.Count(text.stdout, "  replica  ") != 2 {
		t.Fatalf("topology --api: exit %d\n%s%s", text.code, text.stdout, text.stderr)
	}

	// check --api: a monitor's checks, with the plan the direct check
	// shows (the primary a failover would replace, a replica to promote).
	plan := func(r result) (string, string) {
		var v struct {
			Clusters []struct {
				Plan struct {
					Old string `json:"old_primary"`
					New string `json:"new_primary"`
				} `json:"plan"`
			} `json:"clusters"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || len(v.Clusters) != 1 || r.code > 1 {
			t.Fatalf("check JSON: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		return v.Clusters[0].Plan.Old, v.Clusters[0].Plan.New
	}
	dOld, _ := plan(myha(t, "check", "--json", "--config", m.cfg))
	aOld, aNew := plan(myha(t, "check", "--api", "--json", "--config", cfg))
	if dOld != m.Server("db1").Addr() || aOld != dOld || (aNew != m.Server("db2").Addr() && aNew != m.Server("db3").Addr()) {
		t.Fatalf("check --api plan: replace %s by %s; direct: replace %s", aOld, aNew, dOld)
	}
	if r := myha(t, "check", "--api", "--config", cfg); r.code > 1 || !strings.Contains(r.stdout, "checked by monitor mon") || !strings.Contains(r.stdout, "If the primary died now:") {
		t.Fatalf("check --api: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	wrong := myha(t, "topology", "--api", "--config", laptop("wrong", "not-the-read-token"))
	if wrong.code != 2 || !strings.Contains(wrong.stderr, "a valid bearer token is required (security.api_read_token_file)") {
		t.Fatalf("wrong token: exit %d\n%s%s", wrong.code, wrong.stdout, wrong.stderr)
	}

	for _, h := range m.mons {
		m.kill(h.Name)
	}
	none := myha(t, "topology", "--api", "--config", cfg)
	if none.code != 2 || !strings.Contains(none.stderr, "no monitor answered; tried:") ||
		!strings.Contains(none.stderr, "mon1 (") || !strings.Contains(none.stderr, "mon2 (") || !strings.Contains(none.stderr, "mon3 (") {
		t.Fatalf("no monitor: exit %d\n%s%s", none.code, none.stdout, none.stderr)
	}
	for _, r := range []result{viaAPI, text, wrong, none} {
		if strings.Contains(r.stdout+r.stderr, readTok) {
			t.Fatal("the read token in myha's output")
		}
	}
}

// treeShape is what a topology JSON says about the tree, in one line:
// the primary and each replica with its source and role.
func treeShape(t *testing.T, out string) string {
	t.Helper()
	var top Topology
	if err := json.Unmarshal([]byte(out), &top); err != nil || len(top.Clusters) != 1 {
		t.Fatalf("topology JSON (%v):\n%s", err, out)
	}
	c := top.Clusters[0]
	parts := []string{"primary=none"}
	if c.Primary != nil {
		parts[0] = "primary=" + *c.Primary
	}
	for _, s := range c.Servers {
		src := "-"
		if s.Source != nil {
			src = *s.Source
		}
		parts = append(parts, s.Address+":"+s.Role+"<"+src)
	}
	sort.Strings(parts[1:])
	return strings.Join(parts, " ")
}
