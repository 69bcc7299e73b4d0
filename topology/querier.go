package topology

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Row is one result row keyed by column name; SQL NULL is absent.
type Row map[string]string

// Get returns the first of the named columns present, so one call reads a
// column that MariaDB and MySQL name differently (Master_Host / Source_Host).
func (r Row) Get(names ...string) string {
	for _, n := range names {
		if v, ok := r[n]; ok {
			return v
		}
	}
	return ""
}

// Has reports whether any of the columns is present and not NULL.
func (r Row) Has(names ...string) bool {
	for _, n := range names {
		if _, ok := r[n]; ok {
			return true
		}
	}
	return false
}

// Querier runs statements on one server. It is the edge between myha's logic
// and real servers: production uses a database connection, unit tests a fake.
type Querier interface {
	Query(ctx context.Context, q string, args ...any) ([]Row, error)
	Exec(ctx context.Context, q string, args ...any) error
	Close() error
}

// Dialer opens a Querier to a server address.
type Dialer interface {
	Dial(ctx context.Context, addr string) (Querier, error)
}

// SQLDialer connects with go-sql-driver/mysql. Every connection has a dial
// timeout and per-statement read and write timeouts, so a hung server costs
// at most those, and contexts cancel statements in flight.
type SQLDialer struct {
	Credentials    Credentials
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// TLS protects the connection (the zero value is plain text). Every
	// connection also goes through authGuard, which refuses to reveal the
	// password to a server that has not been authenticated.
	TLS TLSSpec
}

// Dial opens a single-connection pool to addr and checks it answers.
func (d SQLDialer) Dial(ctx context.Context, addr string) (Querier, error) {
	cfg := mysql.NewConfig()
	cfg.User = d.Credentials.User
	cfg.Passwd = d.Credentials.Password
	cfg.Net = "tcp"
	cfg.Addr = addr
	cfg.Timeout = d.ConnectTimeout
	cfg.ReadTimeout = d.ReadTimeout
	cfg.WriteTimeout = d.ReadTimeout
	cfg.InterpolateParams = false
	tlsCfg, err := d.TLS.ClientConfig(addr)
	if err != nil {
		return nil, &ServerError{Addr: addr, Op: "connect", Err: err}
	}
	// The TLS configuration goes to this connector only (never the
	// driver's package-wide RegisterTLSConfig), so clusters with
	// different CAs never see each other's settings.
	cfg.TLS = tlsCfg
	cfg.AllowFallbackToPlaintext = d.TLS.mode() == TLSPreferred
	cfg.AllowCleartextPasswords = false
	cfg.AllowOldPasswords = false
	var refusal atomic.Pointer[error]
	cfg.DialFunc = func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return &authGuard{Conn: c, tlsNext: tlsCfg != nil, onErr: func(e error) { refusal.CompareAndSwap(nil, &e) }}, nil
	}
	// Every statement myha builds quotes literals for the default sql_mode:
	// under NO_BACKSLASH_ESCAPES a backslash in a password would be stored
	// doubled. Pin the session's mode without that flag.
	cfg.Params = map[string]string{"sql_mode": "REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')"}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(time.Minute)
	pctx, cancel := context.WithTimeout(ctx, d.ConnectTimeout+d.ReadTimeout)
	defer cancel()
	// One pinned session: GET_LOCK and session variables (lock_wait_timeout,
	// sql_log_bin) belong to a connection, which a pool could swap.
	conn, err := db.Conn(pctx)
	if err == nil {
		err = conn.PingContext(pctx)
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		db.Close()
		if r := refusal.Load(); r != nil {
			err = *r // the driver reports it only as "invalid connection"
		} else if errors.Is(err, mysql.ErrNoTLS) {
			err = fmt.Errorf("the server does not offer TLS, which tls.mode %s requires; myha sent nothing", d.TLS.mode())
		}
		return nil, &ServerError{Addr: addr, Op: "connect", Err: err}
	}
	return &sqlQuerier{db: db, conn: conn, addr: addr}, nil
}

type sqlQuerier struct {
	db   *sql.DB
	conn *sql.Conn
	addr string
}

func (q *sqlQuerier) Close() error {
	q.conn.Close()
	return q.db.Close()
}

func (q *sqlQuerier) Exec(ctx context.Context, stmt string, args ...any) error {
	if _, err := q.conn.ExecContext(ctx, stmt, args...); err != nil {
		return &ServerError{Addr: q.addr, Op: firstWords(stmt), Err: err}
	}
	return nil
}

func (q *sqlQuerier) Query(ctx context.Context, stmt string, args ...any) ([]Row, error) {
	rows, err := q.conn.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, &ServerError{Addr: q.addr, Op: firstWords(stmt), Err: err}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, &ServerError{Addr: q.addr, Op: firstWords(stmt), Err: err}
	}
	var out []Row
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, &ServerError{Addr: q.addr, Op: firstWords(stmt), Err: err}
		}
		r := make(Row, len(cols))
		for i, c := range cols {
			if vals[i] != nil {
				r[c] = string(vals[i])
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, &ServerError{Addr: q.addr, Op: firstWords(stmt), Err: err}
	}
	return out, nil
}

// ServerError is a failed operation on one server; it names the server and
// the statement kind but never the statement's arguments (which may hold
// passwords).
type ServerError struct {
	Addr string
	Op   string
	Err  error
}

// Error names the server and the statement kind, never the statement.
func (e *ServerError) Error() string { return fmt.Sprintf("%s: %s: %s", e.Addr, e.Op, describe(e.Err)) }

// Unwrap gives the driver error, for MySQLErrorNumber and errors.Is.
func (e *ServerError) Unwrap() error { return e.Err }

// MySQLErrorNumber returns the server error number inside err, or 0.
func MySQLErrorNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// describe shortens driver errors to what an operator needs.
func describe(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "no route to host"):
		return "no route to host"
	}
	return err.Error()
}

func firstWords(stmt string) string {
	f := strings.Fields(stmt)
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, " ")
}
