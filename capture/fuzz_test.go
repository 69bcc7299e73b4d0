package capture

import (
	"testing"

	"github.com/myha/myha/binlog"
)

// The stream decoder and the segment reader read bytes from the network and
// from disk: whatever they get, they return an error, never panic.

func sampleTxn() [][]byte {
	gtid := encode(header{Type: evGTID, ServerID: 1, LogPos: 100}, []byte{7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true)
	query := encode(header{Type: evQuery, ServerID: 1, LogPos: 200}, append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "COMMIT"...), true)
	return [][]byte{gtid, query}
}

func FuzzDecodePacket(f *testing.F) {
	for _, e := range sampleTxn() {
		f.Add(append([]byte{pktOK}, e...), false, true)
		f.Add(append([]byte{pktOK, semiSyncHdr, semiSyncNeedACK}, e...), true, true)
	}
	f.Add([]byte{pktErr, 0xd4, 0x04, '#', 'H', 'Y', '0', '0', '0', 'x'}, false, false)
	f.Add([]byte{pktEOF}, false, false)
	f.Fuzz(func(t *testing.T, data []byte, semi, crc bool) {
		p, err := decodePacket(data, semi, crc)
		if err != nil {
			return
		}
		// Whatever decoded must survive every reader the capture uses.
		_, _, _ = gtidOf(p.Event, crc)
		_, _ = rotateName(p.Event, crc)
		_, _ = queryText(p.Event, crc)
		_, _ = parseGTIDList(p.Event, crc)
		_ = endsTransaction(p.Event, crc, semi)
		_ = fdeAlg(p.Event.Raw)
	})
}

func FuzzSegmentReader(f *testing.F) {
	fde := encode(header{Type: evFormatDesc, ServerID: 1}, make([]byte, 57+40+1), true)
	gl := gtidListEvent(binlog.MustParseMariaDBPos("0-1-6"), 1, 0, 0, true)
	seg := append(append(append([]byte{}, binlogMagic...), fde...), gl...)
	for _, e := range sampleTxn() {
		seg = append(seg, e...)
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add(binlogMagic)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newSegmentReader(data)
		if _, _, err := r.head(); err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			if _, _, err := r.next(); err != nil {
				return
			}
		}
	})
}

// The capture server's query handler reads statements from the network
// (after login): whatever they say, it answers or errs, never panics.
func FuzzServerQuery(f *testing.F) {
	st, err := OpenStore(f.TempDir(), StoreOptions{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	srv := NewServer(st, ServerOptions{ServerID: 7}, nil)
	for _, q := range []string{"SELECT UNIX_TIMESTAMP()", "SET @slave_connect_state='0-1-5,1-2-3'", "SET @master_heartbeat_period= 1000000000",
		"SELECT @@GLOBAL.SERVER_ID", "SHOW VARIABLES LIKE 'SERVER_UUID'", "SELECT @master_binlog_checksum", "SET @a=1, @b='x'", "DROP TABLE x"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		h := &session{s: srv, vars: map[string]string{}}
		_, _ = h.HandleQuery(q)
	})
}
