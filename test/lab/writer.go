package lab

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Writer is a client that inserts a row every Interval as the app user and
// records which rows the server acknowledged, and when. Tests compare the
// acknowledged rows with what survives a failover.
type Writer struct {
	lab      *Lab
	table    string
	interval time.Duration
	retarget bool

	mu     sync.Mutex
	target *Server
	next   int64
	acked  []int64
	times  []time.Time
	on     []*Server // the server that acknowledged each row
	errs   int
	dbs    map[*Server]*sql.DB
	cancel context.CancelFunc
	done   chan struct{}
	// Debug, when set before writes start, is told about each failed write.
	Debug func(string)
	// user and pass are the account it writes as (AppUser by default).
	user, pass string
}

// CreateWriteTable makes the table writers insert into, on db1.
func (l *Lab) CreateWriteTable(ctx context.Context, table string) error {
	return l.Servers[0].Exec(ctx, fmt.Sprintf("CREATE TABLE lab.%s (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB", table))
}

// StartWriter starts writing to target. With retarget, a failed write makes
// the writer look for whichever server accepts writes, like a client behind
// a VIP or proxy that follows the primary.
func (l *Lab) StartWriter(table string, target *Server, interval time.Duration, retarget bool) *Writer {
	return l.StartWriterAs(AppUser, AppPass, table, target, interval, retarget)
}

// StartWriterAs is StartWriter writing as another account (one a test made,
// say with privileges that bypass read_only).
func (l *Lab) StartWriterAs(user, pass, table string, target *Server, interval time.Duration, retarget bool) *Writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{lab: l, table: table, interval: interval, retarget: retarget, target: target, next: 1,
		dbs: map[*Server]*sql.DB{}, cancel: cancel, done: make(chan struct{}), user: user, pass: pass}
	// Continue after rows earlier writers left, so ids never collide.
	if last, err := target.QueryString(ctx, fmt.Sprintf("SELECT COALESCE(MAX(id), 0) FROM lab.%s", table)); err == nil {
		if n, err := strconv.ParseInt(last, 10, 64); err == nil {
			w.next = n + 1_000_000
		}
	}
	go w.loop(ctx)
	return w
}

func (w *Writer) db(s *Server) *sql.DB {
	if db := w.dbs[s]; db != nil {
		return db
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = w.user, w.pass, "tcp", s.Addr()
	cfg.TLS = w.lab.ClientTLS(s)
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 300*time.Millisecond, time.Second, time.Second
	cfg.InterpolateParams = true
	c, _ := mysql.NewConnector(cfg)
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	w.dbs[s] = db
	return db
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		id, target := w.next, w.target
		w.next++ // never reuse an id: a write with an unknown outcome may exist
		w.mu.Unlock()
		ok := w.insert(ctx, target, id)
		if !ok && w.retarget {
			for _, s := range w.lab.Servers {
				if s == target || ctx.Err() != nil {
					continue
				}
				w.mu.Lock()
				id = w.next
				w.next++
				w.mu.Unlock()
				if w.insert(ctx, s, id) {
					w.mu.Lock()
					w.target = s
					w.mu.Unlock()
					break
				}
			}
		}
	}
}

func (w *Writer) insert(ctx context.Context, s *Server, id int64) bool {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := w.db(s).ExecContext(ictx, fmt.Sprintf("INSERT INTO lab.%s (id, at) VALUES (?, NOW(6))", w.table), id)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.errs++
		if w.Debug != nil {
			w.Debug(fmt.Sprintf("%s %s id %d: %v", now.Format("15:04:05.000"), s.Name, id, err))
		}
		return false
	}
	w.acked = append(w.acked, id)
	w.times = append(w.times, now)
	w.on = append(w.on, s)
	return true
}

// Stop ends the writer and waits for its last write to finish.
func (w *Writer) Stop() {
	w.cancel()
	<-w.done
	for _, db := range w.dbs {
		db.Close()
	}
}

// Target is the server the writer writes to now (with retarget, the last one
// that accepted a write).
func (w *Writer) Target() *Server {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.target
}

// FirstAckAfter returns when a server other than not first acknowledged a
// write at or after t, and which server; ok is false if none did.
func (w *Writer) FirstAckAfter(t time.Time, not *Server) (at time.Time, s *Server, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, a := range w.times {
		if !a.Before(t) && w.on[i] != not {
			return a, w.on[i], true
		}
	}
	return time.Time{}, nil, false
}

// Acked returns the acknowledged row ids.
func (w *Writer) Acked() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// WaitAcked waits until n writes were acknowledged.
func (w *Writer) WaitAcked(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(w.Acked()) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: only %d of %d writes acknowledged in %s", len(w.Acked()), n, timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling the writer's progress
	}
	return nil
}

// MaxGap is the longest time between two consecutive acknowledged writes:
// the write outage a client saw.
func (w *Writer) MaxGap() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var g time.Duration
	for i := 1; i < len(w.times); i++ {
		g = max(g, w.times[i].Sub(w.times[i-1]))
	}
	return g
}

// Missing returns the acknowledged ids that s does not have.
func (w *Writer) Missing(ctx context.Context, s *Server) ([]int64, error) {
	db, err := s.rootDB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT id FROM lab.%s", w.table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		have[id] = true
	}
	var missing []int64
	for _, id := range w.Acked() {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing, rows.Err()
}

// Checksum returns CHECKSUM TABLE for a lab table on s.
func (s *Server) Checksum(ctx context.Context, table string) (string, error) {
	db, err := s.rootDB()
	if err != nil {
		return "", err
	}
	defer db.Close()
	var name, sum sql.NullString
	if err := db.QueryRowContext(ctx, "CHECKSUM TABLE lab."+table).Scan(&name, &sum); err != nil {
		return "", err
	}
	return sum.String, nil
}

// AckedBefore returns the rows acknowledged before t.
func (w *Writer) AckedBefore(t time.Time) []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int64
	for i, at := range w.times {
		if at.Before(t) {
			out = append(out, w.acked[i])
		}
	}
	return out
}

// MissingOf returns which of ids the server lacks.
func (w *Writer) MissingOf(ctx context.Context, s *Server, ids []int64) ([]int64, error) {
	var missing []int64
	for _, id := range ids {
		n, err := s.QueryString(ctx, fmt.Sprintf("SELECT COUNT(*) FROM lab.%s WHERE id = %d", w.table, id))
		if err != nil {
			return nil, err
		}
		if n != "1" {
			missing = append(missing, id)
		}
	}
	return missing, nil
}
