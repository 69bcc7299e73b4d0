package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// args is the mariadbd command line: the settings a careful DBA uses for a
// failover-managed server (GTID strict mode, log_slave_updates, durable
// commits, read_only at startup so a restarted primary never comes back
// writable, short network timeouts for fast detection).
func (s *Server) args(extra []string) []string {
	a := []string{
		"--no-defaults",
		"--datadir=" + s.DataDir,
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(s.DataDir, "mariadbd.pid"),
		"--log-error=" + filepath.Join(s.DataDir, "error.log"),
		"--port=" + strconv.Itoa(s.Port),
		"--bind-address=" + s.bindAddress(),
		"--server-id=" + strconv.Itoa(s.ServerID),
		"--log-bin=mysql-bin",
		"--log-slave-updates=1",
		"--relay-log=relay-bin",
		"--binlog-format=ROW",
		"--gtid-strict-mode=1",
		"--sync-binlog=1",
		"--innodb-flush-log-at-trx-commit=1",
		"--read-only=1",
		"--skip-name-resolve",
		"--report-host=" + s.IP,
		"--slave-net-timeout=4",
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=8M",
		"--performance-schema=0",
		"--max-connections=200",
	}
	if os.Geteuid() == 0 {
		a = append(a, "--user=root")
	}
	return append(a, extra...)
}

// Start launches mariadbd (in the server's namespace when there is one) and
// waits until it accepts connections on its socket.
func (s *Server) Start(ctx context.Context, extra ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("lab: %s is already running", s.Name)
	}
	args := append(append(s.tlsArgs(), s.lab.opts.ExtraArgs...), extra...)
	name, argv := mariadbdPath, s.args(args)
	if s.NS != "" {
		name, argv = "ip", append([]string{"netns", "exec", s.NS, mariadbdPath}, argv...)
	}
	cmd := exec.Command(name, argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives a labctl parent; not killed by a terminal ^C
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: start %s: %w", s.Name, err)
	}
	s.proc, s.done = cmd.Process, make(chan struct{})
	done := s.done
	go func() { cmd.Wait(); close(done) }()
	os.WriteFile(filepath.Join(s.lab.Dir, s.Name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			s.proc = nil
			return fmt.Errorf("lab: %s exited during startup; see %s", s.Name, filepath.Join(s.DataDir, "error.log"))
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := s.queryLocked(pctx, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("lab: %s not ready after 30s: %v", s.Name, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for readiness, not hiding a race
	}
}

func (s *Server) queryLocked(ctx context.Context, q string) (string, error) {
	return s.QueryString(ctx, q)
}

// Running reports whether the lab started this server and it has not exited.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL (kill -9: no clean shutdown, as a crash) and waits for
// the process to be gone.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	s.proc.Signal(syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("lab: %s did not die after SIGKILL", s.Name)
	}
	s.proc = nil
	os.Remove(filepath.Join(s.lab.Dir, s.Name+".pid"))
	return nil
}

// Stop shuts the server down cleanly (SHUTDOWN) and waits for it to exit.
func (s *Server) Stop(ctx context.Context) error {
	if !s.Running() {
		return nil
	}
	s.Exec(ctx, "SHUTDOWN")
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return s.Kill()
	}
	s.mu.Lock()
	s.proc = nil
	s.mu.Unlock()
	return nil
}

// Restart stops (cleanly) and starts the server with extra arguments.
func (s *Server) Restart(ctx context.Context, extra ...string) error {
	if err := s.Stop(ctx); err != nil {
		return err
	}
	return s.Start(ctx, extra...)
}

// Cut takes the host's network interface down: nothing reaches it, and it
// reaches nothing, as when its switch port dies.
func (h *Host) Cut(ctx context.Context) error {
	if h.NS == "" {
		return ErrNoNamespaces
	}
	return run(ctx, "ip", "-n", h.NS, "link", "set", "eth0", "down")
}

// Heal brings the host's interface back.
func (h *Host) Heal(ctx context.Context) error {
	if h.NS == "" {
		return ErrNoNamespaces
	}
	return run(ctx, "ip", "-n", h.NS, "link", "set", "eth0", "up")
}

// Command returns a command that runs on this host (in its namespace).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if h.NS == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// CanReach reports whether a TCP connection from this host to addr
// (host:port) succeeds within a second.
func (h *Host) CanReach(ctx context.Context, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port)
	return h.Command(ctx, "timeout", "1", "bash", "-c", script).Run() == nil
}

// Isolate makes this host unreachable from the given hosts only (blackhole
// routes on this host: it cannot answer them), while everything else still
// reaches it. Unisolate removes the routes.
func (h *Host) Isolate(ctx context.Context, from ...*Host) error {
	if h.NS == "" {
		return ErrNoNamespaces
	}
	for _, f := range from {
		if err := run(ctx, "ip", "-n", h.NS, "route", "add", "blackhole", f.IP+"/32"); err != nil {
			return err
		}
	}
	return nil
}

// Unisolate undoes Isolate.
func (h *Host) Unisolate(ctx context.Context, from ...*Host) error {
	if h.NS == "" {
		return ErrNoNamespaces
	}
	for _, f := range from {
		run(ctx, "ip", "-n", h.NS, "route", "del", "blackhole", f.IP+"/32")
	}
	return nil
}

// bindAddress is where mariadbd listens: every address of its own host in a
// namespace (so a VIP added to the host reaches it, as in production), only
// 127.0.0.1 on loopback.
func (s *Server) bindAddress() string {
	if s.NS != "" {
		return "0.0.0.0"
	}
	return s.IP
}
