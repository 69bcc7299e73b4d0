package topology

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// treeSnapshot is a primary with an intermediate, a replica under it, a
// replica with an errant transaction and an unreachable server (table data,
// no server involved).
func treeSnapshot() Snapshot {
	lag := int64(3)
	r3 := from(srv("c:1", 3, true, "0-1-10", "0-1-10"), "b", 1, 2)
	r3.Replication[0].LagSeconds = &lag
	snap := Build("app", []ServerState{
		srv("a:1", 1, false, "0-1-10", ""),
		from(srv("b:1", 2, true, "0-1-10", "0-1-10"), "a", 1, 1),
		r3,
		from(srv("d:1", 4, true, "0-1-10,1-4-2", "0-1-10"), "a", 1, 1),
		{Spec: ServerSpec{Address: "e:1"}, Error: "dial tcp e:1: connection refused"},
	}, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	snap.Took = 1250 * time.Microsecond
	for i := range snap.Servers {
		snap.Servers[i].VersionRaw = "10.11.9-MariaDB"
	}
	return snap
}

func TestWriteTree(t *testing.T) {
	snap := treeSnapshot()
	var b bytes.Buffer
	snap.WriteTree(&b)
	got := b.String()
	for _, want := range []string{
		"cluster app   primary: a:1   (discovered in 1.3ms)\n",
		"a:1  primary  10.11.9-MariaDB  RW  gtid 0-1-10\n",
		"├─ b:1  intermediate  10.11.9-MariaDB  ro  io:Yes sql:Yes  lag ?  gtid 0-1-10\n",
		"│  └─ c:1  replica  10.11.9-MariaDB  ro  io:Yes sql:Yes  lag 3s  gtid 0-1-10\n",
		"└─ d:1  replica  10.11.9-MariaDB  ro  io:Yes sql:Yes  lag ?  gtid 0-1-10,1-4-2  ERRANT 1-4-2\n",
		"not in the tree:\ne:1  unknown  UNREACHABLE (dial tcp e:1: connection refused)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("tree lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "! unreachable:") {
		t.Errorf("the unreachable reason is printed twice:\n%s", got)
	}
}

// TestWriteTreeFromJSON: a report that went through JSON (what a monitor's
// API serves) draws the same tree as the snapshot it came from, so
// `topology --api` prints what `topology` prints.
func TestWriteTreeFromJSON(t *testing.T) {
	snap := treeSnapshot()
	var direct bytes.Buffer
	snap.WriteTree(&direct)
	b, err := json.Marshal(snap.Report())
	if err != nil {
		t.Fatal(err)
	}
	// The API adds fields of its own beside the report's; they are ignored.
	var extra map[string]any
	json.Unmarshal(b, &extra)
	extra["state"], extra["epoch"] = "healthy", 3
	b, _ = json.Marshal(extra)
	var r ClusterReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var viaJSON bytes.Buffer
	r.WriteTree(&viaJSON)
	if direct.String() != viaJSON.String() {
		t.Fatalf("tree differs after JSON:\ndirect:\n%s\nvia JSON:\n%s", direct.String(), viaJSON.String())
	}
	if !r.TakenAt.Equal(snap.TakenAt) {
		t.Errorf("taken_at %v, want %v", r.TakenAt, snap.TakenAt)
	}
}
