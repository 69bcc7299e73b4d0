package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Hooks are the operator's scripts around a failover.
type Hooks struct {
	Pre, Post                  []string // shell commands (sh -c)
	MasterIPFailoverScript     string   // MHA master_ip_failover_script
	MasterIPOnlineChangeScript string   // MHA master_ip_online_change_script
	ShutdownScript             string   // MHA shutdown_script (STONITH)
	Timeout                    time.Duration
	// Run executes a command; nil means os/exec. Tests replace it.
	Run func(ctx context.Context, name string, args, env []string) (exit int, output string, err error)
}

// MHA's exit-code contract.
const (
	hookOK   = 0
	hookWarn = 10
)

// hookOutcome is what a hook run means for the failover.
type hookOutcome struct {
	ok, warn bool
	msg      string
}

func (h Hooks) run(ctx context.Context, name string, args, env []string) hookOutcome {
	run := h.Run
	if run == nil {
		run = execHook
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, out, err := run(hctx, name, args, env)
	out = lastLine(out)
	switch {
	case err != nil:
		return hookOutcome{msg: fmt.Sprintf("%s: %v", name, err)}
	case code == hookOK:
		return hookOutcome{ok: true, msg: out}
	case code == hookWarn:
		return hookOutcome{ok: true, warn: true, msg: fmt.Sprintf("%s exited 10 (warning): %s", name, out)}
	}
	return hookOutcome{msg: fmt.Sprintf("%s exited %d: %s", name, code, out)}
}

func execHook(ctx context.Context, name string, args, env []string) (int, string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = hookEnviron(os.Getenv("PATH"), env)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ctx.Err() != nil {
			return -1, buf.String(), fmt.Errorf("timed out")
		}
		return ee.ExitCode(), buf.String(), nil
	}
	if err != nil {
		return -1, buf.String(), err
	}
	return 0, buf.String(), nil
}

// defaultHookPath is the PATH hooks get when the daemon has none.
const defaultHookPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// hookEnviron is the whole environment of a hook: PATH and the documented
// MYHA_* variables, nothing inherited. The daemon's environment may hold
// MYHA_<CLUSTER>_PASSWORD and other secrets a hook must never see.
func hookEnviron(path string, env []string) []string {
	if path == "" {
		path = defaultHookPath
	}
	out := []string{"PATH=" + path}
	for _, kv := range env {
		if name, _, ok := strings.Cut(kv, "="); ok && hookVar(name) {
			out = append(out, kv)
		}
	}
	return out
}

// hookVar reports whether name is a variable of the hook contract (README,
// Hooks).
func hookVar(name string) bool {
	switch name {
	case "MYHA_CLUSTER", "MYHA_KIND", "MYHA_PHASE", "MYHA_OLD_PRIMARY", "MYHA_NEW_PRIMARY", "MYHA_EPOCH", "MYHA_FAILOVER_ID", "MYHA_RESULT":
		return true
	}
	return false
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// hookEnv is the environment every generic hook gets. No secrets.
func hookEnv(r *Report, phase string) []string {
	return []string{
		"MYHA_CLUSTER=" + r.Cluster, "MYHA_KIND=" + string(r.Kind), "MYHA_PHASE=" + phase,
		"MYHA_OLD_PRIMARY=" + r.OldPrimary, "MYHA_NEW_PRIMARY=" + r.NewPrimary,
		fmt.Sprintf("MYHA_EPOCH=%d", r.Epoch), "MYHA_FAILOVER_ID=" + r.ID, "MYHA_RESULT=" + string(r.Result),
	}
}

// runShell runs generic hooks in order; the first failure is returned.
func (h Hooks) runShell(ctx context.Context, cmds []string, env []string) (warns []string, err error) {
	for _, c := range cmds {
		o := h.run(ctx, "/bin/sh", []string{"-c", c}, env)
		if !o.ok {
			return warns, fmt.Errorf("hook %q failed: %s", c, strings.TrimPrefix(o.msg, "/bin/sh "))
		}
		if o.warn {
			warns = append(warns, o.msg)
		}
	}
	return warns, nil
}

// mhaHostArgs renders MHA's --X_host/--X_ip/--X_port arguments.
func mhaHostArgs(prefix, addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "3306"
	}
	ip := host
	if net.ParseIP(host) == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if addrs, err := net.DefaultResolver.LookupHost(ctx, host); err == nil && len(addrs) > 0 {
			ip = addrs[0]
		}
		cancel()
	}
	return []string{"--" + prefix + "_host=" + host, "--" + prefix + "_ip=" + ip, "--" + prefix + "_port=" + port}
}

// mhaFailoverArgs are master_ip_failover_script's arguments. MHA also passes
// --new_master_password; myha does not put passwords on command lines
// (they show in ps), and scripts that move an IP do not need it.
func mhaFailoverArgs(command, old, newP, user string) []string {
	args := append([]string{"--command=" + command, "--ssh_user=root"}, mhaHostArgs("orig_master", old)...)
	if command == "start" {
		args = append(args, mhaHostArgs("new_master", newP)...)
		args = append(args, "--new_master_user="+user)
	}
	return args
}

// mhaOnlineChangeArgs are master_ip_online_change_script's arguments.
func mhaOnlineChangeArgs(command, old, newP, user string) []string {
	args := append([]string{"--command=" + command}, mhaHostArgs("orig_master", old)...)
	args = append(args, "--orig_master_user="+user)
	args = append(args, mhaHostArgs("new_master", newP)...)
	return append(args, "--new_master_user="+user, "--orig_master_is_new_slave")
}

// mhaShutdownArgs are shutdown_script's arguments (power off the old primary).
func mhaShutdownArgs(old string) []string {
	host, port, _ := net.SplitHostPort(old)
	return []string{"--command=stopssh", "--ssh_user=root", "--host=" + host, "--ip=" + host, "--port=" + port}
}
