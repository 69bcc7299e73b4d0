package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad configs fail with exit code 2 and one line per problem naming the key,
// and never a Go stack trace.
func TestBadConfigExitCode(t *testing.T) {
	base := "clusters:\n  - name: a\n    user: u\n    password: p\n    replication_user: r\n    replication_password: rp\n    servers:\n      - address: 198.18.0.11\n"
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":      {strings.Replace(base, "user: u", "user: u\n    pasword: x", 1), "clusters[0].pasword: unknown key"},
		"duplicate server": {base + "      - address: 198.18.0.11:3306\n", "duplicate server 198.18.0.11:3306"},
		"missing password": {strings.Replace(base, "    password: p\n", "", 1), "clusters[0].password: missing"},
		"bad address":      {strings.Replace(base, "198.18.0.11", "198.18.0.11:notaport", 1), "clusters[0].servers[0].address"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(p, []byte(tc.yaml), 0o600)
			for _, cmd := range [][]string{{"topology"}, {"config", "check"}} {
				r := myha(t, append(cmd, "--config", p)...)
				if r.code != 2 {
					t.Fatalf("%v: exit %d, want 2", cmd, r.code)
				}
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if len(lines) != 1 || !strings.Contains(lines[0], tc.want) || !strings.Contains(lines[0], p) {
					t.Fatalf("%v: stderr %q, want one line with %q and the file name", cmd, r.stderr, tc.want)
				}
				if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
					t.Fatal("stack trace printed")
				}
			}
		})
	}
	r := myha(t, "topology", "--config", "/nonexistent/myha.yaml")
	if r.code != 2 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("missing file: exit %d %q", r.code, r.stderr)
	}
}

func TestImportMHAEndToEnd(t *testing.T) {
	dir := t.TempDir()
	mha := filepath.Join(dir, "app1.cnf")
	os.WriteFile(mha, []byte("[server default]\nuser=mha\npassword=mha-secret\nrepl_user=repl\nrepl_password=repl-secret\nssh_user=root\n[server1]\nhostname=198.18.0.11\ncandidate_master=1\n[server2]\nhostname=198.18.0.12\nno_master=1\n"), 0o600)
	out := filepath.Join(dir, "myha.yaml")
	r := myha(t, "config", "import-mha", mha, "-o", out)
	if r.code != 0 || !strings.Contains(r.stderr, "ssh_user not imported") {
		t.Fatalf("import exit %d: %s", r.code, r.stderr)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("output file mode: %v %v", st, err)
	}
	if r := myha(t, "config", "check", "--config", out); r.code != 0 {
		t.Fatalf("imported config does not check: %s", r.stderr)
	}
	r = myha(t, "config", "import-mha", mha)
	if strings.Contains(r.stdout, "mha-secret") || !strings.Contains(r.stdout, "candidate: true") {
		t.Fatalf("stdout import must redact passwords and keep flags:\n%s", r.stdout)
	}
}
