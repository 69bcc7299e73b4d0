package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	"github.com/myha/myha/binlog"
)

// The binlog event layout this package reads and writes. It knows only what
// a capture needs: where a transaction starts and ends, which GTID it
// carries, and whether events carry a CRC32 checksum. Event bodies are kept
// byte for byte as the primary sent them.

// Event types (MariaDB numbering; the common ones are MySQL's too).
const (
	evQuery       = 2
	evRotate      = 4
	evFormatDesc  = 15
	evXID         = 16
	evHeartbeat   = 27
	evXAPrepare   = 38
	evAnnotate    = 160
	evCheckpoint  = 161
	evGTID        = 162
	evGTIDList    = 163
	evStartEncryp = 164
)

const (
	headerLen = 19
	crcLen    = 4
	// flagArtificial marks events a server makes up for the stream (the
	// fake rotate, heartbeats): they are not in any binlog.
	flagArtificial = 0x20
	// flagInUse is set in the FDE of a binlog still being written.
	flagInUse = 0x01
	// gtidStandalone marks a GTID event whose transaction is one event
	// (DDL) with no COMMIT or XID after it.
	gtidStandalone = 0x01
	// maxEventSize bounds one event: the server's max_allowed_packet limit
	// is 1 GiB; anything claiming more is corrupt.
	maxEventSize = 1 << 30
)

// binlogMagic starts every binlog file.
var binlogMagic = []byte{0xfe, 'b', 'i', 'n'}

// header is the fixed part every event starts with.
type header struct {
	Timestamp uint32
	Type      byte
	ServerID  uint32
	Size      uint32
	LogPos    uint32
	Flags     uint16
}

func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, fmt.Errorf("binlog event of %d bytes is shorter than its %d-byte header", len(b), headerLen)
	}
	h := header{
		Timestamp: binary.LittleEndian.Uint32(b[0:]),
		Type:      b[4],
		ServerID:  binary.LittleEndian.Uint32(b[5:]),
		Size:      binary.LittleEndian.Uint32(b[9:]),
		LogPos:    binary.LittleEndian.Uint32(b[13:]),
		Flags:     binary.LittleEndian.Uint16(b[17:]),
	}
	if h.Size < headerLen || h.Size > maxEventSize {
		return header{}, fmt.Errorf("binlog event claims %d bytes", h.Size)
	}
	return h, nil
}

// event is one whole binlog event, header included.
type event struct {
	header
	Raw []byte
}

// decodeEvent checks that raw is exactly one event and, when checksums are
// on, that its CRC32 matches.
func decodeEvent(raw []byte, crc bool) (event, error) {
	h, err := parseHeader(raw)
	if err != nil {
		return event{}, err
	}
	if int(h.Size) != len(raw) {
		return event{}, fmt.Errorf("binlog event header says %d bytes, packet holds %d", h.Size, len(raw))
	}
	// A format description event always carries its checksum algorithm
	// and checksum, whatever the stream used before it.
	if crc || h.Type == evFormatDesc {
		if len(raw) < headerLen+crcLen {
			return event{}, errors.New("binlog event too short for its checksum")
		}
		if !(h.Type == evFormatDesc && fdeAlg(raw) == 0) {
			want := binary.LittleEndian.Uint32(raw[len(raw)-crcLen:])
			if got := crc32.ChecksumIEEE(raw[:len(raw)-crcLen]); got != want {
				return event{}, fmt.Errorf("binlog event type %d at log_pos %d fails its CRC32 checksum", h.Type, h.LogPos)
			}
		}
	}
	return event{header: h, Raw: raw}, nil
}

// fdeAlg is a format description event's checksum algorithm (0 off, 1
// CRC32): the byte before its 4-byte checksum.
func fdeAlg(raw []byte) byte {
	if len(raw) < headerLen+57+crcLen+1 {
		return 0
	}
	return raw[len(raw)-crcLen-1]
}

// gtidOf reads a MariaDB GTID event: domain, server_id (from the header),
// seq_no, and whether it is standalone.
func gtidOf(e event, crc bool) (binlog.GTID, bool, error) {
	body := e.Raw[headerLen:]
	if crc {
		body = body[:len(body)-crcLen]
	}
	if len(body) < 13 {
		return binlog.GTID{}, false, errors.New("GTID event too short")
	}
	g := binlog.GTID{Seq: binary.LittleEndian.Uint64(body[0:]), Domain: binary.LittleEndian.Uint32(body[8:]), ServerID: e.ServerID}
	return g, body[12]&gtidStandalone != 0, nil
}

// rotateName reads the file name of a rotate event (fake or real).
func rotateName(e event, crc bool) (string, error) {
	body := e.Raw[headerLen:]
	if crc {
		body = body[:len(body)-crcLen]
	}
	if len(body) < 8 {
		return "", errors.New("rotate event too short")
	}
	return string(body[8:]), nil
}

// queryText reads the statement of a query event.
func queryText(e event, crc bool) (string, error) {
	body := e.Raw[headerLen:]
	if crc {
		body = body[:len(body)-crcLen]
	}
	if len(body) < 13 {
		return "", errors.New("query event too short")
	}
	dbLen := int(body[8])
	statusLen := int(binary.LittleEndian.Uint16(body[11:]))
	off := 13 + statusLen + dbLen + 1
	if off > len(body) {
		return "", errors.New("query event lengths exceed the event")
	}
	return string(body[off:]), nil
}

// endsTransaction says whether e closes the transaction its GTID opened.
func endsTransaction(e event, crc, standalone bool) bool {
	switch e.Type {
	case evXID, evXAPrepare:
		return true
	case evQuery:
		if standalone {
			return true
		}
		q, err := queryText(e, crc)
		if err != nil {
			return false
		}
		q = strings.ToUpper(strings.TrimSpace(q))
		return q == "COMMIT" || q == "ROLLBACK" || strings.HasPrefix(q, "XA COMMIT") || strings.HasPrefix(q, "XA ROLLBACK")
	}
	return false
}

// encode builds an event from a header and body, setting its size and,
// when crc, appending the checksum.
func encode(h header, body []byte, crc bool) []byte {
	n := headerLen + len(body)
	if crc {
		n += crcLen
	}
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b[0:], h.Timestamp)
	b[4] = h.Type
	binary.LittleEndian.PutUint32(b[5:], h.ServerID)
	binary.LittleEndian.PutUint32(b[9:], uint32(n))
	binary.LittleEndian.PutUint32(b[13:], h.LogPos)
	binary.LittleEndian.PutUint16(b[17:], h.Flags)
	copy(b[headerLen:], body)
	if crc {
		binary.LittleEndian.PutUint32(b[n-crcLen:], crc32.ChecksumIEEE(b[:n-crcLen]))
	}
	return b
}

// gtidListEvent encodes a MariaDB Gtid_list event holding pos: the position
// before the first transaction of a segment, as a server writes at the top
// of each binlog file.
func gtidListEvent(pos binlog.MariaDBPos, serverID, logPos uint32, flags uint16, crc bool) []byte {
	gs := pos.GTIDs()
	body := make([]byte, 4+16*len(gs))
	binary.LittleEndian.PutUint32(body, uint32(len(gs)))
	for i, g := range gs {
		o := 4 + 16*i
		binary.LittleEndian.PutUint32(body[o:], g.Domain)
		binary.LittleEndian.PutUint32(body[o+4:], g.ServerID)
		binary.LittleEndian.PutUint64(body[o+8:], g.Seq)
	}
	return encode(header{Type: evGTIDList, ServerID: serverID, LogPos: logPos, Flags: flags}, body, crc)
}

// parseGTIDList reads a Gtid_list event back into a position.
func parseGTIDList(e event, crc bool) (binlog.MariaDBPos, error) {
	body := e.Raw[headerLen:]
	if crc {
		body = body[:len(body)-crcLen]
	}
	if len(body) < 4 {
		return binlog.MariaDBPos{}, errors.New("Gtid_list event too short")
	}
	n := int(binary.LittleEndian.Uint32(body) & 0x0fffffff)
	if n > (len(body)-4)/16 {
		return binlog.MariaDBPos{}, fmt.Errorf("Gtid_list event claims %d GTIDs in %d bytes", n, len(body))
	}
	var parts []string
	for i := 0; i < n; i++ {
		o := 4 + 16*i
		parts = append(parts, binlog.GTID{Domain: binary.LittleEndian.Uint32(body[o:]), ServerID: binary.LittleEndian.Uint32(body[o+4:]),
			Seq: binary.LittleEndian.Uint64(body[o+8:])}.String())
	}
	slices.Sort(parts)
	return binlog.ParseMariaDBPos(strings.Join(parts, ","))
}

// fdeForFile returns a copy of a format description event with the
// in-use flag cleared and log_pos set (checksum recomputed), so a segment
// file reads as a cleanly closed binlog.
func fdeForFile(raw []byte) []byte {
	b := slices.Clone(raw)
	flags := binary.LittleEndian.Uint16(b[17:]) &^ flagInUse
	binary.LittleEndian.PutUint16(b[17:], flags)
	binary.LittleEndian.PutUint32(b[13:], uint32(len(binlogMagic)+len(b)))
	if fdeAlg(b) != 0 {
		binary.LittleEndian.PutUint32(b[len(b)-crcLen:], crc32.ChecksumIEEE(b[:len(b)-crcLen]))
	}
	return b
}
