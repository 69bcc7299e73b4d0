package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/myha/myha/binlog"
)

// The dump client: a minimal MariaDB replica connection that receives the
// binlog and acknowledges semi-sync itself. go-mysql's BinlogSyncer cannot
// be used for this: with SemiSyncEnabled it sends the ACK while parsing the
// event, before any consumer has written it, so its ACK would not mean
// "durable here". This client returns each packet to the capture, which
// writes and fsyncs the transaction first and only then calls ack.

// Stream packet markers.
const (
	pktOK       = 0x00
	pktEOF      = 0xfe
	pktErr      = 0xff
	semiSyncHdr = 0xef
	// semiSyncNeedACK in the byte after the marker asks for an ACK.
	semiSyncNeedACK = 0x01
)

// packet is one decoded binlog stream packet.
type packet struct {
	Event   event
	NeedACK bool
}

// decodePacket decodes one packet of a binlog dump stream. semi says the
// stream carries the 2-byte semi-sync header. It never panics: everything
// it reads is bounds-checked, because the bytes come from the network.
func decodePacket(data []byte, semi, crc bool) (packet, error) {
	if len(data) == 0 {
		return packet{}, errors.New("empty binlog stream packet")
	}
	switch data[0] {
	case pktOK:
	case pktErr:
		return packet{}, streamError(data)
	case pktEOF:
		return packet{}, errors.New("the server ended the binlog stream (EOF packet)")
	default:
		return packet{}, fmt.Errorf("binlog stream packet starts with 0x%02x, not OK", data[0])
	}
	data = data[1:]
	var p packet
	if semi {
		if len(data) < 2 || data[0] != semiSyncHdr {
			return packet{}, errors.New("binlog stream packet lacks the semi-sync header the stream announced")
		}
		p.NeedACK = data[1] == semiSyncNeedACK
		data = data[2:]
	}
	e, err := decodeEvent(data, crc)
	if err != nil {
		return packet{}, err
	}
	p.Event = e
	return p, nil
}

// ServerError is an error packet the server sent.
type ServerError struct {
	Code    uint16
	Message string
}

func (e *ServerError) Error() string { return fmt.Sprintf("server error %d: %s", e.Code, e.Message) }

// errPositionGone is MariaDB's "could not find GTID state requested by
// slave in any binlog files" / purged binlog family (ER_MASTER_FATAL_ERROR_READING_BINLOG).
const errPositionGone = 1236

func streamError(data []byte) error {
	if len(data) < 3 {
		return &ServerError{Message: "malformed error packet"}
	}
	code := binary.LittleEndian.Uint16(data[1:])
	msg := data[3:]
	if len(msg) > 0 && msg[0] == '#' && len(msg) >= 6 {
		msg = msg[6:] // SQL state marker
	}
	return &ServerError{Code: code, Message: string(msg)}
}

// dumpConn is one binlog dump connection to a primary.
type dumpConn struct {
	c       *client.Conn
	raw     net.Conn // the socket under c (and under TLS)
	semi    bool     // packets carry the semi-sync header
	started bool
	file    string // the primary's binlog file, for ACKs
	crc     bool
	once    sync.Once
	stop    func() bool
	mu      sync.Mutex // serializes ACK writes
}

// DumpOptions configure a dump connection.
type DumpOptions struct {
	Addr, User, Password string
	// ServerID identifies this capture to the primary; it must differ from
	// every server's and every other capture's (a second dump with the
	// same id makes the primary drop the first).
	ServerID uint32
	// Heartbeat is the period the primary sends heartbeats at when idle;
	// a read waits at most 3 heartbeats.
	Heartbeat      time.Duration
	ConnectTimeout time.Duration
	// SemiSync registers as a semi-sync replica, so the primary asks for
	// ACKs.
	SemiSync bool
	// Dial replaces the TCP dialer (tests).
	Dial client.Dialer
	// TLS is the cluster's TLS to its servers: with a verified mode the
	// primary must prove its identity before the login is sent.
	TLS ClientTLS
}

// dial connects and starts the dump from pos (MariaDB GTID mode).
func dial(ctx context.Context, o DumpOptions, pos binlog.MariaDBPos) (*dumpConn, error) {
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	dialer := o.Dial
	if dialer == nil {
		dialer = (&net.Dialer{}).DialContext
	}
	// The raw socket is kept so cancellation can close it under a TLS
	// session too.
	var raw net.Conn
	var rawMu sync.Mutex
	record := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dialer(ctx, network, addr)
		rawMu.Lock()
		raw = nc
		rawMu.Unlock()
		return nc, err
	}
	c, err := connect(dctx, o.Addr, o.User, o.Password, o.TLS, record, func(c *client.Conn) error {
		c.ReadTimeout = 3 * o.Heartbeat
		c.WriteTimeout = o.ConnectTimeout
		c.SetAttributes(map[string]string{"program_name": "myha-capture"})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("capture: connect to the primary %s: %w", o.Addr, clean(err))
	}
	rawMu.Lock()
	d := &dumpConn{c: c, raw: raw}
	rawMu.Unlock()
	// Cancellation closes only the socket (safe from any goroutine); the
	// owner's Close stops this and does the same.
	d.stop = context.AfterFunc(ctx, d.closeConn)
	fail := func(err error) (*dumpConn, error) {
		d.Close()
		return nil, err
	}
	// Every value below is a number or a position rendered from parsed
	// numbers (digits, '-' and ','), so no client text reaches the SQL.
	setup := []string{
		"SET @master_binlog_checksum=@@global.binlog_checksum",
		"SET @mariadb_slave_capability=4",
		fmt.Sprintf("SET @master_heartbeat_period=%d", o.Heartbeat.Nanoseconds()),
		fmt.Sprintf("SET @slave_connect_state='%s'", pos.String()),
		"SET @slave_gtid_strict_mode=1",
		"SET @slave_gtid_ignore_duplicates=0",
	}
	if o.SemiSync {
		setup = append(setup, "SET @rpl_semi_sync_slave=1")
	}
	for _, q := range setup {
		if _, err := c.Execute(q); err != nil {
			return fail(fmt.Errorf("%s on %s: %s", q, o.Addr, firstLine(err)))
		}
	}
	if err := d.register(o); err != nil {
		return fail(err)
	}
	// COM_BINLOG_DUMP: position 4 of no file; @slave_connect_state rules.
	cmd := make([]byte, 4+1+4+2+4)
	cmd[4] = gomysql.COM_BINLOG_DUMP
	binary.LittleEndian.PutUint32(cmd[5:], 4)
	binary.LittleEndian.PutUint16(cmd[9:], 0)
	binary.LittleEndian.PutUint32(cmd[11:], o.ServerID)
	c.ResetSequence()
	if err := c.WritePacket(cmd); err != nil {
		return fail(fmt.Errorf("binlog dump request to %s: %w", o.Addr, err))
	}
	return d, nil
}

// register sends COM_REGISTER_SLAVE, so the capture shows in SHOW SLAVE
// HOSTS under its server id.
func (d *dumpConn) register(o DumpOptions) error {
	host, _ := os.Hostname()
	if len(host) > 60 {
		host = host[:60]
	}
	user := o.User
	if len(user) > 60 {
		user = user[:60]
	}
	data := make([]byte, 0, 32+len(host)+len(user))
	data = append(data, 0, 0, 0, 0, gomysql.COM_REGISTER_SLAVE)
	data = binary.LittleEndian.AppendUint32(data, o.ServerID)
	data = append(data, byte(len(host)))
	data = append(data, host...)
	data = append(data, byte(len(user)))
	data = append(data, user...)
	data = append(data, 0)                           // password
	data = binary.LittleEndian.AppendUint16(data, 0) // port
	data = binary.LittleEndian.AppendUint32(data, 0) // rank
	data = binary.LittleEndian.AppendUint32(data, 0) // master id
	d.c.ResetSequence()
	if err := d.c.WritePacket(data); err != nil {
		return fmt.Errorf("register as replica %d: %s", o.ServerID, firstLine(err))
	}
	if _, err := d.c.ReadOKPacket(); err != nil {
		return fmt.Errorf("register as replica %d: %s", o.ServerID, firstLine(err))
	}
	return nil
}

// read returns the next packet, bounded by the connection's read timeout.
func (d *dumpConn) read() (packet, error) {
	data, err := d.c.ReadPacket()
	if err != nil {
		return packet{}, fmt.Errorf("reading the binlog stream: %s", firstLine(err))
	}
	if !d.started {
		// The first event is the fake rotate, whose timestamp is 0: a
		// 0xef where that timestamp starts is the semi-sync header.
		d.started = true
		d.semi = len(data) > 2 && data[0] == pktOK && data[1] == semiSyncHdr
	}
	p, err := decodePacket(data, d.semi, d.crc)
	if err != nil {
		return p, err
	}
	switch p.Event.Type {
	case evRotate:
		if name, err := rotateName(p.Event, d.crc); err == nil {
			d.file = name
		}
	case evFormatDesc:
		d.crc = fdeAlg(p.Event.Raw) != 0
	}
	return p, nil
}

// ack tells the primary that everything up to logPos of its current
// binlog file is durable here.
func (d *dumpConn) ack(logPos uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	data := make([]byte, 0, 4+1+8+len(d.file))
	data = append(data, 0, 0, 0, 0, semiSyncHdr)
	data = binary.LittleEndian.AppendUint64(data, uint64(logPos))
	data = append(data, d.file...)
	d.c.ResetSequence()
	if err := d.c.WritePacket(data); err != nil {
		return errors.New(firstLine(err))
	}
	return nil
}

// firstLine drops the stack trace go-mysql's errors carry in their text.
func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// clean keeps an error as it is (so errors.Is sees myha's own, such as a
// refused login), unless its text carries go-mysql's stack trace.
func clean(err error) error {
	if strings.IndexByte(err.Error(), '\n') < 0 {
		return err
	}
	return errors.New(firstLine(err))
}

// Close ends the connection; safe to call more than once. Only the
// connection's owner calls it; cancellation uses closeConn.
func (d *dumpConn) Close() {
	if d.stop != nil {
		d.stop()
	}
	d.closeConn()
}

// closeConn closes the socket under the packet reader and writer, which
// then fail: safe beside them from any goroutine, where go-mysql's own
// Close (it resets the packet sequence) is not.
func (d *dumpConn) closeConn() {
	d.once.Do(func() {
		// No d.mu: closing the socket is what unblocks a stuck ACK write.
		if d.raw != nil {
			_ = d.raw.Close()
		}
	})
}
