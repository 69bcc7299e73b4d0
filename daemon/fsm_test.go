package daemon

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/myha/myha/failover"
)

func apply(t *testing.T, f *fsm, c command) any {
	t.Helper()
	b, _ := json.Marshal(c)
	return f.Apply(&raft.Log{Data: b})
}

func TestFSMOneFailoverAtATime(t *testing.T) {
	f := newFSM()
	now := time.Now()
	d := &Decision{Epoch: 1, Cluster: "c", Kind: failover.KindFailover, OldPrimary: "db1", NewPrimary: "db2", Started: now}
	if r := apply(t, f, command{Op: "decide", Decision: d}); r != nil {
		t.Fatal(r)
	}
	// A second decision for the same cluster is refused while one is open.
	d2 := *d
	d2.Epoch = 2
	if r := apply(t, f, command{Op: "decide", Decision: &d2}); r == nil {
		t.Fatal("second open failover accepted")
	}
	// A new leader re-committing the same epoch takes it over.
	if r := apply(t, f, command{Op: "decide", Decision: d}); r != nil {
		t.Fatal(r)
	}
	apply(t, f, command{Op: "promoted", Cluster: "c", Decision: d})
	if st := f.snapshot(); !st.Open["c"].Promoted || st.Primary["c"] != "db2" {
		t.Fatalf("promotion not recorded: %+v", st)
	}
	rep := &failover.Report{Epoch: 1, Cluster: "c", Kind: failover.KindFailover, NewPrimary: "db2", Promoted: true, Result: failover.ResultSuccess}
	apply(t, f, command{Op: "result", Report: rep, At: now, Block: time.Hour})
	st := f.snapshot()
	if len(st.Open) != 0 || len(st.History) != 1 || !st.Blocked["c"].Equal(now.Add(time.Hour)) {
		t.Fatalf("after result: %+v", st)
	}
	// A second result for the same failover (a late leader, a phantom
	// "aborted") is refused: one history record per decision.
	phantom := *rep
	phantom.Result = failover.ResultAborted
	if r := apply(t, f, command{Op: "result", Report: &phantom, At: now}); r == nil {
		t.Fatal("a result with no open decision was recorded")
	}
	if n := len(f.snapshot().History); n != 1 {
		t.Fatalf("%d history records for one failover", n)
	}
	// Stale epochs are refused.
	d3 := *d
	if r := apply(t, f, command{Op: "decide", Decision: &d3}); r == nil {
		t.Fatal("reused epoch accepted")
	}
	apply(t, f, command{Op: "ack", Cluster: "c"})
	if _, blocked := f.snapshot().Blocked["c"]; blocked {
		t.Fatal("ack did not lift the block")
	}

	// Snapshot and restore give the same state.
	snap, _ := f.Snapshot()
	var buf bytes.Buffer
	snap.(fsmSnap).Persist(&sinkBuf{Buffer: &buf})
	g := newFSM()
	if err := g.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	if a, b := f.snapshot(), g.snapshot(); a.Epoch != b.Epoch || len(a.History) != len(b.History) || a.Primary["c"] != b.Primary["c"] {
		t.Fatalf("restore differs: %+v vs %+v", a, b)
	}
}

type sinkBuf struct{ *bytes.Buffer }

func (s *sinkBuf) ID() string    { return "test" }
func (s *sinkBuf) Cancel() error { return nil }
func (s *sinkBuf) Close() error  { return nil }

// Malformed or stale commands are refused with an error, never a panic, and
// leave the state as it was.
func TestFSMRejectsMalformedCommands(t *testing.T) {
	f := newFSM()
	now := time.Now()
	d := &Decision{Epoch: 1, Cluster: "c", Kind: failover.KindFailover, OldPrimary: "db1", NewPrimary: "db2", Started: now}
	if r := apply(t, f, command{Op: "decide", Decision: d}); r != nil {
		t.Fatal(r)
	}
	before := f.snapshot()
	for _, raw := range []string{
		`not json`,
		`{"op":"decide"}`,
		`{"op":"decide","decision":{"epoch":2}}`,
		`{"op":"decide","decision":{"epoch":0,"cluster":"x","kind":"failover","new_primary":"db2"}}`,
		`{"op":"decide","decision":{"epoch":2,"cluster":"x","kind":"explode","new_primary":"db2"}}`,
		`{"op":"promoted","cluster":"c"}`,
		`{"op":"promoted","cluster":"c","decision":{"epoch":7}}`,
		`{"op":"promoted","cluster":"nope","decision":{"epoch":1}}`,
		`{"op":"result"}`,
		`{"op":"result","report":{"cluster":"c","epoch":9,"promoted":true,"new_primary":"evil"}}`,
		`{"op":"result","report":{"cluster":"c","epoch":1,"promoted":true}}`,
		`{"op":"ack"}`,
		`{"op":"primary","cluster":"c"}`,
		`{"op":"primary","primary":"db9"}`,
		`{"op":"format-disk"}`,
		`{}`,
		`null`,
	} {
		r := f.Apply(&raft.Log{Index: 9, Data: []byte(raw)})
		if _, isErr := r.(error); !isErr {
			t.Errorf("%s: accepted (%v)", raw, r)
		}
	}
	after := f.snapshot()
	if after.Epoch != before.Epoch || len(after.History) != 0 || after.Primary["c"] != before.Primary["c"] || !after.Open["c"].Equal(before.Open["c"]) {
		t.Fatalf("state changed by refused commands: %+v → %+v", before, after)
	}

	// A later promotion rolls the agreed primary forward; an older result
	// cannot roll it back.
	apply(t, f, command{Op: "promoted", Cluster: "c", Decision: d})
	apply(t, f, command{Op: "result", Report: &failover.Report{Epoch: 1, Cluster: "c", Kind: failover.KindFailover, NewPrimary: "db2", Promoted: true}, At: now})
	d2 := &Decision{Epoch: 2, Cluster: "c", Kind: failover.KindSwitchover, OldPrimary: "db2", NewPrimary: "db3", Started: now}
	apply(t, f, command{Op: "decide", Decision: d2})
	apply(t, f, command{Op: "promoted", Cluster: "c", Decision: d2})
	if r := apply(t, f, command{Op: "result", Report: &failover.Report{Epoch: 1, Cluster: "c", Kind: failover.KindFailover, NewPrimary: "db2", Promoted: true}, At: now}); r == nil {
		t.Fatal("a stale promotion result was accepted")
	}
	if p := f.snapshot().Primary["c"]; p != "db3" {
		t.Fatalf("agreed primary rolled back to %s", p)
	}
}

// Equal compares decisions field by field (tests).
func (d *Decision) Equal(o *Decision) bool { return d != nil && o != nil && *d == *o }

// A malformed entry that made it into the raft log (an older version, a
// forged append) is refused at apply time on every replay: a restarted
// monitor comes up with the valid entries applied instead of panicking
// again and again.
func TestFSMMalformedEntryInPersistedLogDoesNotCrashReplay(t *testing.T) {
	store, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	start := func(f *fsm) (*raft.Raft, func()) {
		_, tr := raft.NewInmemTransport("self")
		r, stop, err := startRaft(RaftConfig{Self: "self", Peers: map[string]string{"self": "self"}, Transport: tr, Logs: store, Stable: store, Snaps: snaps}, f)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "leadership", 10*time.Second, func() bool { return r.State() == raft.Leader })
		return r, stop
	}
	r, stop := start(newFSM())
	for _, raw := range []string{`{"op":"decide"}`, `{"op":"result"}`, `{"op":"promoted","cluster":"c"}`, `{"op":"primary","cluster":"c","primary":"db1:3306"}`} {
		if err := r.Apply([]byte(raw), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	stop()

	f := newFSM()
	r, stop = start(f)
	defer stop()
	if err := r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if p := f.snapshot().Primary["c"]; p != "db1:3306" {
		t.Fatalf("after replay the agreed primary is %q", p)
	}
}

// FuzzFSMApply feeds arbitrary raft entries to the state machine, as a
// forged append or a corrupted log could: refused or applied, never a
// panic, and the state stays readable.
func FuzzFSMApply(f *testing.F) {
	f.Add([]byte(`{"op":"decide","decision":{"epoch":1,"cluster":"c","kind":"failover","old_primary":"a","new_primary":"b"}}`))
	f.Add([]byte(`{"op":"promoted","cluster":"c","decision":{"epoch":1}}`))
	f.Add([]byte(`{"op":"result","report":{"cluster":"c","epoch":1,"promoted":true,"new_primary":"b"}}`))
	f.Add([]byte(`{"op":"decide"}`))
	f.Add([]byte(`{"op":"pause","cluster":"c","pause":{"since":"2026-01-01T00:00:00Z","until":"2026-01-01T02:00:00Z","reason":"upgrade"}}`))
	f.Add([]byte(`{"op":"resume","cluster":"c","pause":{"since":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"op":"maintenance","cluster":"c","server":"b","on":true,"reason":"disk"}`))
	f.Add([]byte(`{"op":"maintenance","cluster":"c","server":"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := newFSM()
		fs.Apply(&raft.Log{Data: []byte(`{"op":"decide","decision":{"epoch":1,"cluster":"c","kind":"failover","old_primary":"a","new_primary":"b"}}`)})
		fs.Apply(&raft.Log{Data: b})
		fs.Apply(&raft.Log{Data: b})
		_ = fs.snapshot()
	})
}

// The corrections journal (op "action") passes validation; a malformed one
// does not.
func TestFSMAcceptsJournalledActions(t *testing.T) {
	f := newFSM()
	if r := apply(t, f, command{Op: "action", Cluster: "c", Action: &Action{Kind: "make_writable", Server: "db1", Reason: "restarted"}}); r != nil {
		t.Fatalf("a journalled correction was refused: %v", r)
	}
	if n := len(f.snapshot().Journal); n != 1 {
		t.Fatalf("%d journal entries, want 1", n)
	}
	if r := apply(t, f, command{Op: "action", Cluster: "c"}); r == nil {
		t.Fatal("an action without an action was accepted")
	}
}
