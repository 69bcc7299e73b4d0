package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// libLog is an io.Writer that turns the text lines hashicorp/raft (through
// hclog) and hashicorp/memberlist (through *log.Logger) write into slog
// records of the daemon's logger, so their warnings reach the same log as
// everything else instead of being discarded. The level comes from the
// line's "[DEBUG]", "[INFO]", "[WARN]" or "[ERR]"/"[ERROR]" tag; a line
// without one is logged at info. Neither library is given a secret (the
// gossip key and TLS keys are handed over as values they never print), so
// their lines are passed on as they are.
type libLog struct {
	log *slog.Logger
	lib string

	mu  sync.Mutex
	buf []byte // a partial line, until its newline
}

// libLogMax bounds a partial line kept between writes.
const libLogMax = 16 << 10

func newLibLog(log *slog.Logger, lib string) *libLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &libLog{log: log, lib: lib}
}

func (l *libLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	var lines []string
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > libLogMax {
		lines, l.buf = append(lines, string(l.buf)), nil
	}
	l.mu.Unlock()
	for _, line := range lines {
		l.emit(line)
	}
	return len(p), nil
}

// libLevels maps the libraries' tags to slog levels.
var libLevels = []struct {
	tag   string
	level slog.Level
}{
	{"[TRACE]", slog.LevelDebug - 4}, {"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError},
}

func (l *libLog) emit(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	level := slog.LevelInfo
	for _, t := range libLevels {
		if i := strings.Index(line, t.tag); i >= 0 {
			level, line = t.level, strings.TrimSpace(line[i+len(t.tag):])
			break
		}
	}
	// "memberlist: ..." / "raft: ..." repeat what the lib attribute says.
	line = strings.TrimPrefix(line, l.lib+": ")
	l.log.Log(context.Background(), level, line, "lib", l.lib)
}

// level is the most verbose hclog level the daemon's logger would keep:
// lines below it are not even formatted.
func (l *libLog) level() hclog.Level {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return hclog.Debug
	}
	return hclog.Info
}

// libOutput is where raft or memberlist writes: the test seam when set,
// else the daemon's logger.
func libOutput(seam io.Writer, log *slog.Logger, lib string) io.Writer {
	if seam != nil {
		return seam
	}
	return newLibLog(log, lib)
}
