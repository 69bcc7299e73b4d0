package daemon

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"strconv"
)

// recordHandler keeps every slog record (a test double of the daemon's
// log handler).
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) find(level slog.Level, sub string) (slog.Record, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, sub) {
			return r, true
		}
	}
	return slog.Record{}, false
}

func libAttr(r slog.Record) string {
	lib := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "lib" {
			lib = a.Value.String()
		}
		return true
	})
	return lib
}

// The lines memberlist (*log.Logger) and raft (hclog) write land in slog
// at the level their tag says, with the library named.
func TestLibLogLevels(t *testing.T) {
	h := &recordHandler{}
	lg := slog.New(h)
	ml := log.New(newLibLog(lg, "memberlist"), "", 0)
	ml.Printf("[WARN] memberlist: Was able to connect to mon2 over TCP but UDP probes failed, network may be misconfigured")
	ml.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:5000")
	ml.Printf("[ERR] memberlist: Failed to send ping: write: broken pipe")
	ml.Printf("no tag at all")
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: newLibLog(lg, "raft"), Level: hclog.Debug, DisableTime: true})
	hl.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "10.0.0.1:7947")
	hl.Info("entering follower state", "follower", "mon1")
	hl.Error("failed to contact", "server-id", "mon2")
	for _, c := range []struct {
		level slog.Level
		sub   string
		lib   string
	}{
		{slog.LevelWarn, "Was able to connect to mon2", "memberlist"},
		{slog.LevelDebug, "Stream connection", "memberlist"},
		{slog.LevelError, "Failed to send ping", "memberlist"},
		{slog.LevelInfo, "no tag at all", "memberlist"},
		{slog.LevelWarn, "heartbeat timeout reached", "raft"},
		{slog.LevelInfo, "entering follower state", "raft"},
		{slog.LevelError, "failed to contact", "raft"},
	} {
		r, ok := h.find(c.level, c.sub)
		if !ok {
			t.Errorf("no %s record with %q: %+v", c.level, c.sub, h.recs)
			continue
		}
		if libAttr(r) != c.lib || strings.HasPrefix(r.Message, "[") || strings.HasPrefix(r.Message, c.lib+": ") {
			t.Errorf("record %q lib=%q", r.Message, libAttr(r))
		}
	}
	// A line split over writes is one record; an endless one is bounded.
	w := newLibLog(lg, "memberlist")
	w.Write([]byte("[WARN] memberlist: split "))
	w.Write([]byte("line\n"))
	if _, ok := h.find(slog.LevelWarn, "split line"); !ok {
		t.Error("a line written in two parts was not one record")
	}
	w.Write(bytes.Repeat([]byte("x"), 2*libLogMax))
	if len(w.buf) > libLogMax {
		t.Errorf("partial line kept unbounded: %d bytes", len(w.buf))
	}
}

// A real memberlist's warning reaches slog at warn: a UDP packet whose
// checksum is wrong is dropped with a [WARN] line from memberlist itself.
func TestMemberlistWarningReachesSlog(t *testing.T) {
	h := &recordHandler{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	g, err := startGossip(GossipConfig{Name: "m1", BindAddr: "127.0.0.1", Port: port, Log: slog.New(h)}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer g.leave()
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		// hasCrcMsg, a checksum that does not match, a payload.
		c.Write([]byte{memberlistHasCrcMsg, 0, 0, 0, 0, 1, 2, 3})
		h.mu.Lock()
		var found *slog.Record
		for i := range h.recs {
			if h.recs[i].Level == slog.LevelWarn && libAttr(h.recs[i]) == "memberlist" {
				found = &h.recs[i]
			}
		}
		h.mu.Unlock()
		if found != nil {
			t.Logf("memberlist warned through slog: %s", found.Message)
			return
		}
		time.Sleep(50 * time.Millisecond) // waiting for memberlist's packet loop
	}
	t.Fatalf("no memberlist warning in slog; records: %+v", h.recs)
}

// memberlistHasCrcMsg is memberlist's message type for a checksummed
// packet (part of its wire protocol).
const memberlistHasCrcMsg = 12

// FuzzLibLog: any bytes written by a library become records without a
// panic, and a partial line stays bounded.
func FuzzLibLog(f *testing.F) {
	for _, s := range []string{"[WARN] memberlist: x\n", "[DEBUG]\n", "no newline", "[ERR] [WARN] both\n\n\n", "raft: [INFO]  raft: y\n", "[TRACE]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newLibLog(slog.New(&recordHandler{}), "memberlist")
		w.Write(b)
		w.Write(b)
		if len(w.buf) > libLogMax {
			t.Fatalf("partial line of %d bytes kept", len(w.buf))
		}
	})
}
