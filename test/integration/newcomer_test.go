package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// newcomerUser is the ordinary account this test makes (once) to play a
// second user on a machine root has used.
const newcomerUser = "myha-newcomer"

// TestNewcomerTwoUsersOneMachine is the newcomer's first hour with a root
// user on the same machine: root's lab (network namespaces) keeps serving
// while an ordinary user makes a lab, removes it with labctl down (which
// removes only that user's labs), then runs the demo on loopback — three
// monitors fail over a killed primary with every acknowledged row on the
// new primary — and leaves no lab or server behind.
func TestNewcomerTwoUsersOneMachine(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root to make a second user; CI runs as root")
		}
		t.Skip("needs root to make a second user")
	}
	rootLab := lab.New(t, lab.Options{Servers: 1})
	rootLab.RequireNetns(t)
	uid, gid, home := ensureUser(t)

	// The user's copy of what the README's commands use: the binaries and
	// the demo script, in a directory the user can read.
	dir, err := os.MkdirTemp("", "myha-newcomer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	for _, p := range []string{"bin", "test"} {
		os.MkdirAll(filepath.Join(dir, p), 0o755)
	}
	for pkg, out := range map[string]string{"github.com/myha/myha/cmd/myha": "bin/myha", "github.com/myha/myha/test/labctl": "bin/labctl"} {
		b := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		if o, err := b.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, o)
		}
	}
	script, err := os.ReadFile("../demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "test", "demo.sh"), script, 0o755)
	os.Chown(dir, uid, gid) // the demo writes its config next to nothing but /tmp; the user owns its copy

	userRoot := lab.Root(uid)
	t.Cleanup(func() {
		// Whatever happened, the user's servers and labs go with the test.
		exec.Command("pkill", "-9", "-u", strconv.Itoa(uid), "mariadbd").Run()
		os.RemoveAll(userRoot)
	})
	as := func(timeout time.Duration, name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + home, "USER=" + newcomerUser, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	out, err := as(2*time.Minute, "bin/labctl", "up", "-servers", "1")
	if err != nil {
		t.Fatalf("the user's labctl up: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^lab: (\d+)$`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "dir: "+userRoot+"/") {
		t.Fatalf("the user's lab is not under %s:\n%s", userRoot, out)
	}
	userLab, _ := strconv.Atoi(m[1])
	out, err = as(time.Minute, "bin/labctl", "down")
	if err != nil || !strings.Contains(out, "removed lab "+m[1]) {
		t.Fatalf("the user's labctl down did not say it removed lab %d: %v\n%s", userLab, err, out)
	}
	if _, err := os.Stat(filepath.Join(userRoot, m[1])); !os.IsNotExist(err) {
		t.Fatalf("the user's lab %d is still there after labctl down", userLab)
	}
	rootServes := func(when string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := rootLab.Servers[0].QueryString(ctx, "SELECT 1"); err != nil {
			t.Fatalf("%s touched root's lab: %v", when, err)
		}
	}
	rootServes("the user's labctl down")

	out, err = as(5*time.Minute, "bash", "test/demo.sh")
	if err != nil {
		t.Fatalf("the user's make demo failed: %v\n%s", err, out)
	}
	rows := regexp.MustCompile(`rows acknowledged (\d+), rows on the new primary (\d+)`).FindStringSubmatch(out)
	if rows == nil || rows[1] != rows[2] || rows[1] == "0" || !strings.Contains(out, "acknowledged rows missing there: 0") {
		t.Fatalf("the user's demo did not show every acknowledged row on the new primary:\n%s", out)
	}
	if !strings.Contains(out, "db1 replicating from the new primary") && !strings.Contains(out, "transactions the new primary does not have") {
		t.Fatalf("the old primary neither rejoined nor was refused with a reason:\n%s", out)
	}
	t.Logf("the user's demo: %s", regexp.MustCompile(`primary killed → [^\n]*`).FindString(out))
	rootServes("the user's demo")
	if left, _ := filepath.Glob(filepath.Join(userRoot, "[0-9]*")); len(left) != 0 {
		t.Fatalf("the user's demo left labs behind: %v", left)
	}
	if live := liveServers(uid); len(live) != 0 {
		t.Fatalf("the user's servers still run after the demo: pids %v", live)
	}
}

// liveServers lists the user's mariadbd processes that are not zombies (a
// killed server whose reparented process waits to be reaped is gone).
func liveServers(uid int) []string {
	out, _ := exec.Command("ps", "-u", strconv.Itoa(uid), "-o", "pid=,stat=,comm=").Output()
	var live []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "mariadbd" && !strings.HasPrefix(f[1], "Z") {
			live = append(live, f[0])
		}
	}
	return live
}

// ensureUser makes the newcomer's account with a home directory, once per
// machine, and returns its ids.
func ensureUser(t *testing.T) (uid, gid int, home string) {
	t.Helper()
	u, err := user.Lookup(newcomerUser)
	if err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash", newcomerUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", newcomerUser, err, out)
		}
		if u, err = user.Lookup(newcomerUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, u.HomeDir
}
