package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// fakeLab makes a lab directory as claimID does, without servers or network.
func fakeLab(t *testing.T, dir string, id int, uid string, owner string) {
	t.Helper()
	d := filepath.Join(dir, strconv.Itoa(id))
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if uid != "" {
		os.WriteFile(filepath.Join(d, "uid"), []byte(uid), 0o644)
	}
	os.WriteFile(filepath.Join(d, "owner"), []byte(owner), 0o644)
}

// TestDownRemovesOnlyYourLabs pins the ownership rules of labctl down: with
// no argument it removes the caller's persistent labs and nothing else; with
// -id it refuses another user's lab and a running test's lab. The remover is
// a recorder, so no real lab (which another process may be using) is touched.
func TestDownRemovesOnlyYourLabs(t *testing.T) {
	dir := t.TempDir()
	fakeLab(t, dir, 1, "1000", "persistent")        // another user's labctl up
	fakeLab(t, dir, 2, "0", "persistent")           // root's labctl up
	fakeLab(t, dir, 3, "0", selfToken())            // a running test (this process)
	fakeLab(t, dir, 4, "", "persistent")            // made before uids were recorded
	fakeLab(t, dir, 5, "0", "persistent")           // root's second lab
	fakeLab(t, dir, 6, "1000", fmt.Sprint(1, " x")) // a test whose process is gone

	var removed []int
	rec := func(id int, d string) {
		if d != filepath.Join(dir, strconv.Itoa(id)) {
			t.Errorf("lab %d removed at %s", id, d)
		}
		removed = append(removed, id)
	}
	got := destroyMine(dir, 0, rec)
	if !slices.Equal(removed, []int{2, 5}) || len(got) != 2 || got[0].Subnet != "198.18.2.0/24" {
		t.Fatalf("root's down removed %v (%+v), want labs 2 and 5", removed, got)
	}

	removed = nil
	destroyMine(dir, 1000, rec)
	if !slices.Equal(removed, []int{1}) {
		t.Fatalf("uid 1000's down removed %v, want only its persistent lab 1", removed)
	}

	removed = nil
	if _, err := destroyID(dir, 3, 0, rec); err == nil {
		t.Fatal("down -id removed a lab a running test owns")
	}
	if _, err := destroyID(dir, 2, 1000, rec); err == nil {
		t.Fatal("uid 1000 removed root's lab 2")
	}
	if _, err := destroyID(dir, 9, 0, rec); err == nil {
		t.Fatal("down -id of a lab that does not exist succeeded")
	}
	if len(removed) != 0 {
		t.Fatalf("refused removals still removed %v", removed)
	}
	if _, err := destroyID(dir, 6, 1000, rec); err != nil || !slices.Equal(removed, []int{6}) {
		t.Fatalf("uid 1000 could not remove its dead test's lab 6: %v %v", err, removed)
	}
}

// TestRootPerUser: root keeps the shared directory (lab numbers name subnets
// and namespaces machine-wide); other users get their own.
func TestRootPerUser(t *testing.T) {
	if Root(0) != "/tmp/myha-lab" || Root(1000) != "/tmp/myha-lab-1000" {
		t.Fatalf("Root(0)=%s Root(1000)=%s", Root(0), Root(1000))
	}
}
