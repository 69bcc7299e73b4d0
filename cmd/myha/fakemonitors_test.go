package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeMonitorsConfig writes dir/name: monitors whose APIs listen on the
// given ports on 127.0.0.1 (the tests' FAKE monitors: httptest servers),
// the token file dir/api.token (written elsewhere by the test), and one
// cluster app1 over servers. It returns the config's path.
func fakeMonitorsConfig(t *testing.T, dir, name string, servers []string, apiPorts ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\nsecurity:\n  api_token_file: %s\n  insecure: true\nmonitors:\n", filepath.Join(dir, "state"), filepath.Join(dir, "api.token"))
	for i, p := range apiPorts {
		fmt.Fprintf(&b, "  - name: mon%d\n    address: 127.0.0.1\n    gossip_port: %d\n    raft_port: %d\n    api_port: %s\n", i+1, 17000+i, 17100+i, p)
	}
	b.WriteString("clusters:\n  - name: app1\n    user: u\n    password: p\n    replication_user: r\n    replication_password: rp\n    servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "      - address: %s\n", s)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// portOf is the port of an httptest server's URL.
func portOf(url string) string {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	return p
}
