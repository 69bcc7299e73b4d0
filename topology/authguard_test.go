package topology

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// packet frames a payload with its header.
func packet(seq byte, payload []byte) []byte {
	h := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	return append(h, payload...)
}

// greeting is a protocol-10 server greeting with capabilities caps.
func greeting(caps uint32, plugin string) []byte {
	var b bytes.Buffer
	b.WriteByte(10)
	b.WriteString("5.5.5-10.11.19-MariaDB\x00")
	b.Write([]byte{7, 0, 0, 0})   // connection id
	b.WriteString("abcdefgh\x00") // scramble part 1, filler
	binary.Write(&b, binary.LittleEndian, uint16(caps))
	b.WriteByte(45)
	b.Write([]byte{2, 0})
	binary.Write(&b, binary.LittleEndian, uint16(caps>>16))
	b.WriteByte(21)
	b.Write(make([]byte, 10))
	b.WriteString("ijklmnopqrst\x00" + plugin + "\x00")
	return packet(0, b.Bytes())
}

const baseCaps = 0x0200 | 0x8000 | 0x80000 // protocol 41, secure connection, plugin auth

var okPkt = packet(2, []byte{0, 0, 0, 2, 0, 0, 0})

// chunkConn is a net.Conn whose reads return the chunks in order, then EOF.
type chunkConn struct {
	net.Conn
	chunks [][]byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// through reads the whole stream through a guard, in reads of size bufSize,
// with the server's bytes arriving in chunks of chunk bytes.
func through(stream []byte, chunk, bufSize int, tlsNext bool) ([]byte, error) {
	var chunks [][]byte
	for len(stream) > 0 {
		n := min(chunk, len(stream))
		chunks = append(chunks, append([]byte(nil), stream[:n]...))
		stream = stream[n:]
	}
	g := &authGuard{Conn: &chunkConn{chunks: chunks}, tlsNext: tlsNext}
	var got []byte
	buf := make([]byte, bufSize)
	for {
		n, err := g.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestAuthGuard(t *testing.T) {
	commandPhase := packet(1, []byte{1, 4, 'x'}) // after the login, any bytes are the driver's business
	for _, tc := range []struct {
		name    string
		stream  []byte
		tlsNext bool
		refused bool
		kept    int // bytes delivered before a refusal
	}{
		{"native password", cat(greeting(baseCaps, "mysql_native_password"), okPkt, commandPhase), false, false, 0},
		{"switch to ed25519", cat(greeting(baseCaps, "mysql_native_password"), packet(2, []byte("\xfeclient_ed25519\x00nonce")), okPkt), false, false, 0},
		{"caching_sha2 fast path", cat(greeting(baseCaps, "caching_sha2_password"), packet(2, []byte{1, 3}), okPkt, commandPhase), false, false, 0},
		{"caching_sha2 full authentication", cat(greeting(baseCaps, "caching_sha2_password"), packet(2, []byte{1, 4}), okPkt), false, true, len(greeting(baseCaps, "caching_sha2_password"))},
		{"an RSA key offered", cat(greeting(baseCaps, "sha256_password"), packet(2, []byte("\x01-----BEGIN PUBLIC KEY-----"))), false, true, len(greeting(baseCaps, "sha256_password"))},
		{"switch to cleartext", cat(greeting(baseCaps, "mysql_native_password"), packet(2, []byte("\xfemysql_clear_password\x00"))), false, true, len(greeting(baseCaps, "mysql_native_password"))},
		{"switch to sha256_password", cat(greeting(baseCaps, "mysql_native_password"), packet(2, []byte("\xfesha256_password\x00salt"))), false, true, len(greeting(baseCaps, "mysql_native_password"))},
		{"login error", cat(greeting(baseCaps, "mysql_native_password"), packet(2, []byte("\xff\x15\x04Access denied"))), false, false, 0},
		{"TLS next: the TLS layer decides", cat(greeting(baseCaps|capSSL, "caching_sha2_password"), []byte{0x16, 3, 1, 0, 5, 1, 4, 0, 0, 0}), true, false, 0},
		{"TLS configured, server without it", cat(greeting(baseCaps, "caching_sha2_password"), packet(2, []byte{1, 4})), true, true, len(greeting(baseCaps, "caching_sha2_password"))},
		{"server offers TLS, client plain", cat(greeting(baseCaps|capSSL, "caching_sha2_password"), packet(2, []byte{1, 4})), false, true, len(greeting(baseCaps|capSSL, "caching_sha2_password"))},
		{"error greeting", packet(0, []byte("\xff\x69\x04Host is blocked")), false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Byte by byte, in odd chunks and at once: packet boundaries
			// must not matter.
			for _, chunk := range []int{1, 3, 7, 4096} {
				for _, bufSize := range []int{1, 5, 4096} {
					got, err := through(tc.stream, chunk, bufSize, tc.tlsNext)
					if tc.refused {
						if !errors.Is(err, ErrPasswordExposed) {
							t.Fatalf("chunk %d buf %d: %v, want a refusal", chunk, bufSize, err)
						}
						if !bytes.Equal(got, tc.stream[:tc.kept]) {
							t.Fatalf("chunk %d buf %d: delivered %q, want only what came before the refused packet", chunk, bufSize, got)
						}
						continue
					}
					if err != nil || !bytes.Equal(got, tc.stream) {
						t.Fatalf("chunk %d buf %d: %v, delivered %q want %q", chunk, bufSize, err, got, tc.stream)
					}
				}
			}
		})
	}
}

func TestAuthGuardBoundsWhatItHolds(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0}
	_, err := through(cat(greeting(baseCaps, "mysql_native_password"), huge, make([]byte, 10000)), 4096, 4096, false)
	if err == nil || !strings.Contains(err.Error(), "not a MySQL server") {
		t.Fatalf("a 16 MB login packet: %v", err)
	}
}

// FuzzAuthGuard feeds arbitrary server bytes in two chunks: the guard never
// panics, never holds more than its bound, and what it delivers is always
// an unaltered prefix of what the server sent.
func FuzzAuthGuard(f *testing.F) {
	f.Add(cat(greeting(baseCaps, "caching_sha2_password"), packet(2, []byte{1, 4})), uint16(10), false)
	f.Add(cat(greeting(baseCaps|capSSL, "mysql_native_password"), okPkt), uint16(3), true)
	f.Fuzz(func(t *testing.T, data []byte, split uint16, tlsNext bool) {
		cut := int(split) % (len(data) + 1)
		g := &authGuard{Conn: &chunkConn{chunks: [][]byte{data[:cut], data[cut:]}}, tlsNext: tlsNext}
		var got []byte
		buf := make([]byte, 512)
		for range 100000 {
			n, err := g.Read(buf)
			got = append(got, buf[:n]...)
			if len(g.in) > maxGuardBuffer+4096 {
				t.Fatalf("holds %d bytes", len(g.in))
			}
			if err != nil {
				break
			}
		}
		if !bytes.HasPrefix(data, got) {
			t.Fatalf("delivered bytes that are not a prefix of the input")
		}
	})
}
