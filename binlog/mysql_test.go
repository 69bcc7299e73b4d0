package binlog

import "testing"

const (
	uA = "3E11FA47-71CA-11E1-9E33-C80AA9429562"
	uB = "4e11fa47-71ca-11e1-9e33-c80aa9429562"
)

func TestMySQLSubtract(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{uA + ":1-10", uA + ":1-10", ""},
		{uA + ":1-10", uA + ":1-5", uA + ":6-10"},
		{uA + ":1-10", uA + ":3-4:7", uA + ":1-2:5-6:8-10"},
		{uA + ":1-10," + uB + ":1-3", uA + ":1-10", uB + ":1-3"},
		{uA + ":1-5", uA + ":1-10", ""},
		{uA + ":1-5:8-9", uA + ":2-8", uA + ":1:9"},
		{"", uA + ":1", ""},
	} {
		got := MustParseMySQLSet(tc.a).Subtract(MustParseMySQLSet(tc.b))
		if got.String() != MustParseMySQLSet(tc.want).String() {
			t.Errorf("%s - %s = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestMySQLCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want Relation
	}{
		{uA + ":1-10", uA + ":1-10", Equal},
		{uA + ":1-11", uA + ":1-10", Ahead},
		{uA + ":1-10", uA + ":1-10," + uB + ":1", Behind},
		{uA + ":1-11", uA + ":1-10," + uB + ":1", Incomparable},
	} {
		if got := MustParseMySQLSet(tc.a).Compare(MustParseMySQLSet(tc.b)); got != tc.want {
			t.Errorf("%s vs %s = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestMySQLParseMultiline(t *testing.T) {
	s, err := ParseMySQLSet(uA + ":1-10,\n" + uB + ":1-3")
	if err != nil || s.Count() != 13 {
		t.Fatalf("got %v (%d), %v", s, s.Count(), err)
	}
	if _, err := ParseMySQLSet("nonsense:1"); err == nil {
		t.Fatal("want error for a bad uuid")
	}
}

func FuzzParseMySQLSet(f *testing.F) {
	for _, s := range []string{"", uA + ":1-10", uA + ":1-3:5-9," + uB + ":7", uA + ":tag:1-2", uA + ":5-1"} {
		f.Add(s, uB+":1-2")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		x, err := ParseMySQLSet(a)
		if err != nil {
			return
		}
		y, err := ParseMySQLSet(b)
		if err != nil {
			return
		}
		// Set laws the errant check depends on.
		d := x.Subtract(y)
		if !x.Contains(d) {
			t.Fatalf("%v - %v = %v is not within %v", x, y, d, x)
		}
		if !d.Subtract(x).IsEmpty() || d.Count() > x.Count() {
			t.Fatalf("difference escapes the set")
		}
		if !x.Union(y).Contains(x) || !x.Union(y).Contains(y) {
			t.Fatalf("union lost members")
		}
		if x.Compare(x) != Equal {
			t.Fatalf("%v not equal to itself", x)
		}
	})
}
