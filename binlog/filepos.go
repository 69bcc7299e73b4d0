package binlog

import (
	"fmt"
	"strconv"
	"strings"
)

// FilePos is a classic binary log coordinate (SHOW MASTER STATUS File/Position,
// Read_Master_Log_Pos, Exec_Master_Log_Pos). It orders transactions of one
// server only; coordinates from different servers are not comparable.
type FilePos struct {
	File string
	Pos  uint64
}

// String renders "file:pos".
func (f FilePos) String() string {
	if f.File == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", f.File, f.Pos)
}

// IsZero reports an unknown coordinate.
func (f FilePos) IsZero() bool { return f.File == "" }

// ParseFilePos parses "mysql-bin.000003:1234".
func ParseFilePos(s string) (FilePos, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return FilePos{}, fmt.Errorf("binlog coordinate %q: want file:position", s)
	}
	pos, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return FilePos{}, fmt.Errorf("binlog coordinate %q: position is not a number", s)
	}
	if _, _, err := splitBinlogName(s[:i]); err != nil {
		return FilePos{}, err
	}
	return FilePos{File: s[:i], Pos: pos}, nil
}

// Compare orders two coordinates of the same server's binlog. It returns an
// error when the base names differ (different servers or renamed logs).
func (f FilePos) Compare(o FilePos) (Relation, error) {
	fb, fn, err := splitBinlogName(f.File)
	if err != nil {
		return Equal, err
	}
	ob, on, err := splitBinlogName(o.File)
	if err != nil {
		return Equal, err
	}
	if fb != ob {
		return Equal, fmt.Errorf("binlog coordinates %s and %s: different log base names", f, o)
	}
	switch {
	case fn > on || (fn == on && f.Pos > o.Pos):
		return Ahead, nil
	case fn < on || (fn == on && f.Pos < o.Pos):
		return Behind, nil
	}
	return Equal, nil
}

// splitBinlogName splits "mysql-bin.000012" into ("mysql-bin", 12).
func splitBinlogName(name string) (string, uint64, error) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return "", 0, fmt.Errorf("binlog file name %q: want base.NNNNNN", name)
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("binlog file name %q: suffix is not a number", name)
	}
	return name[:i], n, nil
}
