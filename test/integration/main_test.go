// Package integration runs the real myha binary against real MariaDB labs
// and asserts what an operator would see.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

var myhaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "myha-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	myhaBin = filepath.Join(dir, "myha")
	if prebuilt := os.Getenv("MYHA_TEST_BIN"); prebuilt != "" {
		// A binary built beforehand, for a user without the Go toolchain
		// (go test -c, then run the test binary as that user).
		myhaBin = prebuilt
	} else {
		// Build with the race detector so the binary under test is checked too.
		build := exec.Command("go", "build", "-race", "-o", myhaBin, "github.com/myha/myha/cmd/myha")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building myha:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// myha runs the binary with a timeout and returns its exit code and output.
func myha(t testing.TB, args ...string) result {
	t.Helper()
	return myhaEnv(t, nil, args...)
}

// myhaEnv is myha with extra environment variables (MYHA_CRASH_AT=...).
func myhaEnv(t testing.TB, env []string, args ...string) result {
	t.Helper()
	r, err := runMyha(env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runMyha runs the binary with a timeout; unlike myha it never calls
// t.Fatal, so a test may run it on a goroutine of its own.
func runMyha(env []string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, myhaBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		return r, fmt.Errorf("running myha: %v", err)
	}
	for _, secret := range []string{lab.AdminPass, lab.ReplPass} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			return r, fmt.Errorf("myha %v printed a password", args)
		}
	}
	return r, nil
}

// Topology is the part of `myha topology --json` the tests read.
type Topology struct {
	Clusters []struct {
		Name     string   `json:"name"`
		Primary  *string  `json:"primary"`
		Problems []string `json:"problems"`
		Unlisted []struct {
			Source   string `json:"source"`
			Host     string `json:"host"`
			Port     int    `json:"port"`
			ServerID uint32 `json:"server_id"`
		} `json:"unlisted_replicas"`
		Servers []ServerJSON `json:"servers"`
	} `json:"clusters"`
}

// ServerJSON is one server of the topology JSON.
type ServerJSON struct {
	Address      string   `json:"address"`
	Role         string   `json:"role"`
	Reachable    bool     `json:"reachable"`
	ReadOnly     bool     `json:"read_only"`
	Source       *string  `json:"source"`
	IORunning    *bool    `json:"io_running"`
	IOState      string   `json:"io_state"`
	SQLRunning   *bool    `json:"sql_running"`
	LagSeconds   *int64   `json:"lag_seconds"`
	GTIDPosition string   `json:"gtid_position"`
	CoPrimaryOf  string   `json:"co_primary_of"`
	Errant       []string `json:"errant_gtids"`
	Errors       []string `json:"errors"`
}

func writeConfig(t *testing.T, l *lab.Lab, servers ...*lab.Server) string {
	t.Helper()
	if len(servers) == 0 {
		servers = l.Servers
	}
	return writeConfigWith(t, l, servers, nil)
}

// writeConfigWith writes a config for the given servers; extra adds YAML
// lines (candidate: true, no_master: true, ...) under a server's entry.
func writeConfigWith(t *testing.T, l *lab.Lab, servers []*lab.Server, extra map[*lab.Server]string) string {
	t.Helper()
	yaml := l.ConfigYAML()
	var b strings.Builder
	// Each test its own state directory: failover records and the
	// cluster's memory never leak between tests that reuse lab addresses.
	fmt.Fprintf(&b, "state_dir: %s\n", filepath.Join(t.TempDir(), "state"))
	b.WriteString(yaml[:strings.Index(yaml, "    servers:\n")+len("    servers:\n")])
	for _, s := range servers {
		fmt.Fprintf(&b, "      - address: %s\n", s.Addr())
		if e := extra[s]; e != "" {
			fmt.Fprintf(&b, "        %s\n", e)
		}
	}
	p := filepath.Join(t.TempDir(), "myha.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func topology(t testing.TB, cfg string) Topology {
	t.Helper()
	r := myha(t, "topology", "--json", "--config", cfg)
	if r.code > 1 { // 1: no primary in service
		t.Fatalf("myha topology exit %d: %s", r.code, r.stderr)
	}
	var top Topology
	if err := json.Unmarshal([]byte(r.stdout), &top); err != nil {
		t.Fatalf("topology JSON: %v\n%s", err, r.stdout)
	}
	if len(top.Clusters) != 1 {
		t.Fatalf("%d clusters in JSON, want 1", len(top.Clusters))
	}
	return top
}

func (tp Topology) server(t testing.TB, addr string) ServerJSON {
	t.Helper()
	for _, s := range tp.Clusters[0].Servers {
		if s.Address == addr {
			return s
		}
	}
	t.Fatalf("server %s not in topology", addr)
	return ServerJSON{}
}

// waitTopology polls discovery until cond holds (replication threads react
// asynchronously to what a test did) and fails with the last view.
func waitTopology(t *testing.T, cfg string, what string, cond func(Topology) bool) Topology {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tp := topology(t, cfg)
		if cond(tp) {
			return tp
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(tp, "", "  ")
			t.Fatalf("timed out waiting for %s; last topology:\n%s", what, b)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition
	}
}

func has(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func ptr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
