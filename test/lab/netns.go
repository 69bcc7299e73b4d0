package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// canNetns reports whether this process can make network namespaces.
func canNetns() bool {
	if os.Geteuid() != 0 {
		return false
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return false
	}
	name := fmt.Sprintf("mhprobe%d", os.Getpid())
	if err := exec.Command("ip", "netns", "add", name).Run(); err != nil {
		return false
	}
	exec.Command("ip", "netns", "del", name).Run()
	return true
}

// claimID takes the lowest free lab number; the directory made with mkdir is
// the lock, so parallel test processes never share a subnet. The lab records
// its owner process (or "persistent") and the uid that made it, so that
// labctl down removes only the caller's own labs.
func (l *Lab) claimID() error {
	for id := 1; id < 255; id++ {
		dir := filepath.Join(root, strconv.Itoa(id))
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		owner := "persistent"
		if !l.opts.Persistent {
			owner = selfToken()
		}
		err := os.WriteFile(filepath.Join(dir, "uid"), []byte(strconv.Itoa(os.Geteuid())), 0o644)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "owner"), []byte(owner), 0o644)
		}
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		l.ID, l.Dir = id, dir
		l.Bridge = fmt.Sprintf("mhbr%d", id)
		l.Subnet = fmt.Sprintf("198.18.%d.0/24", id)
		return nil
	}
	return fmt.Errorf("lab: no free lab number under %s (labctl down removes your persistent labs; labctl list shows whose the others are)", root)
}

// selfToken identifies this process across pid reuse: pid and start time.
func selfToken() string { return procToken(os.Getpid()) }

func procToken(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// Field 22 is the start time; the command name (field 2) may hold spaces.
	rest := b[bytes.LastIndexByte(b, ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 20 {
		return ""
	}
	return fmt.Sprintf("%d %s", pid, f[19])
}

// SweepLeftovers removes labs whose owning process is gone (a crashed or
// killed test run). Persistent labs are left alone.
func SweepLeftovers() {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		owner, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			// Being created right now, or broken: only old ones are swept.
			if st, err := os.Stat(dir); err == nil && time.Since(st.ModTime()) > time.Minute {
				destroy(id, dir)
			}
			continue
		}
		tok := string(owner)
		if tok == "persistent" {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(tok + " 0")[0])
		if procToken(pid) != tok {
			destroy(id, dir)
		}
	}
}

// Info describes one lab directory: its number, who made it and whether a
// running process still owns it.
type Info struct {
	ID         int
	Dir        string
	Subnet     string // 198.18.<id>.0/24, or 127.0.0.1 for a loopback lab
	UID        int    // -1 when the lab recorded no uid (made by an older labctl)
	Persistent bool   // made by labctl up; otherwise owned by a test process
	Alive      bool   // a test process that owns it is still running
}

// List describes every lab under the lab root, lowest number first.
func List() []Info { return list(root) }

func list(dir string) []Info {
	entries, _ := os.ReadDir(dir)
	var out []Info
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		in := Info{ID: id, Dir: filepath.Join(dir, e.Name()), Subnet: fmt.Sprintf("198.18.%d.0/24", id), UID: -1}
		if b, err := os.ReadFile(filepath.Join(in.Dir, "uid")); err == nil {
			if u, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				in.UID = u
			}
		}
		if b, err := os.ReadFile(filepath.Join(in.Dir, "servers")); err == nil && strings.Contains(string(b), " -\n") {
			in.Subnet = "127.0.0.1" // a loopback lab has no subnet of its own
		}
		tok, _ := os.ReadFile(filepath.Join(in.Dir, "owner"))
		in.Persistent = string(tok) == "persistent"
		if !in.Persistent && len(tok) > 0 {
			pid, _ := strconv.Atoi(strings.Fields(string(tok) + " 0")[0])
			in.Alive = procToken(pid) == string(tok)
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DestroyMine removes the persistent labs (labctl up) that uid made and
// returns them. Labs of other users, labs without a recorded owner and labs
// of running tests are left alone: they are someone else's.
func DestroyMine(uid int) []Info { return destroyMine(root, uid, destroy) }

func destroyMine(dir string, uid int, remove func(id int, dir string)) []Info {
	var done []Info
	for _, in := range list(dir) {
		if in.Persistent && in.UID == uid {
			remove(in.ID, in.Dir)
			done = append(done, in)
		}
	}
	return done
}

// DestroyID removes lab id if uid may: a lab uid made (root may remove any
// persistent lab), never one a running test still owns.
func DestroyID(id, uid int) (Info, error) { return destroyID(root, id, uid, destroy) }

func destroyID(dir string, id, uid int, remove func(id int, dir string)) (Info, error) {
	for _, in := range list(dir) {
		if in.ID != id {
			continue
		}
		switch {
		case in.Alive:
			return in, fmt.Errorf("lab %d belongs to a running test process; it removes the lab itself when it ends", id)
		case in.UID != uid && uid != 0:
			return in, fmt.Errorf("lab %d was made by uid %d, not by you (uid %d)", id, in.UID, uid)
		}
		remove(in.ID, in.Dir)
		return in, nil
	}
	return Info{}, fmt.Errorf("no lab %d under %s", id, dir)
}

func destroy(id int, dir string) {
	pids, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, p := range pids {
		b, _ := os.ReadFile(p)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid)
		}
	}
	// Processes a lab started on its hosts (monitors, agents) are in the
	// namespaces; kill what is left there before removing them.
	prefix := fmt.Sprintf("mh%d-", id)
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		if pids, err := exec.Command("ip", "netns", "pids", f[0]).Output(); err == nil {
			for _, p := range strings.Fields(string(pids)) {
				if pid, err := strconv.Atoi(p); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
					waitGone(pid)
				}
			}
		}
		exec.Command("ip", "netns", "del", f[0]).Run()
	}
	exec.Command("ip", "link", "del", fmt.Sprintf("mhbr%d", id)).Run()
	os.RemoveAll(dir)
}

func waitGone(pid int) {
	for i := 0; i < 500; i++ {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && bytes.Contains(b, []byte(") Z ")) {
			return // a zombie: dead, waiting for its parent to reap it
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *Lab) makeBridge(ctx context.Context) error {
	exec.Command("ip", "link", "del", l.Bridge).Run() // a stale one from a crashed run
	for _, args := range [][]string{
		{"link", "add", l.Bridge, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("198.18.%d.1/24", l.ID), "dev", l.Bridge},
		{"link", "set", l.Bridge, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// makeHost makes a namespace with eth0 on the lab bridge at 198.18.<id>.<n>.
func (l *Lab) makeHost(ctx context.Context, name string, n int) (Host, error) {
	h := Host{Name: name, NS: fmt.Sprintf("mh%d-%s", l.ID, name), IP: fmt.Sprintf("198.18.%d.%d", l.ID, n)}
	h.veth = fmt.Sprintf("mh%dv%d", l.ID, n)
	// The kernel tears namespaces down asynchronously: a veth of an earlier
	// lab with this number may still exist for a moment.
	exec.Command("ip", "link", "del", h.veth).Run()
	exec.Command("ip", "netns", "del", h.NS).Run()
	if err := run(ctx, "ip", "netns", "add", h.NS); err != nil {
		return h, err
	}
	var err error
	for i := 0; i < 50; i++ {
		if err = run(ctx, "ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS); err == nil || !strings.Contains(err.Error(), "File exists") {
			break
		}
		exec.Command("ip", "link", "del", h.veth).Run()
		time.Sleep(50 * time.Millisecond) // waiting for the kernel to free the old link
	}
	if err != nil {
		return h, err
	}
	for _, args := range [][]string{
		{"link", "set", h.veth, "master", l.Bridge, "up"},
		{"-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
		{"-n", h.NS, "link", "set", "lo", "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return h, err
		}
	}
	return h, nil
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
