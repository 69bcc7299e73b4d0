package capture

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/myha/myha/binlog"
)

// Unit tests of the segment store on synthetic events (no server).

func fakeFDE(serverID uint32) []byte {
	body := make([]byte, 57+40+1)
	binary.LittleEndian.PutUint16(body, 4)
	copy(body[2:], "10.11.19-MariaDB")
	body[len(body)-1] = 1 // CRC32
	return encode(header{Type: evFormatDesc, ServerID: serverID}, body, true)
}

func fakeTxn(g binlog.GTID) [][]byte {
	gb := make([]byte, 13)
	binary.LittleEndian.PutUint64(gb, g.Seq)
	binary.LittleEndian.PutUint32(gb[8:], g.Domain)
	xid := make([]byte, 8)
	return [][]byte{encode(header{Type: evGTID, ServerID: g.ServerID}, gb, true), encode(header{Type: evXID, ServerID: g.ServerID}, xid, true)}
}

func TestStoreRollRetainReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir, StoreOptions{SegmentBytes: 1000, RetainBytes: 3000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Begin(fakeFDE(1), binlog.MustParseMariaDBPos("0-1-0")); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 200; i++ {
		g := binlog.GTID{Domain: uint32(i % 2), ServerID: 1, Seq: i}
		if err := st.Append(fakeTxn(g), g); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	want := "0-1-200,1-1-199"
	if got := st.Position().String(); got != want {
		t.Fatalf("position %s, want %s", got, want)
	}
	s := st.Stats()
	if s.Segments < 2 || s.Bytes > 3000+1000 {
		t.Fatalf("retention not applied: %+v", s)
	}
	// Each sends only what the asker lacks, per domain.
	var got []string
	if err := st.Each(binlog.MustParseMariaDBPos("0-1-196,1-1-193"), func(_ []byte, tx Txn) error {
		got = append(got, tx.GTID.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0] != "1-1-195" || got[4] != "0-1-200" {
		t.Fatalf("Each from 0-1-196,1-1-193 gave %v", got)
	}
	st.Close()

	// A torn tail: half a transaction is cut off at reopen.
	files, _ := filepath.Glob(filepath.Join(dir, "capture-*.bin"))
	f, _ := os.OpenFile(files[len(files)-1], os.O_APPEND|os.O_WRONLY, 0)
	tx := fakeTxn(binlog.GTID{Domain: 0, ServerID: 1, Seq: 201})
	f.Write(tx[0])
	f.Write(tx[1][:10])
	f.Close()
	st2, err := OpenStore(dir, StoreOptions{SegmentBytes: 1000, RetainBytes: 3000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if got := st2.Position().String(); got != want {
		t.Fatalf("reopened at %s, want %s", got, want)
	}
	// The next transaction appends cleanly after the cut.
	if err := st2.Begin(fakeFDE(1), st2.Position()); err != nil {
		t.Fatal(err)
	}
	g := binlog.GTID{Domain: 0, ServerID: 1, Seq: 201}
	if err := st2.Append(fakeTxn(g), g); err != nil {
		t.Fatal(err)
	}
	n := 0
	st2.Each(binlog.MustParseMariaDBPos("0-1-199,1-1-199"), func(_ []byte, tx Txn) error { n++; return nil })
	if n != 2 {
		t.Fatalf("after the cut, %d transactions beyond 0-1-199, want 2 (200, 201)", n)
	}
	// Another primary starts a new segment.
	before := st2.Stats().Segments
	if err := st2.Begin(fakeFDE(2), st2.Position()); err != nil {
		t.Fatal(err)
	}
	if st2.Stats().Segments != before+1 {
		t.Fatal("a new primary's events share a segment with the old one's")
	}
}
