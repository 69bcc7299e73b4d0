package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/myha/myha/binlog"
)

// Store keeps captured transactions on disk as segment files in binlog
// format: the 4-byte binlog magic, the primary's format description event,
// a Gtid_list event with the position before the segment's first
// transaction, then whole transactions exactly as the primary sent them.
// mariadb-binlog reads every segment like a binlog file.
//
// Only complete transactions are ever part of the store: a torn tail (a
// crash mid-write) is cut off when the store opens, so the position it
// reports is always the last transaction it holds whole.
type Store struct {
	dir  string
	opts StoreOptions
	log  *slog.Logger

	mu      sync.Mutex
	segs    []segment // oldest first; the last is open for appending
	f       *os.File
	size    int64
	fde     []byte // the current segment's format description event
	crc     bool
	pos     binlog.MariaDBPos
	dirty   bool // written since the last fsync
	lastTxn time.Time
}

// StoreOptions bound the store's size.
type StoreOptions struct {
	// SegmentBytes starts a new segment once the current one is larger.
	SegmentBytes int64
	// RetainBytes and RetainAge drop the oldest segments (never the
	// current one) once the store is larger, or they are older; 0 keeps.
	RetainBytes int64
	RetainAge   time.Duration
}

type segment struct {
	name  string
	start binlog.MariaDBPos
	size  int64
	mod   time.Time
}

const segmentPrefix, segmentSuffix = "capture-", ".bin"

func segmentName(n int) string { return fmt.Sprintf("%s%06d%s", segmentPrefix, n, segmentSuffix) }

func segmentNumber(name string) (int, bool) {
	if !strings.HasPrefix(name, segmentPrefix) || !strings.HasSuffix(name, segmentSuffix) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, segmentPrefix), segmentSuffix))
	return n, err == nil && n > 0
}

// OpenStore opens (or creates) the store in dir, cuts a torn tail off the
// newest segment and recovers the captured position from disk.
func OpenStore(dir string, opts StoreOptions, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("capture dir %s: %w", dir, err)
	}
	s := &Store{dir: dir, opts: opts, log: log}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("capture dir %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if _, ok := segmentNumber(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, func(a, b string) int { x, _ := segmentNumber(a); y, _ := segmentNumber(b); return x - y })
	for i, n := range names {
		last := i == len(names)-1
		seg, err := s.scan(n, last)
		if errors.Is(err, errEmptySegment) {
			continue
		}
		if err != nil {
			if last {
				return nil, err
			}
			return nil, fmt.Errorf("capture segment %s: %w (move it away to start from the next one)", filepath.Join(dir, n), err)
		}
		s.segs = append(s.segs, seg)
	}
	return s, nil
}

// scan reads a segment's header; for the newest one it also reads every
// transaction, truncates what follows the last whole one, and opens the
// file for appending.
func (s *Store) scan(name string, last bool) (segment, error) {
	path := filepath.Join(s.dir, name)
	data, err := readSegmentHead(path, last)
	if err != nil {
		return segment{}, err
	}
	r := newSegmentReader(data)
	fde, start, err := r.head()
	if err != nil {
		if last && r.off <= len(binlogMagic)+headerLen {
			// A segment whose header never made it to disk holds nothing.
			s.log.Warn("capture: removing a segment with a torn header", "file", path, "error", err)
			return segment{}, errors.Join(os.Remove(path), errEmptySegment)
		}
		return segment{}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return segment{}, err
	}
	seg := segment{name: name, start: start, size: st.Size(), mod: st.ModTime()}
	if !last {
		return seg, nil
	}
	pos := start
	good := r.off
	for {
		_, g, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.log.Warn("capture: cutting a torn or damaged tail off the newest segment", "file", path, "at", good, "size", len(data), "error", err)
			break
		}
		pos = pos.Merge(posOf(g))
		good = r.off
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return segment{}, err
	}
	if int64(good) != st.Size() {
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return segment{}, fmt.Errorf("truncating the torn tail of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return segment{}, err
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		f.Close()
		return segment{}, err
	}
	s.f, s.size, s.fde, s.crc, s.pos = f, int64(good), fde, fdeAlg(fde) != 0, pos
	seg.size = int64(good)
	return seg, nil
}

var errEmptySegment = errors.New("empty segment")

func readSegmentHead(path string, all bool) ([]byte, error) {
	if all {
		return os.ReadFile(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	return buf[:n], nil
}

func posOf(g binlog.GTID) binlog.MariaDBPos {
	p, _ := binlog.ParseMariaDBPos(g.String())
	return p
}

// Position is the last whole transaction the store holds, per domain.
func (s *Store) Position() binlog.MariaDBPos {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Stats are the store's size for status and metrics.
type Stats struct {
	Segments int
	Bytes    int64
	LastTxn  time.Time
}

// Stats reports the store's size.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Segments: len(s.segs), LastTxn: s.lastTxn}
	for _, g := range s.segs {
		st.Bytes += g.size
	}
	return st
}

// sameSource says whether two format description events come from the same
// server with the same event layout, so their events can share a segment.
func sameSource(a, b []byte) bool {
	if len(a) < headerLen+57 || len(b) < headerLen+57 {
		return false
	}
	ha, _ := parseHeader(a)
	hb, _ := parseHeader(b)
	// binlog version and server version, header length, post-header
	// lengths and checksum algorithm; not the creation time.
	return ha.ServerID == hb.ServerID && bytes.Equal(a[headerLen:headerLen+52], b[headerLen:headerLen+52]) &&
		bytes.Equal(a[headerLen+56:len(a)-crcLen], b[headerLen+56:len(b)-crcLen])
}

// Begin makes the current segment one whose events are described by fde,
// starting a new segment when the source changed (another primary, other
// checksum setting). A start position other than the store's (a capture
// that had to restart from the primary's current position) starts a new
// segment too, whose Gtid_list records it.
func (s *Store) Begin(fde []byte, start binlog.MariaDBPos) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil && sameSource(s.fde, fde) && start.Compare(s.pos) == binlog.Equal {
		return nil
	}
	return s.rollLocked(fde, start)
}

// rollLocked closes the current segment and starts the next.
func (s *Store) rollLocked(fde []byte, start binlog.MariaDBPos) error {
	if s.f != nil {
		if err := s.f.Sync(); err != nil {
			return err
		}
		if err := s.f.Close(); err != nil {
			return err
		}
		s.f = nil
	}
	n := 1
	if len(s.segs) > 0 {
		n, _ = segmentNumber(s.segs[len(s.segs)-1].name)
		n++
	}
	name := segmentName(n)
	path := filepath.Join(s.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("new capture segment: %w", err)
	}
	fh := fdeForFile(fde)
	crc := fdeAlg(fh) != 0
	h, _ := parseHeader(fh)
	off := uint32(len(binlogMagic) + len(fh))
	gl := gtidListEvent(start, h.ServerID, 0, 0, crc)
	// log_pos is the end of the event in this file.
	gl = gtidListEvent(start, h.ServerID, off+uint32(len(gl)), 0, crc)
	head := slices.Concat(binlogMagic, fh, gl)
	if _, err := f.Write(head); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.f, s.fde, s.crc, s.size, s.pos = f, fde, crc, int64(len(head)), start
	s.segs = append(s.segs, segment{name: name, start: start, size: int64(len(head)), mod: time.Now()})
	s.retainLocked()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append writes one whole transaction (its events, GTID event first) to
// the current segment. It is durable only after Sync.
func (s *Store) Append(events [][]byte, g binlog.GTID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("capture store: no segment begun")
	}
	if s.size >= s.opts.SegmentBytes {
		if err := s.rollLocked(s.fde, s.pos); err != nil {
			return err
		}
	}
	buf := slices.Concat(events...)
	if _, err := s.f.Write(buf); err != nil {
		// A partial write leaves a torn tail: cut it now so the next
		// transaction does not follow garbage.
		_ = s.f.Truncate(s.size)
		_, _ = s.f.Seek(s.size, io.SeekStart)
		return fmt.Errorf("capture write: %w", err)
	}
	s.size += int64(len(buf))
	s.segs[len(s.segs)-1].size = s.size
	s.segs[len(s.segs)-1].mod = time.Now()
	s.pos = s.pos.Merge(posOf(g))
	s.dirty = true
	s.lastTxn = time.Now()
	return nil
}

// Sync makes everything appended so far durable.
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil || !s.dirty {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("capture fsync: %w", err)
	}
	s.dirty = false
	return nil
}

// retainLocked drops the oldest segments beyond the retention bounds; the
// current segment is always kept.
func (s *Store) retainLocked() {
	var total int64
	for _, g := range s.segs {
		total += g.size
	}
	for len(s.segs) > 1 {
		old := s.segs[0]
		tooBig := s.opts.RetainBytes > 0 && total > s.opts.RetainBytes
		tooOld := s.opts.RetainAge > 0 && time.Since(old.mod) > s.opts.RetainAge
		if !tooBig && !tooOld {
			return
		}
		if err := os.Remove(filepath.Join(s.dir, old.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("capture: cannot remove an old segment", "file", old.name, "error", err)
			return
		}
		total -= old.size
		s.segs = s.segs[1:]
	}
}

// Retain applies the retention bounds now (the capture calls it
// periodically, so an idle store still ages out).
func (s *Store) Retain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retainLocked()
}

// Close syncs and closes the current segment.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.f.Sync(), s.f.Close())
	s.f = nil
	return err
}

// Txn is one captured transaction as stored.
type Txn struct {
	GTID   binlog.GTID
	Events [][]byte
}

// Each calls fn for every stored transaction that from does not hold (per
// domain: a higher seq_no than from's, or a domain from lacks), in the
// order captured, together with the format description event its segment
// starts with. It reads a snapshot of the segments listed now.
func (s *Store) Each(from binlog.MariaDBPos, fn func(fde []byte, t Txn) error) error {
	s.mu.Lock()
	segs := slices.Clone(s.segs)
	s.mu.Unlock()
	for _, g := range segs {
		data, err := os.ReadFile(filepath.Join(s.dir, g.name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by retention meanwhile
			}
			return err
		}
		r := newSegmentReader(data)
		fde, _, err := r.head()
		if err != nil {
			return fmt.Errorf("capture segment %s: %w", g.name, err)
		}
		for {
			evs, gt, err := r.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				break // the tail being written now
			}
			if h, ok := from.Domain(gt.Domain); ok && gt.Seq <= h.Seq {
				continue
			}
			if err := fn(fde, Txn{GTID: gt, Events: evs}); err != nil {
				return err
			}
		}
	}
	return nil
}

// segmentReader walks a segment's bytes.
type segmentReader struct {
	data []byte
	off  int
	crc  bool
}

func newSegmentReader(b []byte) *segmentReader { return &segmentReader{data: b} }

func (r *segmentReader) event() (event, error) {
	if r.off == len(r.data) {
		return event{}, io.EOF
	}
	h, err := parseHeader(r.data[r.off:])
	if err != nil {
		return event{}, err
	}
	if int(h.Size) > len(r.data)-r.off {
		return event{}, fmt.Errorf("event of %d bytes at offset %d runs past the end of the file (%d)", h.Size, r.off, len(r.data))
	}
	e, err := decodeEvent(r.data[r.off:r.off+int(h.Size)], r.crc)
	if err != nil {
		return event{}, err
	}
	r.off += int(h.Size)
	return e, nil
}

// head reads the magic, the format description and the Gtid_list.
func (r *segmentReader) head() ([]byte, binlog.MariaDBPos, error) {
	if !bytes.HasPrefix(r.data, binlogMagic) {
		return nil, binlog.MariaDBPos{}, errors.New("no binlog magic header")
	}
	r.off = len(binlogMagic)
	fde, err := r.event()
	if err != nil || fde.Type != evFormatDesc {
		return nil, binlog.MariaDBPos{}, fmt.Errorf("no format description event after the magic header (%v)", err)
	}
	r.crc = fdeAlg(fde.Raw) != 0
	gl, err := r.event()
	if err != nil || gl.Type != evGTIDList {
		return nil, binlog.MariaDBPos{}, fmt.Errorf("no Gtid_list event after the format description (%v)", err)
	}
	start, err := parseGTIDList(gl, r.crc)
	return fde.Raw, start, err
}

// next reads one whole transaction; io.EOF at a clean end.
func (r *segmentReader) next() ([][]byte, binlog.GTID, error) {
	start := r.off
	first, err := r.event()
	if err != nil {
		return nil, binlog.GTID{}, err
	}
	if first.Type != evGTID {
		r.off = start
		return nil, binlog.GTID{}, fmt.Errorf("event type %d at offset %d is not a GTID event", first.Type, start)
	}
	g, standalone, err := gtidOf(first, r.crc)
	if err != nil {
		r.off = start
		return nil, binlog.GTID{}, err
	}
	evs := [][]byte{first.Raw}
	for {
		e, err := r.event()
		if err != nil {
			r.off = start
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, binlog.GTID{}, err
		}
		evs = append(evs, e.Raw)
		if endsTransaction(e, r.crc, standalone) {
			return evs, g, nil
		}
	}
}

// crcNow says whether the current segment's events carry checksums.
func (s *Store) crcNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crc
}

// currentFDE is the current segment's format description event.
func (s *Store) currentFDE() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fde
}
