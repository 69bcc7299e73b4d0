// Package capture makes a myha monitor a durable binlog capture of its
// cluster's primary: a replica that stores the primary's binlog events and
// never applies them. With semi-sync on the primary, a capture acknowledges
// a transaction only after it is fsynced here, so a client's commit returns
// only once the transaction is on at least one monitor's disk. When the
// primary's host is then lost, the failover replays from the capture what
// no replica received (see Server).
package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/myha/myha/binlog"
)

// Config is one capture: one cluster on one monitor.
type Config struct {
	Cluster string
	Dir     string
	Store   StoreOptions
	Dump    DumpOptions // Addr is ignored: the capture follows SetPrimary
	// StartPosition is asked for when the store is empty: where to begin
	// (the primary's current gtid_binlog_pos, read by the caller).
	StartPosition func(ctx context.Context, addr string) (binlog.MariaDBPos, error)
	// SyncEvery bounds how long a transaction the primary did not ask to
	// acknowledge waits for its fsync.
	SyncEvery time.Duration
	// OnBreak, if set, is called when an established stream from addr
	// ends on its own (EOF, reset, silence past the heartbeat), not when
	// the capture moves to another primary or stops: the primary may be
	// down, and the monitor re-probes it at once. A hint only, never a
	// verdict (the quorum and the replicas decide).
	OnBreak func(addr string, err error)
}

// Capture streams the current primary's binlog into a Store.
type Capture struct {
	cfg   Config
	store *Store
	log   *slog.Logger

	mu      sync.Mutex
	primary string
	change  chan struct{}
	st      Status
}

// Status is what a capture reports (API, metrics, myha check).
type Status struct {
	Cluster   string `json:"cluster"`
	Primary   string `json:"primary"`
	Position  string `json:"position"`
	Connected bool   `json:"connected"`
	// SemiSync says the primary asks this capture for acknowledgements.
	SemiSync     bool      `json:"semi_sync"`
	Acks         uint64    `json:"acks"`
	Transactions uint64    `json:"transactions"`
	LastEvent    time.Time `json:"last_event,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	// Gaps counts restarts from the primary's current position because
	// the captured position was not in its binlog (a new primary that
	// lacks what this capture held, or purged binlogs).
	Gaps     uint64 `json:"gaps"`
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`
}

// New opens the capture's store (recovering its position from disk).
func New(cfg Config, log *slog.Logger) (*Capture, error) {
	if log == nil {
		log = slog.Default()
	}
	st, err := OpenStore(cfg.Dir, cfg.Store, log)
	if err != nil {
		return nil, err
	}
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = 100 * time.Millisecond
	}
	return &Capture{cfg: cfg, store: st, log: log.With("cluster", cfg.Cluster, "capture", cfg.Dir), change: make(chan struct{}, 1),
		st: Status{Cluster: cfg.Cluster, Position: st.Position().String()}}, nil
}

// Store is the capture's on-disk store (the replay server reads it).
func (c *Capture) Store() *Store { return c.store }

// SetPrimary points the capture at the cluster's agreed primary ("" stops
// streaming). A change drops the current stream and starts from the
// captured position on the new primary.
func (c *Capture) SetPrimary(addr string) {
	c.mu.Lock()
	changed := c.primary != addr
	c.primary = addr
	c.st.Primary = addr
	c.mu.Unlock()
	if changed {
		select {
		case c.change <- struct{}{}:
		default:
		}
	}
}

// Status reports the capture's state.
func (c *Capture) Status() Status {
	c.mu.Lock()
	s := c.st
	c.mu.Unlock()
	st := c.store.Stats()
	s.Position = c.store.Position().String()
	s.Segments, s.Bytes = st.Segments, st.Bytes
	return s
}

func (c *Capture) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Connected = false
	if err != nil {
		c.st.LastError, c.st.LastErrorAt = err.Error(), time.Now()
	}
}

// Run streams until ctx ends, reconnecting with a short backoff. It never
// returns an error: failures are reported through Status and the log.
func (c *Capture) Run(ctx context.Context) {
	defer func() {
		if err := c.store.Close(); err != nil {
			c.log.Warn("capture: closing the store", "error", err)
		}
	}()
	backoff := 200 * time.Millisecond
	retain := time.NewTicker(time.Minute)
	defer retain.Stop()
	for ctx.Err() == nil {
		c.mu.Lock()
		addr := c.primary
		c.mu.Unlock()
		if addr == "" {
			select {
			case <-ctx.Done():
				return
			case <-c.change:
			case <-retain.C:
				c.store.Retain()
			}
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		stopWatch := make(chan struct{})
		changed := make(chan bool, 1)
		go func() {
			select {
			case <-c.change:
				cancel()
				changed <- true
			case <-stopWatch:
				changed <- false
			}
		}()
		err := c.stream(sctx, addr)
		close(stopWatch)
		cancel()
		moved := <-changed
		if ctx.Err() != nil {
			return
		}
		c.setErr(err)
		if err != nil && !moved {
			c.log.Warn("capture: stream ended", "primary", addr, "error", err)
		}
		c.store.Retain()
		if moved {
			backoff = 200 * time.Millisecond
			continue
		}
		wait := backoff + time.Duration(rand.Int64N(int64(backoff/2)))
		select {
		case <-ctx.Done():
			return
		case <-c.change:
			backoff = 200 * time.Millisecond
		case <-time.After(wait):
			backoff = min(backoff*2, 3*time.Second)
		}
	}
}

// stream runs one dump connection to addr until it fails or ctx ends.
func (c *Capture) stream(ctx context.Context, addr string) error {
	pos := c.store.Position()
	if pos.IsEmpty() && c.cfg.StartPosition != nil {
		p, err := c.cfg.StartPosition(ctx, addr)
		if err != nil {
			return fmt.Errorf("reading the primary's position to start from: %w", err)
		}
		pos = p
	}
	o := c.cfg.Dump
	o.Addr = addr
	d, err := dial(ctx, o, pos)
	if err != nil {
		return err
	}
	defer d.Close()
	err = c.consume(ctx, d, pos)
	if err != nil && ctx.Err() == nil && c.cfg.OnBreak != nil {
		c.cfg.OnBreak(addr, err)
	}
	var se *ServerError
	if errors.As(err, &se) && se.Code == errPositionGone && c.cfg.StartPosition != nil {
		// The primary's binlog does not hold what follows our position.
		// Start again from its current position in a new segment, and say
		// so: transactions in between are not captured.
		p, perr := c.cfg.StartPosition(ctx, addr)
		if perr != nil {
			return errors.Join(err, perr)
		}
		c.log.Warn("capture: the primary cannot send what follows the captured position; restarting from its current position (a gap)", "primary", addr, "captured", pos, "restart", p, "error", se.Message)
		c.mu.Lock()
		c.st.Gaps++
		c.mu.Unlock()
		d.Close()
		d, err = dial(ctx, o, p)
		if err != nil {
			return err
		}
		defer d.Close()
		return c.consume(ctx, d, p)
	}
	return err
}

// consume reads events: it keeps a transaction in memory until its last
// event, appends it whole to the store, fsyncs when the primary asked for
// an ACK (or SyncEvery passed), and only then acknowledges.
func (c *Capture) consume(ctx context.Context, d *dumpConn, start binlog.MariaDBPos) error {
	var (
		txn        [][]byte
		gtid       binlog.GTID
		standalone bool
		begun      bool
		lastSync   = time.Now()
	)
	for {
		p, err := d.read()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		e := p.Event
		c.mu.Lock()
		c.st.Connected, c.st.SemiSync, c.st.LastEvent = true, d.semi, time.Now()
		c.mu.Unlock()
		switch {
		case e.Type == evFormatDesc:
			if err := c.store.Begin(e.Raw, start); err != nil {
				return err
			}
			begun = true
			continue
		case e.Type == evRotate, e.Type == evHeartbeat, e.Type == evGTIDList, e.Type == evCheckpoint, e.Type == evStartEncryp:
			// Stream bookkeeping, not part of any transaction.
			if p.NeedACK {
				if err := c.syncAndAck(d, e.LogPos); err != nil {
					return err
				}
			}
			continue
		case e.Type == evGTID:
			if !begun {
				return errors.New("the primary sent a transaction before its format description event")
			}
			g, sa, err := gtidOf(e, d.crc)
			if err != nil {
				return err
			}
			txn, gtid, standalone = [][]byte{e.Raw}, g, sa
		default:
			if txn == nil {
				// Outside a transaction (the rest of one that began
				// before our start position): nothing to keep.
				continue
			}
			txn = append(txn, e.Raw)
		}
		// The primary asks for the ACK on a transaction's last event, so
		// an ACK request also closes the transaction: nothing is ever
		// acknowledged that is not appended and synced.
		if txn != nil && e.Type != evGTID && (endsTransaction(e, d.crc, standalone) || p.NeedACK) {
			if err := c.store.Append(txn, gtid); err != nil {
				return err
			}
			txn = nil
			start = c.store.Position()
			c.mu.Lock()
			c.st.Transactions++
			c.mu.Unlock()
		}
		switch {
		case p.NeedACK:
			if err := c.syncAndAck(d, e.LogPos); err != nil {
				return err
			}
			lastSync = time.Now()
		case time.Since(lastSync) >= c.cfg.SyncEvery:
			if err := c.store.Sync(); err != nil {
				return err
			}
			lastSync = time.Now()
		}
	}
}

// syncAndAck makes the store durable, then acknowledges logPos: the ACK
// never runs ahead of the disk.
func (c *Capture) syncAndAck(d *dumpConn, logPos uint32) error {
	if err := c.store.Sync(); err != nil {
		return err
	}
	if err := d.ack(logPos); err != nil {
		return fmt.Errorf("semi-sync ACK: %w", err)
	}
	c.mu.Lock()
	c.st.Acks++
	c.mu.Unlock()
	return nil
}
