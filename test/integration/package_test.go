package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"syscall"
	"testing"
)

// TestPackageInstallsAndPurges builds the .deb (make package), installs it
// with dpkg -i, and checks what an operator gets: /usr/bin/myha answering
// `version --json`, the myha system user owning a 0700 /var/lib/myha, the
// units pointing at /usr/bin/myha; then purges it and checks it is gone.
func TestPackageInstallsAndPurges(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("installing a package needs root; CI runs as root")
		}
		t.Skip("installing a package needs root")
	}
	if st, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "myha").Output(); strings.Contains(string(st), " installed") {
		t.Fatal("a myha package is already installed here; this test installs and purges its own: dpkg -r myha first")
	}
	// A machine that already has /var/lib/myha (root's CLI runs) keeps it
	// as it was: the package is then removed, not purged, and the
	// directory's owner and mode are put back.
	before, statErr := os.Stat("/var/lib/myha")
	hadState := statErr == nil
	if hadState {
		sys := before.Sys().(*syscall.Stat_t)
		t.Cleanup(func() {
			os.Chown("/var/lib/myha", int(sys.Uid), int(sys.Gid))
			os.Chmod("/var/lib/myha", before.Mode().Perm())
		})
	}
	out, err := exec.Command("bash", "../package.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	deb := "../../" + strings.TrimSpace(string(out)[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:])
	t.Cleanup(func() { os.Remove(deb) })
	if out, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i %s: %v\n%s", deb, err, out)
	}
	removeMode := "--purge"
	if hadState {
		removeMode = "--remove" // never delete a state directory this test did not make
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			exec.Command("dpkg", removeMode, "myha").Run()
		}
	})

	b, err := exec.Command("/usr/bin/myha", "version", "--json").Output()
	var v map[string]string
	if err != nil || json.Unmarshal(b, &v) != nil || v["version"] == "" {
		t.Fatalf("/usr/bin/myha version --json: %v %s", err, b)
	}
	u, err := user.Lookup("myha")
	if err != nil {
		t.Fatalf("the package made no myha user: %v", err)
	}
	st, err := os.Stat("/var/lib/myha")
	if err != nil || st.Mode().Perm() != 0o700 || st.Sys().(*syscall.Stat_t).Uid != uint32(atoiT(t, u.Uid)) {
		t.Fatalf("/var/lib/myha: %v %v, want 0700 owned by myha", err, st)
	}
	for _, unit := range []string{"myha-daemon.service", "myha-agent.service"} {
		b, err := os.ReadFile("/lib/systemd/system/" + unit)
		if err != nil || !strings.Contains(string(b), "ExecStart=/usr/bin/myha ") {
			t.Fatalf("%s: %v, want ExecStart=/usr/bin/myha", unit, err)
		}
	}
	if out, err := exec.Command("dpkg", removeMode, "myha").CombinedOutput(); err != nil {
		t.Fatalf("dpkg %s myha: %v\n%s", removeMode, err, out)
	}
	removed = true
	if _, err := os.Stat("/usr/bin/myha"); !os.IsNotExist(err) {
		t.Fatal("/usr/bin/myha is still there after removal")
	}
	if removeMode == "--purge" {
		if _, err := user.Lookup("myha"); err == nil {
			t.Fatal("the myha user is still there after purge")
		}
		if _, err := os.Stat("/var/lib/myha"); !os.IsNotExist(err) {
			t.Fatal("/var/lib/myha is still there after purge")
		}
	}
	t.Logf("installed and removed (%s) %s", removeMode, deb)
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
