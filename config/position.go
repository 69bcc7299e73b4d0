package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Errors point at the line a user must edit: a key path such as
// "clusters[0].failover.down_after" is looked up in the file's YAML node
// tree, and a syntax error is placed on the first line after which the text
// stops parsing (the YAML library names the line where the enclosing block
// began, often far above the mistake).

type position struct{ line, col int }

// keyPositions maps every key path written in the file (lower case, as
// viper and mapstructure report them) to where its key starts.
func keyPositions(data []byte) map[string]position {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	out := map[string]position{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := strings.ToLower(k.Value)
				if path != "" {
					p = path + "." + p
				}
				out[p] = position{k.Line, k.Column}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				out[p] = position{item.Line, item.Column}
				walk(item, p)
			}
		case yaml.AliasNode:
			// An alias repeats another node; its keys were placed there.
		}
	}
	walk(doc.Content[0], "")
	return out
}

// placeErrors gives each error the position of its key, or of the nearest
// enclosing key written in the file (a missing key is reported where its
// parent is).
func placeErrors(errs Errors, data []byte) {
	pos := keyPositions(data)
	if pos == nil {
		return
	}
	for _, e := range errs {
		for k := strings.ToLower(e.Key); k != ""; k = parentKey(k) {
			if p, ok := pos[k]; ok {
				e.Line, e.Col = p.line, p.col
				break
			}
		}
	}
}

func parentKey(k string) string {
	if i := strings.LastIndexAny(k, ".["); i > 0 {
		return k[:i]
	}
	return ""
}

// syntaxPosition finds the first line at which the YAML text stops
// parsing: every prefix before it parses, the prefix ending there does not.
// The column is that line's first non-blank character, or its first tab
// when a tab is the trouble.
func syntaxPosition(data []byte) (position, bool) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var prefix []byte
	for i, l := range lines {
		prefix = append(prefix, l...)
		var n yaml.Node
		if yaml.Unmarshal(prefix, &n) == nil {
			continue
		}
		col := 1
		if t := bytes.IndexByte(l, '\t'); t >= 0 && len(bytes.TrimLeft(l[:t], " ")) == 0 {
			col = t + 1
		} else if trimmed := bytes.TrimLeft(l, " "); len(trimmed) > 0 {
			col = len(l) - len(trimmed) + 1
		}
		return position{i + 1, col}, true
	}
	return position{}, false
}

// yamlProblem turns the YAML library's message into ours: without its
// "line N" (often the enclosing block's line, not the mistake's).
func yamlProblem(msg string) string {
	msg = strings.TrimPrefix(msg, "While parsing config: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if _, err := strconv.Atoi(rest[:i]); err == nil {
				msg = rest[i+2:]
			}
		}
	}
	if strings.Contains(msg, "tab character") {
		msg += " (indent with spaces, never tabs)"
	}
	return "not valid YAML: " + msg
}

// suggestKey names the known key at the same level closest to an unknown
// one ("down_afer" → "down_after"), or "" when none is close.
func suggestKey(path string) string {
	parent, leaf := "", path
	if i := strings.LastIndex(path, "."); i >= 0 {
		parent, leaf = path[:i], path[i+1:]
	}
	t := typeAt(reflect.TypeOf(Config{}), parent)
	if t == nil {
		return ""
	}
	best, bestD := "", len(leaf)/3+2
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("mapstructure"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		if d := editDistance(leaf, tag); d < bestD {
			best, bestD = tag, d
		}
	}
	return best
}

// typeAt follows a key path ("clusters[0].failover") through the config's
// struct types; nil when the path leads nowhere known.
func typeAt(t reflect.Type, path string) reflect.Type {
	deref := func(t reflect.Type) reflect.Type {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		return t
	}
	t = deref(t)
	if path == "" {
		return t
	}
	for _, part := range strings.Split(path, ".") {
		if i := strings.IndexByte(part, '['); i >= 0 {
			part = part[:i]
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		found := false
		for i := 0; i < t.NumField(); i++ {
			if strings.Split(t.Field(i).Tag.Get("mapstructure"), ",")[0] == part {
				t, found = deref(t.Field(i).Type), true
				break
			}
		}
		if !found {
			return nil
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return t
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func unknownKeyProblem(path string) string {
	if s := suggestKey(path); s != "" {
		return fmt.Sprintf("unknown key (did you mean %s?)", s)
	}
	return "unknown key (check its spelling and indentation; see config/example.yaml)"
}
