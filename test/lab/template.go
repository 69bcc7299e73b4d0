package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// template returns a data directory with system tables, myha's lab accounts
// and the lab schema, made once per MariaDB version and copied per server:
// copying takes milliseconds where mariadb-install-db takes a second. The
// template has no binlog, so fresh servers start with empty GTID positions.
func template(ctx context.Context) (string, error) {
	ver, err := exec.CommandContext(ctx, mariadbdPath, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("lab: mariadbd --version: %w", err)
	}
	key := strings.NewReplacer(" ", "_", "/", "_").Replace(strings.TrimSpace(string(ver)))
	dir := filepath.Join(root, "template-"+fmt.Sprintf("%x", hash(key+bootstrapSQL)))
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(root, "tmpl-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	data := filepath.Join(tmp, "data")
	args := []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--innodb-log-file-size=8M"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.CommandContext(ctx, "mariadb-install-db", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("lab: mariadb-install-db: %v: %s", err, tail(out))
	}
	boot := []string{"--no-defaults", "--bootstrap", "--datadir=" + data, "--innodb-log-file-size=8M"}
	if os.Geteuid() == 0 {
		boot = append(boot, "--user=root")
	}
	cmd := exec.CommandContext(ctx, mariadbdPath, boot...)
	cmd.Stdin = strings.NewReader(bootstrapSQL)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("lab: bootstrap: %v: %s", err, tail(out))
	}
	if err := os.WriteFile(filepath.Join(data, "ready"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(data, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "ready")); serr == nil {
			return dir, nil // another process made it meanwhile
		}
		return "", err
	}
	// Templates of older versions or accounts are no longer used.
	old, _ := filepath.Glob(filepath.Join(root, "template-*"))
	for _, o := range old {
		if o != dir {
			os.RemoveAll(o)
		}
	}
	return dir, nil
}

var bootstrapSQL = fmt.Sprintf(`FLUSH PRIVILEGES;
CREATE USER '%s'@'%%' IDENTIFIED BY '%s';
GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION;
CREATE USER '%s'@'%%' IDENTIFIED BY '%s';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'%%';
CREATE DATABASE lab;
CREATE USER '%s'@'%%' IDENTIFIED BY '%s';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON lab.* TO '%s'@'%%';
`, AdminUser, AdminPass, AdminUser, ReplUser, ReplPass, ReplUser, AppUser, AppPass, AppUser)

func hash(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 400 {
		s = "..." + s[len(s)-400:]
	}
	return s
}
