package config

import (
	"fmt"
	"strings"
)

// iniSection is one [section] of an INI file, keys in file order.
type iniSection struct {
	Name string
	Line int
	Keys []iniKey
}

type iniKey struct {
	Name, Value string
	Line        int
}

// parseINI reads the INI dialect MHA uses: [section] headers, key=value lines,
// # and ; comments, keys before any section go to section "". Key names are
// case-insensitive (MHA lower-cases them); duplicates are an error.
func parseINI(text string) ([]iniSection, error) {
	secs := []iniSection{{Name: ""}}
	for n, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		lineNo := n + 1
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: section header %q has no closing ]", lineNo, line)
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			if name == "" {
				return nil, fmt.Errorf("line %d: empty section name", lineNo)
			}
			for _, s := range secs {
				if s.Name == name {
					return nil, fmt.Errorf("line %d: section [%s] appears twice (also line %d)", lineNo, name, s.Line)
				}
			}
			secs = append(secs, iniSection{Name: name, Line: lineNo})
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not key=value", lineNo, line)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			return nil, fmt.Errorf("line %d: empty key", lineNo)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		cur := &secs[len(secs)-1]
		for _, have := range cur.Keys {
			if have.Name == k {
				return nil, fmt.Errorf("line %d: key %q appears twice in [%s] (also line %d)", lineNo, k, cur.Name, have.Line)
			}
		}
		cur.Keys = append(cur.Keys, iniKey{Name: k, Value: v, Line: lineNo})
	}
	return secs, nil
}

func (s *iniSection) get(k string) (iniKey, bool) {
	for _, kv := range s.Keys {
		if kv.Name == k {
			return kv, true
		}
	}
	return iniKey{}, false
}
