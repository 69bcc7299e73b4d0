package config

import (
	"strings"
	"testing"
)

// Errors point at the line and column to edit, for syntax errors (where
// the YAML library names the line its enclosing block began) and for
// keys, with a suggestion for misspelt ones.
func TestErrorsPointAtTheLineToEdit(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"misindented key", "clusters:\n  - name: lab\n    user: x\n   password: y\n",
			"line 4, column 4: not valid YAML: did not find expected '-' indicator"},
		{"tab", "clusters:\n  - name: lab\n\tuser: x\n", "line 3, column 1: not valid YAML: found a tab character that violates indentation (indent with spaces, never tabs)"},
		{"unclosed list", "clusters:\n  - name: lab\n    servers: [a, b\n    password: y\n", "line 3, column 5: not valid YAML"},
		{"misspelt key", "clusters:\n  - name: lab\n    failover:\n      down_afer: 1s\n",
			"line 4, column 7: clusters[0].failover.down_afer: unknown key (did you mean down_after?)"},
		{"misspelt top key", "clusterz: []\n", "line 1, column 1: clusterz: unknown key (did you mean clusters?)"},
		{"nothing close", "clusters:\n  - name: lab\n    zzzzzzzzzzzz: 1\n", "clusters[0].zzzzzzzzzzzz: unknown key (check its spelling"},
		{"duration in words", "clusters:\n  - name: lab\n    failover:\n      block_period: 1 hour\n",
			`line 4, column 7: clusters[0].failover.block_period: "1 hour" is not a duration: write it as Go does, e.g. 500ms, 30s, 1h, 1h30m`},
		{"validation error placed", strings.Replace(good, "198.18.0.12:3307", "198.18.0.12:99999", 1), `:99999": port must be 1-65535`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidationErrorsCarryTheKeysLine(t *testing.T) {
	y := strings.Replace(good, "198.18.0.12:3307", "198.18.0.12:99999", 1)
	want := 1 + strings.Count(y[:strings.Index(y, "198.18.0.12:99999")], "\n")
	_, err := Parse([]byte(y), Options{})
	es, ok := err.(Errors)
	if !ok || len(es) != 1 || es[0].Line != want {
		t.Fatalf("got %#v, want one error on line %d", err, want)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"down_afer", "down_after", 1}, {"kitten", "sitting", 3}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q,%q)=%d want %d", c.a, c.b, got, c.d)
		}
	}
}

func FuzzErrorPositions(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("clusters:\n  - name: lab\n\tuser: x\n"))
	f.Add([]byte("a: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		_, _ = Parse(data, Options{})
	})
}
