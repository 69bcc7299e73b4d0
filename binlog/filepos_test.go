package binlog

import "testing"

func TestFilePosCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want Relation
		bad  bool
	}{
		{"mysql-bin.000002:4", "mysql-bin.000001:9999", Ahead, false},
		{"mysql-bin.000002:4", "mysql-bin.000002:400", Behind, false},
		{"mysql-bin.000002:4", "mysql-bin.000002:4", Equal, false},
		{"mysql-bin.999999:4", "mysql-bin.1000000:4", Behind, false},
		{"a.000001:4", "b.000001:4", Equal, true},
	} {
		a, b := mustFP(t, tc.a), mustFP(t, tc.b)
		got, err := a.Compare(b)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("%s vs %s = %v, %v; want %v (error %v)", tc.a, tc.b, got, err, tc.want, tc.bad)
		}
	}
}

func mustFP(t *testing.T, s string) FilePos {
	t.Helper()
	f, err := ParseFilePos(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func FuzzParseFilePos(f *testing.F) {
	for _, s := range []string{"mysql-bin.000001:4", ":", "x:1", "a.b:c", "a.1:18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseFilePos(s)
		if err != nil {
			return
		}
		q, err := ParseFilePos(p.String())
		if err != nil || q != p {
			t.Fatalf("round trip %q -> %q: %v", s, p, err)
		}
		if r, err := p.Compare(q); err != nil || r != Equal {
			t.Fatalf("%v not equal to itself: %v %v", p, r, err)
		}
	})
}
