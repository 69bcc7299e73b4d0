// Package lab builds real MariaDB replication labs for myha's integration
// tests, benchmarks and demo. As root, every server, monitor and client is its
// own host: a network namespace on a bridge, with an address from
// 198.18.0.0/15 (reserved for network tests, never routed), so a VIP can move
// and a cut really cuts. Without root the servers run on 127.0.0.1 ports and
// the namespace-only operations report ErrNoNamespaces.
//
// A lab removes everything it made on Close, and Start first sweeps leftovers
// of earlier runs whose owner process is gone.
package lab

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Credentials the lab creates on every server. They exist only inside a lab.
const (
	AdminUser = "myha"
	AdminPass = "lab-admin-pw"
	ReplUser  = "repl"
	ReplPass  = "lab-repl-pw"
	// AppUser is an application account: no READ_ONLY ADMIN, so read_only
	// stops it as it stops real clients.
	AppUser      = "app"
	AppPass      = "lab-app-pw"
	ClusterName  = "lab"
	mariadbdPath = "mariadbd"
)

// ErrNoNamespaces is returned by operations that need network namespaces
// (cutting a host off, moving a VIP) when the lab runs on loopback.
var ErrNoNamespaces = errors.New("lab: this needs network namespaces (run as root with iproute2)")

// Options shape a lab.
type Options struct {
	// Servers is how many MariaDB servers (default 3).
	Servers int
	// CoPrimary makes servers 1 and 2 replicate from each other (1 active);
	// the rest replicate from server 1.
	CoPrimary bool
	// NoReplication leaves every server standalone and writable=false.
	NoReplication bool
	// Hosts adds empty hosts (monitors, clients) named by the caller.
	Hosts []string
	// Loopback forces 127.0.0.1 servers even as root.
	Loopback bool
	// Persistent labs (make lab-up) are not swept as leftovers when the
	// process that made them exits; only Destroy removes them.
	Persistent bool
	// ExtraArgs are added to every mariadbd command line.
	ExtraArgs []string
	// SemiSync turns on lossless semi-synchronous replication: the primary
	// side (AFTER_SYNC) on db1 only, the replica side everywhere, so a write
	// acknowledged to a client has reached a replica.
	SemiSync bool
}

// Lab is a running set of servers and hosts.
type Lab struct {
	ID      int
	Dir     string
	Netns   bool
	Bridge  string
	Subnet  string // e.g. 198.18.7.0/24
	Servers []*Server
	Hosts   []*Host
	opts    Options
}

// Host is an empty machine for monitors and clients.
type Host struct {
	Name string
	NS   string // namespace, "" on loopback
	IP   string
	veth string
}

// Server is one MariaDB server of the lab.
type Server struct {
	Name     string // db1, db2, ...
	ServerID int
	Host     // its machine
	Port     int
	DataDir  string
	Socket   string
	lab      *Lab

	mu   sync.Mutex
	proc *os.Process
	done chan struct{}
}

// Addr is host:port as myha's config names the server.
func (s *Server) Addr() string { return fmt.Sprintf("%s:%d", s.IP, s.Port) }

// root holds every lab directory and the server template. Root shares one
// directory (and so one space of lab numbers, which name the subnets,
// namespaces and bridges machine-wide); any other user has a directory of
// its own, so a machine where root has used labs still works for them.
var root = Root(os.Geteuid())

// Root is the lab directory for a user id: /tmp/myha-lab for root,
// /tmp/myha-lab-<uid> for anyone else.
func Root(uid int) string {
	if uid == 0 {
		return "/tmp/myha-lab"
	}
	return fmt.Sprintf("/tmp/myha-lab-%d", uid)
}

// ensureRoot makes the lab root and refuses one that another user owns or
// that is not a plain directory (someone else's, or a planted symlink).
func ensureRoot() error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	st, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !st.IsDir() || (ok && int(sys.Uid) != os.Geteuid()) {
		return fmt.Errorf("lab: %s is not a directory of yours (uid %d); remove it or ask its owner to", root, os.Geteuid())
	}
	return nil
}

// Start builds a lab. On error everything made so far is removed.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Servers == 0 {
		opts.Servers = 3
	}
	if opts.CoPrimary && opts.Servers < 2 {
		return nil, fmt.Errorf("lab: a co-primary pair needs at least 2 servers")
	}
	if _, err := exec.LookPath(mariadbdPath); err != nil {
		return nil, fmt.Errorf("lab: mariadbd not found (apt-get install mariadb-server): %w", err)
	}
	if err := ensureRoot(); err != nil {
		return nil, err
	}
	SweepLeftovers()
	l := &Lab{opts: opts, Netns: !opts.Loopback && canNetns()}
	if err := l.claimID(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	tmpl, err := template(ctx)
	if err != nil {
		return nil, err
	}
	if l.Netns {
		if err := l.makeBridge(ctx); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= opts.Servers; i++ {
		s := &Server{Name: fmt.Sprintf("db%d", i), ServerID: i, lab: l, Port: 3306}
		s.DataDir = filepath.Join(l.Dir, s.Name)
		s.Socket = filepath.Join(s.DataDir, "sock")
		if l.Netns {
			s.Host, err = l.makeHost(ctx, s.Name, 10+i)
			if err != nil {
				return nil, err
			}
		} else {
			s.Host = Host{Name: s.Name, IP: "127.0.0.1"}
			if s.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if out, err := exec.CommandContext(ctx, "cp", "-a", tmpl, s.DataDir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("lab: copy template: %v: %s", err, out)
		}
		l.Servers = append(l.Servers, s)
	}
	if err := l.writeServers(); err != nil {
		return nil, err
	}
	for i, name := range opts.Hosts {
		if !l.Netns {
			l.Hosts = append(l.Hosts, &Host{Name: name, IP: "127.0.0.1"})
			continue
		}
		h, err := l.makeHost(ctx, name, 100+i)
		if err != nil {
			return nil, err
		}
		l.Hosts = append(l.Hosts, &h)
	}
	errs := make([]error, len(l.Servers))
	var wg sync.WaitGroup
	for i, s := range l.Servers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Start(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !opts.NoReplication {
		if err := l.setupReplication(ctx); err != nil {
			return nil, err
		}
	}
	ok = true
	return l, nil
}

// setupReplication points every replica at db1 (and db1 at db2 for a
// co-primary pair) and makes db1 the one writable server.
func (l *Lab) setupReplication(ctx context.Context) error {
	p := l.Servers[0]
	if l.opts.SemiSync {
		for _, s := range l.Servers {
			if err := s.Exec(ctx, "SET GLOBAL rpl_semi_sync_slave_enabled=1"); err != nil {
				return err
			}
		}
		if err := p.Exec(ctx, "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC", "SET GLOBAL rpl_semi_sync_master_timeout=10000", "SET GLOBAL rpl_semi_sync_master_enabled=1"); err != nil {
			return err
		}
	}
	for _, s := range l.Servers[1:] {
		if err := s.ReplicateFrom(ctx, p); err != nil {
			return err
		}
	}
	if l.opts.CoPrimary {
		if err := p.ReplicateFrom(ctx, l.Servers[1]); err != nil {
			return err
		}
	}
	if err := p.Exec(ctx, "SET GLOBAL read_only=0"); err != nil {
		return err
	}
	// One write so every server has a GTID position, then wait for it.
	if err := p.Exec(ctx, "CREATE TABLE lab.seed (id INT PRIMARY KEY) ENGINE=InnoDB"); err != nil {
		return err
	}
	return l.WaitReplicated(ctx, 20*time.Second)
}

// ReplicateFrom points s at src with GTID replication and starts it.
func (s *Server) ReplicateFrom(ctx context.Context, src *Server) error {
	stmt := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, "+
		"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
		quote(src.IP), src.Port, quote(ReplUser), quote(ReplPass))
	if err := s.Exec(ctx, "STOP SLAVE"); err != nil {
		return err
	}
	if err := s.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: CHANGE MASTER: %w", s.Name, err)
	}
	return s.Exec(ctx, "START SLAVE")
}

// WaitReplicated waits until every reachable replica has applied the
// primary's (db1's) current GTID position.
func (l *Lab) WaitReplicated(ctx context.Context, timeout time.Duration) error {
	return l.WaitReplicatedFrom(ctx, l.Servers[0], timeout)
}

// WaitReplicatedFrom waits until every other running server has applied
// src's current gtid_binlog_pos.
func (l *Lab) WaitReplicatedFrom(ctx context.Context, src *Server, timeout time.Duration) error {
	pos, err := src.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if err != nil {
		return err
	}
	for _, s := range l.Servers {
		if s == src || !s.Running() {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
		res, err := s.QueryString(wctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, %d)", quote(pos), int(timeout.Seconds())))
		cancel()
		if err != nil {
			return err
		}
		if res != "0" {
			return fmt.Errorf("lab: %s did not reach %s within %s", s.Name, pos, timeout)
		}
	}
	return nil
}

// Close stops every process and removes every namespace, link and file the
// lab made. It is safe to call twice.
func (l *Lab) Close() error {
	if l == nil || l.Dir == "" {
		return nil
	}
	for _, s := range l.Servers {
		s.Kill()
	}
	destroy(l.ID, l.Dir)
	return nil
}

// Server returns the server with this name (db1...).
func (l *Lab) Server(name string) *Server {
	for _, s := range l.Servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Host returns the extra host with this name.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// ConfigYAML is a myha config describing the lab, for the CLI.
func (l *Lab) ConfigYAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clusters:\n  - name: %s\n    user: %s\n    password: %s\n    replication_user: %s\n    replication_password: %s\n    servers:\n",
		ClusterName, AdminUser, AdminPass, ReplUser, ReplPass)
	for _, s := range l.Servers {
		fmt.Fprintf(&b, "      - address: %s\n", s.Addr())
	}
	return b.String()
}

// WriteConfig writes ConfigYAML to a file in the lab's directory.
func (l *Lab) WriteConfig() (string, error) {
	p := filepath.Join(l.Dir, "myha.yaml")
	return p, os.WriteFile(p, []byte(l.ConfigYAML()), 0o600)
}

// writeServers records each server's name, address and namespace in the lab
// directory, so that another process (labctl write) can Attach to the lab.
func (l *Lab) writeServers() error {
	var b strings.Builder
	for _, s := range l.Servers {
		fmt.Fprintf(&b, "%s %s %d %s\n", s.Name, s.IP, s.Port, orDash(s.NS))
	}
	return os.WriteFile(filepath.Join(l.Dir, "servers"), []byte(b.String()), 0o644)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Attach describes the running lab with this number, made by another process
// (labctl up), to query its servers or write to them. It does not own the lab:
// never Close it; labctl down removes it.
func Attach(id int) (*Lab, error) {
	dir := filepath.Join(root, strconv.Itoa(id))
	b, err := os.ReadFile(filepath.Join(dir, "servers"))
	if err != nil {
		return nil, fmt.Errorf("lab: no lab %d under %s: %w", id, root, err)
	}
	l := &Lab{ID: id, Dir: dir, Bridge: fmt.Sprintf("mhbr%d", id), Subnet: fmt.Sprintf("198.18.%d.0/24", id)}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("lab: %s/servers line %d: %q", dir, i+1, line)
		}
		port, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("lab: %s/servers line %d: %q", dir, i+1, line)
		}
		s := &Server{Name: f[0], ServerID: i + 1, Port: port, lab: l, Host: Host{Name: f[0], IP: f[1]}}
		if f[3] != "-" {
			s.NS, l.Netns = f[3], true
		}
		s.DataDir = filepath.Join(dir, s.Name)
		s.Socket = filepath.Join(s.DataDir, "sock")
		l.Servers = append(l.Servers, s)
	}
	return l, nil
}

// rootDB opens the server's root account over its unix socket, which works
// whatever the network state (namespaces do not isolate the file system).
func (s *Server) rootDB() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = s.Socket
	cfg.Timeout = 2 * time.Second
	cfg.ReadTimeout = 30 * time.Second
	cfg.WriteTimeout = 30 * time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	return db, nil
}

// Exec runs statements as root on the server (over the socket).
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := s.rootDB()
	if err != nil {
		return err
	}
	defer db.Close()
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("%s: %s: %w", s.Name, firstWords(st), err)
		}
	}
	return nil
}

// QueryString runs a one-value query as root.
func (s *Server) QueryString(ctx context.Context, q string) (string, error) {
	db, err := s.rootDB()
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v sql.NullString
	if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
		return "", fmt.Errorf("%s: %s: %w", s.Name, firstWords(q), err)
	}
	return v.String, nil
}

func firstWords(s string) string {
	f := strings.Fields(s)
	if len(f) > 4 {
		f = f[:4]
	}
	return strings.Join(f, " ")
}

func quote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

// FreePort asks the kernel for a free TCP port on loopback and releases
// it for the caller's server (mariadbd, or a monitor on a loopback lab).
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("lab: no free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// SlaveStatus reads one column of the server's SHOW SLAVE STATUS.
func (s *Server) SlaveStatus(ctx context.Context, col string) (string, error) {
	row, err := s.statusRow(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return "", err
	}
	v, ok := row[col]
	if !ok {
		return "", fmt.Errorf("lab: %s: SHOW SLAVE STATUS has no column %s (not a replica?)", s.Name, col)
	}
	return v, nil
}

// MasterStatus is the server's binlog coordinate as file:position.
func (s *Server) MasterStatus(ctx context.Context) (string, error) {
	row, err := s.statusRow(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return "", err
	}
	return row["File"] + ":" + row["Position"], nil
}

func (s *Server) statusRow(ctx context.Context, q string) (map[string]string, error) {
	db, err := s.rootDB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if !rows.Next() {
		return out, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out, rows.Err()
}

// AsUser runs statements on s over TCP as another account (application
// accounts a test creates), the path a client takes.
func (l *Lab) AsUser(ctx context.Context, s *Server, user, pass string, stmts ...string) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, pass
	cfg.Net, cfg.Addr = "tcp", s.Addr()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 10*time.Second, 10*time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("lab: %s as %s: %s: %w", s.Name, user, firstWords(st), err)
		}
	}
	return nil
}
