package capture

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"

	"github.com/myha/myha/binlog"
)

// Replay method. When a capture holds transactions that no replica
// received, the failover has the server it promotes replicate from the
// capture: this Server speaks enough of the MariaDB primary protocol for a
// real replica's IO thread (handshake, the queries it sends on connect,
// COM_BINLOG_DUMP with @slave_connect_state), and streams the stored events
// byte for byte. The new primary's own SQL thread applies them, so:
//   - gtid_slave_pos advances natively, per domain, with gtid_strict_mode
//     checking the order; nothing has to be fixed up afterwards (BINLOG
//     statement replay only advances gtid_binlog_pos, see
//     replication-facts.md);
//   - the server starts each domain after its own position (the stream is
//     filtered per domain by @slave_connect_state), which is what makes
//     two domains with different gaps correct;
//   - in a co-primary pair the captured stream holds the passive's own
//     writes replicated back by the active one: the IO thread skips
//     events of its own server_id as it does on the pair link, where
//     BINLOG replay would re-apply them (by design; not yet tested on a
//     pair);
//   - every event type and binlog_format is handled by the server's own
//     applier (statement, row, DDL, XA), not by a re-implementation.
// The server only serves; the executor decides who connects (only the
// server the plan promotes is pointed at it), and the connection needs the
// replication account and an address of one of the cluster's servers.

// ServerOptions configure a replay server.
type ServerOptions struct {
	// ServerID is reported as @@server_id (the capture's id).
	ServerID uint32
	// User and Password are the replication account replicas use.
	User, Password string
	// AllowDump says whether a client at this IP may receive events (the
	// cluster's database servers); AllowQuery whether it may ask for the
	// position (monitors too).
	AllowDump, AllowQuery func(ip string) bool
	// TLS, when set, is offered to every client (ServerTLS): the cluster
	// uses TLS to its servers, so the replica replaying from the capture
	// connects with MASTER_SSL=1 and checks this certificate as it checks
	// the servers'.
	TLS *tls.Config
	// RequireTLS refuses clients that did not switch to TLS, right after
	// the handshake and before any query or event (the cluster's tls.mode
	// is required, verify-ca or verify-full).
	RequireTLS bool
}

// Server serves a Store as a binlog source.
type Server struct {
	store *Store
	opts  ServerOptions
	log   *slog.Logger
	srv   *server.Server

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// NewServer makes a replay server for store.
func NewServer(store *Store, opts ServerOptions, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{store: store, opts: opts, log: log,
		srv:   server.NewServer("10.11.99-myha-capture", gomysql.DEFAULT_COLLATION_ID, gomysql.AUTH_NATIVE_PASSWORD, nil, opts.TLS),
		conns: map[net.Conn]bool{}}
}

// Serve accepts connections until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.mu.Lock()
		s.conns[nc] = true
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("capture server: connection handler panicked", "remote", nc.RemoteAddr(), "panic", r)
				}
				nc.Close()
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
			}()
			s.handle(ctx, nc)
		}()
	}
}

type authHandler struct {
	*server.InMemoryAuthenticationHandler
	allow      func(string) bool
	requireTLS bool
}

func (a authHandler) OnAuthSuccess(c *server.Conn) error {
	if a.requireTLS {
		if _, ok := c.Conn.Conn.(*tls.Conn); !ok {
			return gomysql.NewError(gomysql.ER_ACCESS_DENIED_ERROR, "the myha capture requires TLS (the cluster's tls.mode): connect with SSL (replicas: MASTER_SSL=1)")
		}
	}
	if a.allow != nil && !a.allow(remoteIP(c.RemoteAddr())) {
		return gomysql.NewError(gomysql.ER_ACCESS_DENIED_ERROR, "this address may not use the capture")
	}
	return nil
}

func remoteIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	h, _, _ := net.SplitHostPort(a.String())
	return h
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second)) // handshake and setup
	auth := server.NewInMemoryAuthenticationHandler(gomysql.AUTH_NATIVE_PASSWORD)
	if err := auth.AddUser(s.opts.User, s.opts.Password); err != nil {
		s.log.Warn("capture server: account", "error", err)
		return
	}
	allow := func(ip string) bool {
		return (s.opts.AllowQuery != nil && s.opts.AllowQuery(ip)) || (s.opts.AllowDump != nil && s.opts.AllowDump(ip))
	}
	h := &session{s: s, nc: nc, ctx: ctx, vars: map[string]string{}}
	c, err := s.srv.NewCustomizedConn(nc, authHandler{auth, allow, s.opts.RequireTLS}, h)
	if err != nil {
		s.log.Debug("capture server: handshake failed", "remote", nc.RemoteAddr(), "error", firstLine(err))
		return
	}
	h.c = c
	for !c.Closed() && ctx.Err() == nil {
		_ = nc.SetDeadline(time.Now().Add(time.Minute))
		if err := c.HandleCommand(); err != nil {
			return
		}
	}
}

// session is one client connection.
type session struct {
	server.EmptyHandler
	s    *Server
	nc   net.Conn
	c    *server.Conn
	ctx  context.Context
	vars map[string]string
}

var setVar = regexp.MustCompile(`(?i)@(\w+)\s*=\s*('([^']*)'|[^,\s]+)`)

func (h *session) HandleQuery(q string) (*gomysql.Result, error) {
	t := strings.TrimSpace(q)
	u := strings.ToUpper(t)
	switch {
	case strings.HasPrefix(u, "SET "):
		for _, m := range setVar.FindAllStringSubmatch(t, -1) {
			v := m[2]
			if strings.HasPrefix(v, "'") {
				v = m[3]
			}
			h.vars[strings.ToLower(m[1])] = v
		}
		return nil, nil
	case strings.HasPrefix(u, "SELECT"):
		return h.selectValues(u)
	case strings.HasPrefix(u, "SHOW"):
		r, _ := gomysql.BuildSimpleTextResultset([]string{"Variable_name", "Value"}, nil)
		return gomysql.NewResult(r), nil
	}
	return nil, gomysql.NewError(gomysql.ER_NOT_SUPPORTED_YET, "the myha capture server does not run this statement")
}

// selectValues answers the one-row SELECTs a replica sends on connect, and
// the position query monitors use.
func (h *session) selectValues(u string) (*gomysql.Result, error) {
	var v any
	switch {
	case strings.Contains(u, "UNIX_TIMESTAMP()"):
		v = strconv.FormatInt(time.Now().Unix(), 10)
	case strings.Contains(u, "SERVER_ID"):
		v = strconv.FormatUint(uint64(h.s.opts.ServerID), 10)
	case strings.Contains(u, "@MASTER_BINLOG_CHECKSUM"):
		v = "NONE"
		if h.s.store.crcNow() {
			v = "CRC32"
		}
	case strings.Contains(u, "GTID_DOMAIN_ID"):
		v = "0"
	case strings.Contains(u, "GTID_BINLOG_POS"), strings.Contains(u, "GTID_CURRENT_POS"):
		v = h.s.store.Position().String()
	case strings.Contains(u, "@@GLOBAL.COLLATION_SERVER"):
		v = "utf8mb4_general_ci"
	case strings.Contains(u, "TIME_ZONE"):
		v = "SYSTEM"
	default:
		v = nil
	}
	r, err := gomysql.BuildSimpleTextResultset([]string{"v"}, [][]any{{v}})
	if err != nil {
		return nil, err
	}
	return gomysql.NewResult(r), nil
}

func (h *session) HandleOtherCommand(cmd byte, data []byte) error {
	switch cmd {
	case gomysql.COM_REGISTER_SLAVE:
		return nil
	case gomysql.COM_BINLOG_DUMP:
		if h.s.opts.AllowDump == nil || !h.s.opts.AllowDump(remoteIP(h.nc.RemoteAddr())) {
			return gomysql.NewError(gomysql.ER_ACCESS_DENIED_ERROR, "only the cluster's database servers may replicate from the capture")
		}
		err := h.dump()
		h.c.Close()
		return err
	}
	return gomysql.NewError(gomysql.ER_UNKNOWN_COM_ERROR, "command not supported by the myha capture server")
}

// dump streams every stored transaction the replica lacks, then
// heartbeats (and anything captured meanwhile) until the replica leaves.
func (h *session) dump() error {
	state, err := binlog.ParseMariaDBPos(h.vars["slave_connect_state"])
	if err != nil {
		return gomysql.NewError(gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, "bad @slave_connect_state: "+err.Error())
	}
	period := time.Second
	if ns, err := strconv.ParseInt(h.vars["master_heartbeat_period"], 10, 64); err == nil && ns > 0 && time.Duration(ns) < period {
		period = time.Duration(ns)
	}
	crc := h.s.store.crcNow()
	const file = "myha-capture"
	send := func(ev []byte) error {
		_ = h.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return h.c.WritePacket(append([]byte{0, 0, 0, 0, pktOK}, ev...))
	}
	rot := binary.LittleEndian.AppendUint64(nil, 4)
	if err := send(encode(header{Type: evRotate, ServerID: h.s.opts.ServerID, Flags: flagArtificial}, append(rot, file...), crc)); err != nil {
		return err
	}
	var lastFDE []byte
	var logPos uint32
	sent := state
	n := 0
	flush := func() error {
		return h.s.store.Each(sent, func(fde []byte, t Txn) error {
			if string(fde) != string(lastFDE) {
				if err := send(fde); err != nil {
					return err
				}
				lastFDE = fde
			}
			for _, ev := range t.Events {
				if err := send(ev); err != nil {
					return err
				}
				if hd, err := parseHeader(ev); err == nil {
					logPos = hd.LogPos
				}
			}
			sent = sent.Merge(posOf(t.GTID))
			n++
			return nil
		})
	}
	if err := flush(); err != nil {
		return err
	}
	if lastFDE == nil {
		// Nothing to send yet: the replica still needs a description.
		if fde := h.s.store.currentFDE(); fde != nil {
			if err := send(fde); err != nil {
				return err
			}
			lastFDE = fde
		}
	}
	h.s.log.Info("capture server: replica caught up from the capture", "remote", h.nc.RemoteAddr(), "from", state.String(), "transactions", n, "now", sent.String())
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return errors.New("capture server stopping")
		case <-tick.C:
		}
		if err := flush(); err != nil {
			return err
		}
		hb := encode(header{Type: evHeartbeat, ServerID: h.s.opts.ServerID, LogPos: logPos, Flags: flagArtificial}, []byte(file), crc)
		if err := send(hb); err != nil {
			return nil // the replica left (STOP SLAVE)
		}
	}
}

// QueryPosition asks a capture server for its position (the leader uses
// it to learn what other monitors' captures hold), over the cluster's TLS.
func QueryPosition(ctx context.Context, addr, user, password string, t ClientTLS, timeout time.Duration) (binlog.MariaDBPos, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := connect(ctx, addr, user, password, t, nil, func(c *client.Conn) error {
		c.ReadTimeout, c.WriteTimeout = timeout, timeout
		return nil
	})
	if err != nil {
		return binlog.MariaDBPos{}, fmt.Errorf("capture at %s: %w", addr, clean(err))
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r, err := c.Execute("SELECT @@gtid_binlog_pos")
	if err != nil {
		return binlog.MariaDBPos{}, fmt.Errorf("capture at %s: %s", addr, firstLine(err))
	}
	s, err := r.GetString(0, 0)
	if err != nil {
		return binlog.MariaDBPos{}, fmt.Errorf("capture at %s: %s", addr, firstLine(err))
	}
	return binlog.ParseMariaDBPos(s)
}
