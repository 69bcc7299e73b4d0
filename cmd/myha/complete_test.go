package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shell completes cluster names, and server addresses of the chosen
// cluster, from a config that does not even validate (no passwords yet).
func TestCompletionNamesClustersAndServers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("clusters:\n  - name: app1\n    servers:\n      - address: db1.example.com\n      - address: 10.0.0.2:3307\n  - name: app2\n    servers:\n      - address: db9\n"), 0o600)
	complete := func(args ...string) []string {
		var out, errb strings.Builder
		run(context.Background(), append([]string{"__complete"}, args...), strings.NewReader(""), &out, &errb, func(string) string { return "" })
		var got []string
		for _, l := range strings.Split(out.String(), "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				got = append(got, l)
			}
		}
		return got
	}
	if got := strings.Join(complete("failover", "--config", p, "--cluster", ""), " "); got != "app1 app2" {
		t.Errorf("--cluster completes %q", got)
	}
	if got := strings.Join(complete("switchover", "--config", p, "--cluster", "app1", "--new-primary", ""), " "); got != "db1.example.com:3306 10.0.0.2:3307" {
		t.Errorf("--new-primary of app1 completes %q", got)
	}
	if got := strings.Join(complete("check", "--config", p, "--cluster", "app2"), " "); got != "app2" {
		t.Errorf("prefix app2 completes %q", got)
	}
}
