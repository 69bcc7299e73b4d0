package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/myha/myha/config"
	"github.com/myha/myha/failover"
)

// store opens cluster c's records in the state directory. Records belong to
// a set of servers, not only a name: a directory holding another cluster
// called the same is refused (exit 2) rather than read or extended. Other
// problems (a directory this user cannot write) are logged here and met
// again, with their own error, by whatever needs to write.
func (a *app) store(cfg *config.Config, c config.Cluster) (failover.Store, error) {
	s := failover.Store{Dir: cfg.StateDir}
	addrs := make([]string, len(c.Servers))
	for i, sv := range c.Servers {
		addrs[i] = sv.Address
	}
	if err := s.Bind(c.Name, addrs); err != nil {
		if errors.Is(err, failover.ErrForeignState) {
			return s, withCode(exitProblem, err)
		}
		a.log.Info("cannot mark the cluster's records in the state directory", "cluster", c.Name, "err", err)
	}
	return s, nil
}

// userStateDir moves the default state directory to the user's own when
// the config names none and this non-root user cannot write the system one
// (root made /var/lib/myha 0700): ordinary users get working commands, not
// "permission denied" on a directory they did not choose.
func (a *app) userStateDir(cfg *config.Config) {
	if !cfg.StateDirDefaulted || os.Geteuid() == 0 || writableDir(cfg.StateDir) {
		return
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		base = filepath.Join(home, ".local", "state")
	}
	dir := filepath.Join(base, "myha")
	a.log.Info("state_dir not set and "+cfg.StateDir+" is not writable by this user: using "+dir, "uid", os.Geteuid())
	cfg.StateDir = dir
}

// writableDir: the directory exists and this user may create files in it,
// or it does not exist and its parent lets this user create it.
func writableDir(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			const wOK, xOK = 2, 1 // access(2) modes
			return syscall.Access(d, wOK|xOK) == nil
		}
		if d == filepath.Dir(d) {
			return false
		}
	}
}
