// Package fakeserver is a FAKE MySQL/MariaDB server speaking the real wire
// protocol (go-mysql's server package) with scripted state. It exists for
// what real servers here cannot cover: MySQL 8.0/8.4 code paths (there is no
// MySQL server package on this platform) and scale simulations (50+
// servers). Tests that use it say so. It records every statement it receives
// so tests can check the exact statement sequence myha sends.
package fakeserver

import (
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// State is what the fake server reports. Rows are column → value; a nil
// value (absent key in NullColumns) is sent as SQL NULL.
type State struct {
	Version, Comment string
	Vars             map[string]string
	Status           map[string]string
	ReplicaColumns   []string // column order for replica status rows
	ReplicaRows      []map[string]string
	NullColumns      []string // columns sent as NULL in replica rows
	BinlogFile       string
	BinlogPos        int
	ReplicaHosts     []map[string]string // Server_id, Host, Port
	DumpThreads      []map[string]string // ID, USER, HOST
	// Grants are SHOW GRANTS lines; nil means ALL PRIVILEGES.
	Grants []string
}

// Options change how the fake server logs clients in.
type Options struct {
	// TLS, when set, makes the server offer TLS with this configuration.
	TLS *tls.Config
	// AuthMethod is the account's plugin (default mysql_native_password);
	// caching_sha2_password and sha256_password need RSAKey.
	AuthMethod string
	// RSAKey is the key caching_sha2_password and sha256_password hand out
	// to clients without TLS.
	RSAKey *rsa.PrivateKey
}

// Server is one fake endpoint on 127.0.0.1.
type Server struct {
	ln   net.Listener
	srv  *server.Server
	user string
	pass string
	auth string

	logins    atomic.Int64 // login packets received (the user name arrived)
	successes atomic.Int64 // logins whose password the server verified

	mu    sync.Mutex
	state State
	log   []string
	// OnQuery, when set, may answer a statement itself (handled=true).
	OnQuery func(q string) (res *mysql.Result, handled bool, err error)
	wg      sync.WaitGroup
	// conns are the open client connections (under mu), closed by Kill.
	conns map[net.Conn]struct{}
	// killed is closed by Kill: it ends SELECT SLEEP(n) at once, as a
	// dying server ends every session.
	killed   chan struct{}
	killOnce sync.Once
	// NoLog, set before Start returns to callers that never read
	// Statements, keeps the statement log empty (scale runs send millions).
	NoLog atomic.Bool
}

// Start listens on a free loopback port.
func Start(user, pass string, st State) (*Server, error) {
	return StartWith(user, pass, st, Options{})
}

// StartWith is Start with TLS or another authentication method.
func StartWith(user, pass string, st State, opt Options) (*Server, error) {
	if opt.AuthMethod == "" {
		opt.AuthMethod = mysql.AUTH_NATIVE_PASSWORD
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, user: user, pass: pass, state: st, auth: opt.AuthMethod, conns: map[net.Conn]struct{}{}, killed: make(chan struct{}),
		srv: server.NewServer(st.Version, mysql.DEFAULT_COLLATION_ID, opt.AuthMethod, opt.RSAKey, opt.TLS)}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: it stops listening, closes every session (a
// client keeping its connection between queries would otherwise hold
// Close forever) and waits for their handlers to end.
func (s *Server) Close() error {
	s.killOnce.Do(func() { close(s.killed) })
	err := s.ln.Close()
	s.DropConnections()
	s.wg.Wait()
	return err
}

// Kill is a crashed server: the listener and every open connection close
// at once (clients see a reset or EOF), without waiting for sessions to
// end as Close does.
func (s *Server) Kill() {
	s.killOnce.Do(func() { close(s.killed) })
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// DropConnections closes every open session but keeps listening, as a
// server restart or wait_timeout looks to a client holding a session.
func (s *Server) DropConnections() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// SetState replaces the reported state.
func (s *Server) SetState(st State) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

// Statements returns every statement received, in order.
func (s *Server) Statements() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			// Native-password auth: the in-memory default is caching_sha2,
			// which go-sql-driver cannot complete without TLS or RSA keys.
			auth := server.NewInMemoryAuthenticationHandler(s.auth)
			if err := auth.AddUser(s.user, s.pass); err != nil {
				return
			}
			conn, err := s.srv.NewCustomizedConn(&batchConn{Conn: c}, countingAuth{auth, s}, handler{s})
			if err != nil {
				return
			}
			for !conn.Closed() {
				if err := conn.HandleCommand(); err != nil {
					return
				}
			}
		}()
	}
}

// batchConn sends a response's packets in one write: go-mysql's server
// writes every packet on its own (one write per column definition and
// per row), which made the fakes, not the monitors, the bottleneck of a
// sizing run. A response is complete when the server reads again (or
// closes); this is a request/response protocol.
type batchConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	return len(p), nil
}

func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

func (c *batchConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *batchConn) Close() error {
	c.flush()
	return c.Conn.Close()
}

// Logins is how many login packets (carrying the user name) the server
// received; a client that refused the server during the TLS handshake or
// the greeting sent none.
func (s *Server) Logins() int64 { return s.logins.Load() }

// Successes is how many logins the server accepted: each means the client
// handed over its password or a proof of it.
func (s *Server) Successes() int64 { return s.successes.Load() }

// countingAuth counts logins and accepted passwords.
type countingAuth struct {
	*server.InMemoryAuthenticationHandler
	s *Server
}

func (a countingAuth) GetCredential(user string) (server.Credential, bool, error) {
	a.s.logins.Add(1)
	return a.InMemoryAuthenticationHandler.GetCredential(user)
}

func (a countingAuth) OnAuthSuccess(c *server.Conn) error {
	a.s.successes.Add(1)
	return a.InMemoryAuthenticationHandler.OnAuthSuccess(c)
}

type handler struct{ s *Server }

var inList = regexp.MustCompile(`(?i)Variable_name IN \((.*)\)`)

func (h handler) HandleQuery(q string) (*mysql.Result, error) {
	s := h.s
	s.mu.Lock()
	if !s.NoLog.Load() {
		s.log = append(s.log, q)
	}
	st := s.state
	hook := s.OnQuery
	s.mu.Unlock()
	if hook != nil {
		if res, ok, err := hook(q); ok {
			return res, err
		}
	}
	up := strings.ToUpper(strings.TrimSpace(q))
	switch {
	case strings.HasPrefix(up, "SELECT @@VERSION AS VERSION"):
		return result([]string{"version", "comment"}, []map[string]string{{"version": st.Version, "comment": st.Comment}}, nil)
	case strings.HasPrefix(up, "SELECT 'V' AS K, VARIABLE_NAME"):
		// MariaDB's one-statement read of variables and status.
		lists := nameLists.FindAllStringSubmatch(q, -1)
		if len(lists) != 2 {
			return nil, mysql.NewError(mysql.ER_UNKNOWN_ERROR, "fakeserver: want two name lists in: "+q)
		}
		var rows []map[string]string
		for i, src := range []map[string]string{st.Vars, st.Status} {
			k := [2]string{"v", "s"}[i]
			for _, r := range nameRows(src, lists[i][1], st.valueWidth()) {
				rows = append(rows, map[string]string{"k": k, "n": strings.ToUpper(r["Variable_name"]), "v": r["Value"]})
			}
		}
		return result([]string{"k", "n", "v"}, rows, nil)
	case strings.HasPrefix(up, "SELECT @@GLOBAL.GTID_") && strings.Contains(up, " AS "):
		// Variables read whole: SELECT @@GLOBAL.a AS a, @@GLOBAL.b AS b.
		var cols []string
		row := map[string]string{}
		for _, m := range wholeVars.FindAllStringSubmatch(q, -1) {
			cols = append(cols, m[2])
			row[m[2]] = st.Vars[m[1]]
		}
		return result(cols, []map[string]string{row}, nil)
	case strings.HasPrefix(up, "SHOW GLOBAL VARIABLES"):
		return nameValue(st.Vars, q, st.valueWidth())
	case strings.HasPrefix(up, "SHOW GLOBAL STATUS"):
		return nameValue(st.Status, q, st.valueWidth())
	case up == "SHOW ALL SLAVES STATUS" || up == "SHOW REPLICA STATUS" || up == "SHOW SLAVE STATUS":
		return result(st.ReplicaColumns, st.ReplicaRows, st.NullColumns)
	case up == "SHOW MASTER STATUS" || up == "SHOW BINARY LOG STATUS":
		if st.BinlogFile == "" {
			return result([]string{"File", "Position"}, nil, nil)
		}
		return result([]string{"File", "Position"}, []map[string]string{{"File": st.BinlogFile, "Position": fmt.Sprint(st.BinlogPos)}}, nil)
	case up == "SHOW SLAVE HOSTS" || up == "SHOW REPLICAS":
		return result([]string{"Server_id", "Host", "Port", "Master_id"}, st.ReplicaHosts, nil)
	case strings.Contains(up, "INFORMATION_SCHEMA.PROCESSLIST"):
		return result([]string{"ID", "USER", "HOST"}, st.DumpThreads, nil)
	case up == "SHOW GRANTS":
		grants := st.Grants
		if grants == nil {
			grants = []string{"GRANT ALL PRIVILEGES ON *.* TO `myha`@`%`"}
		}
		var rows []map[string]string
		for _, g := range grants {
			rows = append(rows, map[string]string{"Grants": g})
		}
		return result([]string{"Grants"}, rows, nil)
	case strings.HasPrefix(up, "SELECT GET_LOCK("):
		return result([]string{"r"}, []map[string]string{{"r": "1"}}, nil)
	case strings.HasPrefix(up, "SELECT MASTER_GTID_WAIT(") || strings.HasPrefix(up, "SELECT WAIT_FOR_EXECUTED_GTID_SET("):
		return result([]string{"r"}, []map[string]string{{"r": "0"}}, nil)
	case strings.HasPrefix(up, "SELECT @@GTID_EXECUTED AS POS"):
		g := st.Vars["gtid_executed"]
		return result([]string{"pos", "binlog_pos", "slave_pos"}, []map[string]string{{"pos": g, "binlog_pos": g, "slave_pos": ""}}, nil)
	case strings.HasPrefix(up, "SELECT @@GTID_CURRENT_POS AS POS"):
		return result([]string{"pos", "binlog_pos", "slave_pos"}, []map[string]string{{"pos": st.Vars["gtid_current_pos"], "binlog_pos": st.Vars["gtid_binlog_pos"], "slave_pos": st.Vars["gtid_slave_pos"]}}, nil)
	case strings.HasPrefix(up, "SELECT ID FROM INFORMATION_SCHEMA.PROCESSLIST") || strings.HasPrefix(up, "SELECT DISTINCT P.ID"):
		return result([]string{"ID"}, nil, nil)
	case strings.HasPrefix(up, "SELECT @@GLOBAL.READ_ONLY AS RO"):
		ro := "0"
		if v := strings.ToUpper(st.Vars["read_only"]); v == "ON" || v == "1" {
			ro = "1"
		}
		return result([]string{"ro"}, []map[string]string{{"ro": ro}}, nil)
	case strings.HasPrefix(up, "SELECT SLEEP("):
		// A session that waits (myha's primary watch): it ends after n
		// seconds, or at once when the server is killed.
		var secs float64
		fmt.Sscanf(up, "SELECT SLEEP(%g)", &secs)
		select {
		case <-s.killed:
			return nil, errors.New("fakeserver: killed")
		case <-time.After(time.Duration(secs * float64(time.Second))):
		}
		return result([]string{"r"}, []map[string]string{{"r": "0"}}, nil)
	case strings.HasPrefix(up, "SELECT 1"):
		return result([]string{"1"}, []map[string]string{{"1": "1"}}, nil)
	case strings.HasPrefix(up, "SET ") || strings.HasPrefix(up, "STOP ") || strings.HasPrefix(up, "START ") ||
		strings.HasPrefix(up, "CHANGE ") || strings.HasPrefix(up, "RESET ") || strings.HasPrefix(up, "KILL "):
		return nil, nil // accepted and recorded
	}
	return nil, mysql.NewError(mysql.ER_UNKNOWN_ERROR, "fakeserver: unsupported statement: "+q)
}

// valueWidth is where the server cuts a variable's value in SHOW GLOBAL
// VARIABLES and its tables, as real servers do: MariaDB at 4,096
// characters, MySQL 5.7+ at 1,024 (performance_schema VARCHAR(1024)).
// Only @@GLOBAL gives a longer value whole.
func (st State) valueWidth() int {
	if strings.Contains(st.Version, "MariaDB") {
		return 4096
	}
	return 1024
}

func nameValue(vars map[string]string, q string, width int) (*mysql.Result, error) {
	var rows []map[string]string
	if m := inList.FindStringSubmatch(q); m != nil {
		rows = nameRows(vars, m[1], width)
	}
	return result([]string{"Variable_name", "Value"}, rows, nil)
}

var wholeVars = regexp.MustCompile(`(?i)@@GLOBAL\.(\w+) AS (\w+)`)

var nameLists = regexp.MustCompile(`(?i)VARIABLE_NAME IN \(([^)]*)\)`)

// nameRows are the entries of vars named in list ('a','b', any case),
// values cut at width.
func nameRows(vars map[string]string, list string, width int) []map[string]string {
	var rows []map[string]string
	for _, n := range strings.Split(list, ",") {
		n = strings.ToLower(strings.Trim(strings.TrimSpace(n), "'"))
		for k, v := range vars {
			if strings.ToLower(k) == n {
				rows = append(rows, map[string]string{"Variable_name": k, "Value": v[:min(len(v), width)]})
			}
		}
	}
	return rows
}

// Result builds a text resultset for an OnQuery hook's answer.
func Result(cols []string, rows []map[string]string) (*mysql.Result, error) {
	return result(cols, rows, nil)
}

// result builds a text resultset; empty strings are sent as empty (not NULL).
func result(cols []string, rows []map[string]string, nullCols []string) (*mysql.Result, error) {
	values := make([][]any, 0, len(rows))
	for _, r := range rows {
		row := make([]any, len(cols))
		for i, c := range cols {
			v, ok := r[c]
			if !ok || slices.Contains(nullCols, c) {
				row[i] = nil
				continue
			}
			row[i] = []byte(v) // a Go "" would be sent as NULL
		}
		values = append(values, row)
	}
	if len(values) == 0 {
		rs := mysql.NewResultset(len(cols))
		for i, c := range cols {
			rs.Fields[i] = &mysql.Field{Name: []byte(c), Type: mysql.MYSQL_TYPE_VAR_STRING, Charset: 33}
		}
		return mysql.NewResult(rs), nil
	}
	rs, err := mysql.BuildSimpleTextResultset(cols, values)
	if err != nil {
		return nil, err
	}
	return mysql.NewResult(rs), nil
}

func (h handler) UseDB(string) error { return nil }
func (h handler) HandleFieldList(string, string) ([]*mysql.Field, error) {
	return nil, errors.New("fakeserver: field list not supported")
}

// Prepared statements are answered as text queries with their arguments
// written in as quoted literals (a fake's shortcut; real servers bind them).
func (h handler) HandleStmtPrepare(q string) (int, int, any, error) {
	return strings.Count(q, "?"), 0, nil, nil
}
func (h handler) HandleStmtExecute(_ any, q string, args []any) (*mysql.Result, error) {
	var b strings.Builder
	for _, part := range strings.SplitAfter(q, "?") {
		if strings.HasSuffix(part, "?") && len(args) > 0 {
			b.WriteString(strings.TrimSuffix(part, "?"))
			b.WriteString("'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(fmt.Sprint(argValue(args[0]))) + "'")
			args = args[1:]
			continue
		}
		b.WriteString(part)
	}
	res, err := h.HandleQuery(b.String())
	if err != nil || res == nil || res.Resultset == nil || len(res.RowDatas) == 0 {
		return res, err
	}
	return binaryResult(res.Resultset)
}

// binaryResult re-encodes a text resultset in the binary protocol, which
// clients expect after COM_STMT_EXECUTE (a text row there is a malformed
// packet to them). Values stay strings, as the fake's answers are.
func binaryResult(rs *mysql.Resultset) (*mysql.Result, error) {
	names := make([]string, len(rs.Fields))
	for i, f := range rs.Fields {
		names[i] = string(f.Name)
	}
	values := make([][]any, 0, len(rs.RowDatas))
	for _, rd := range rs.RowDatas {
		fvs, err := rd.ParseText(rs.Fields, nil)
		if err != nil {
			return nil, err
		}
		row := make([]any, len(fvs))
		for i := range fvs {
			row[i] = argValue(&fvs[i])
		}
		values = append(values, row)
	}
	brs, err := mysql.BuildSimpleBinaryResultset(names, values)
	if err != nil {
		return nil, err
	}
	return mysql.NewResult(brs), nil
}

func argValue(a any) any {
	switch v := a.(type) {
	case []byte:
		return string(v)
	case mysql.FieldValue:
		return argValue(&v)
	case *mysql.FieldValue:
		switch v.Type {
		case mysql.FieldValueTypeNull:
			return nil
		case mysql.FieldValueTypeString:
			return string(v.AsString()) // String() would quote it
		}
		return v.String()
	}
	return a
}
func (h handler) HandleStmtClose(any) error { return nil }
func (h handler) HandleOtherCommand(byte, []byte) error {
	return errors.New("fakeserver: unsupported command")
}
