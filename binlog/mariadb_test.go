package binlog

import (
	"reflect"
	"testing"
)

func TestParseMariaDBPos(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "", want: ""},
		{in: "0-1-100", want: "0-1-100"},
		{in: "1-2-7, 0-1-100", want: "0-1-100,1-2-7"},
		{in: "0-1", bad: true},
		{in: "0-1-x", bad: true},
		{in: "0-1-1,0-2-2", bad: true},
		{in: "0-1-1,", bad: true},
		{in: "-1-1", bad: true},
		{in: "0-1-1-1", bad: true},
	} {
		p, err := ParseMariaDBPos(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseMariaDBPos(%q) = %v, want error", tc.in, p)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("ParseMariaDBPos(%q) = %q, %v; want %q", tc.in, p, err, tc.want)
		}
	}
}

func TestMariaDBCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want Relation
	}{
		{"0-1-10", "0-1-10", Equal},
		{"0-1-11", "0-1-10", Ahead},
		{"0-1-9", "0-1-10", Behind},
		{"0-2-10", "0-1-10", Diverged},
		{"0-1-10,1-1-5", "0-1-10", Ahead},
		{"0-1-10", "0-1-10,1-1-5", Behind},
		{"0-1-11,1-1-4", "0-1-10,1-1-5", Incomparable},
		{"", "", Equal},
		{"", "0-1-1", Behind},
	} {
		got := MustParseMariaDBPos(tc.a).Compare(MustParseMariaDBPos(tc.b))
		if got != tc.want {
			t.Errorf("%q vs %q = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestMariaDBMerge(t *testing.T) {
	got := MustParseMariaDBPos("0-1-10,2-3-4").Merge(MustParseMariaDBPos("0-2-12,1-1-1,2-1-3")).String()
	if want := "0-2-12,1-1-1,2-3-4"; got != want {
		t.Fatalf("merge = %q, want %q", got, want)
	}
}

func TestMariaDBErrant(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		binlog, slave, primary string
		primarySlave           string
		serverID               uint32
		want                   []GTID
	}{
		{name: "clean replica", binlog: "0-1-100", slave: "0-1-100", primary: "0-1-105", serverID: 2},
		{name: "replica without log_slave_updates", binlog: "", slave: "0-1-100", primary: "0-1-100", serverID: 2},
		{name: "local write not yet overtaken", binlog: "0-2-101", slave: "0-1-100", primary: "0-1-100", serverID: 2,
			want: []GTID{{0, 2, 101}}},
		{name: "local write hidden by later primary writes", binlog: "0-2-101", slave: "0-1-100", primary: "0-1-105", serverID: 2,
			want: []GTID{{0, 2, 101}}},
		{name: "write in a domain the primary never had", binlog: "0-1-100,5-2-1", slave: "0-1-100", primary: "0-1-100", serverID: 2,
			want: []GTID{{5, 2, 1}}},
		{name: "former primary, demoted", binlog: "0-2-50", slave: "0-2-50", primary: "0-1-60", serverID: 2},
		{name: "co-primary write replicated by the active side", binlog: "0-2-101", slave: "0-1-100", primary: "0-1-105",
			primarySlave: "0-2-101", serverID: 2},
		{name: "co-primary write, active side has exactly it", binlog: "0-2-101", slave: "0-1-100", primary: "0-2-101", serverID: 2},
		{name: "diverged same seq", binlog: "0-3-100", slave: "0-3-100", primary: "0-1-100", serverID: 2,
			want: []GTID{{0, 3, 100}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MariaDBErrant(MustParseMariaDBPos(tc.binlog), MustParseMariaDBPos(tc.slave), tc.serverID, MustParseMariaDBPos(tc.primary), MustParseMariaDBPos(tc.primarySlave))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("errant = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseMariaDBPos(f *testing.F) {
	for _, s := range []string{"", "0-1-100", "0-1-1,1-2-3", "4294967295-4294967295-18446744073709551615", "0-1-1,,", "a-b-c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseMariaDBPos(s)
		if err != nil {
			return
		}
		// A parsed position must print to a string that parses back to itself.
		q, err := ParseMariaDBPos(p.String())
		if err != nil {
			t.Fatalf("reparse of %q (from %q): %v", p, s, err)
		}
		if p.Compare(q) != Equal || p.String() != q.String() {
			t.Fatalf("round trip %q -> %q", p, q)
		}
		if p.Merge(p).String() != p.String() {
			t.Fatalf("merge with itself changed %q", p)
		}
	})
}

func TestParseMariaDBState(t *testing.T) {
	st, err := ParseMariaDBState("0-2-8,0-1-12,1-1-3")
	if err != nil || len(st) != 3 {
		t.Fatalf("%v %v", st, err)
	}
	if !StateHolds(st, GTID{Domain: 0, ServerID: 2, Seq: 8}) || StateHolds(st, GTID{Domain: 0, ServerID: 2, Seq: 9}) || StateHolds(st, GTID{Domain: 1, ServerID: 2, Seq: 1}) {
		t.Fatal("StateHolds")
	}
	if _, err := ParseMariaDBState("0-1"); err == nil {
		t.Fatal("malformed state accepted")
	}
}

func FuzzParseMariaDBState(f *testing.F) {
	for _, s := range []string{"", "0-2-8,0-1-12", "0-1-1,,", "a-b-c", "1-1-1,1-1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseMariaDBState(s)
		if err != nil {
			return
		}
		for _, g := range st {
			if !StateHolds(st, g) {
				t.Fatalf("state %q does not hold its own %s", s, g)
			}
		}
	})
}
