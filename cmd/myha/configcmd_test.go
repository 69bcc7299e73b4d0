package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// myha config check resolves host names: localhost and 127.0.0.1 are one
// server, refused with both entries named and exit code 2.
func TestConfigCheckFindsAServerListedTwice(t *testing.T) {
	y := "clusters:\n  - name: app1\n    user: u\n    password: p\n    replication_user: r\n    replication_password: rp\n" +
		"    servers:\n      - address: 127.0.0.1:3306\n      - address: localhost\n"
	p := filepath.Join(t.TempDir(), "myha.yaml")
	os.WriteFile(p, []byte(y), 0o600)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"config", "check", "--config", p}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if code != exitProblem || !strings.Contains(errb.String(), "clusters[0].servers[1].address: localhost:3306 and clusters[0].servers[0].address (127.0.0.1:3306) are the same server") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	os.WriteFile(p, []byte(strings.Replace(y, "localhost", "127.0.0.2", 1)), 0o600)
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"config", "check", "--config", p}, strings.NewReader(""), &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("two servers refused: exit %d\n%s", code, errb.String())
	}
}
