package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two configs that name their cluster "lab" and share a state directory
// (the default one, say) never share records: the second is refused with
// exit 2 and told what to do, and the first keeps its acknowledgement.
func TestTwoConfigsWithOneClusterNameNeverShareRecords(t *testing.T) {
	dir := t.TempDir()
	write := func(name, servers string) string {
		p := filepath.Join(dir, name)
		y := "state_dir: " + filepath.Join(dir, "state") + "\nclusters:\n  - name: lab\n    user: myha\n    password: pw\n    replication_user: repl\n    replication_password: rpw\n    servers:\n" + servers
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", "      - address: 198.18.200.1:3306\n      - address: 198.18.200.2:3306\n")
	b := write("b.yaml", "      - address: 198.18.201.1:3306\n      - address: 198.18.201.2:3306\n")
	myha := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
		return code, out.String() + errb.String()
	}
	if code, out := myha("ack", "--cluster", "lab", "--config", a); code != 0 {
		t.Fatalf("ack with a: %d %s", code, out)
	}
	code, out := myha("history", "--cluster", "lab", "--config", b)
	if code != 2 || !strings.Contains(out, "198.18.200.1:3306") || !strings.Contains(out, "state_dir of its own") {
		t.Fatalf("b read a's records: exit %d\n%s", code, out)
	}
	if code, out := myha("history", "--cluster", "lab", "--config", a); code != 0 {
		t.Fatalf("a lost its records: %d %s", code, out)
	}
}

func TestWritableDir(t *testing.T) {
	d := t.TempDir()
	if !writableDir(d) || !writableDir(filepath.Join(d, "not", "yet")) {
		t.Fatal("a writable directory (or one that can be made) reads as not writable")
	}
	if os.Geteuid() != 0 {
		if writableDir("/proc/1/x") {
			t.Fatal("/proc reads as writable")
		}
	}
}
