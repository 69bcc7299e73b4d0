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
