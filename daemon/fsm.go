package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/myha/myha/failover"
)

// The raft log is the monitors' shared memory: every failover decision is
// committed before the first change and its result after, so a new leader
// knows of an interrupted failover, and block periods, acknowledgements and
// the agreed primary of each cluster survive leader changes.

// Decision is a committed intent to fail a cluster over.
type Decision struct {
	Epoch      int64         `json:"epoch"`
	Cluster    string        `json:"cluster"`
	Kind       failover.Kind `json:"kind"`
	OldPrimary string        `json:"old_primary"`
	NewPrimary string        `json:"new_primary"`
	Leader     string        `json:"leader"`
	Started    time.Time     `json:"started"`
	Promoted   bool          `json:"promoted"`
	// Auto: started by the detector, not an operator.
	Auto bool `json:"auto,omitempty"`
}

// command is one raft log entry.
type command struct {
	Op       string           `json:"op"` // decide, promoted, result, ack, primary
	Decision *Decision        `json:"decision,omitempty"`
	Report   *failover.Report `json:"report,omitempty"`
	Cluster  string           `json:"cluster,omitempty"`
	Primary  string           `json:"primary,omitempty"`
	At       time.Time        `json:"at"`
	Block    time.Duration    `json:"block,omitempty"`
	Action   *Action          `json:"action,omitempty"`
	Leader   string           `json:"leader,omitempty"`
	// Auto marks the result of an automatic failover: if it did not
	// succeed, automatic failovers stay blocked until acknowledged.
	Auto bool `json:"auto,omitempty"`
}

// fsmState is everything the log builds.
type fsmState struct {
	Epoch    int64                `json:"epoch"`
	Open     map[string]*Decision `json:"open"`    // cluster → failover in progress
	History  []failover.Report    `json:"history"` // newest last, bounded
	Blocked  map[string]time.Time `json:"blocked"` // cluster → automatic failovers refused until
	Primary  map[string]string    `json:"primary"` // cluster → agreed primary
	PrimEpoc map[string]int64     `json:"p_epoch"` // cluster → epoch of that primary
	// BlockedWhy says why automatic failovers are blocked (a failed one
	// blocks until acknowledged).
	BlockedWhy map[string]string `json:"blocked_why,omitempty"`
	// Journal holds the leader's corrections, each committed before it
	// was made; newest last, bounded.
	Journal []JournalEntry `json:"journal,omitempty"`
}

const historyLimit = 200

// blockedUntilAck is the block end of a failed automatic failover: only
// myha ack lifts it.
func blockedUntilAck() time.Time { return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }

// fsm applies commands to fsmState. Reads take copies under the lock.
type fsm struct {
	mu sync.Mutex
	st fsmState
}

func newFSM() *fsm {
	return &fsm{st: fsmState{Open: map[string]*Decision{}, Blocked: map[string]time.Time{}, Primary: map[string]string{}, PrimEpoc: map[string]int64{}}}
}

// Apply implements raft.FSM. It returns an error value for refused commands.
func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("bad command: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apply(c)
}

func (f *fsm) apply(c command) any {
	st := &f.st
	switch c.Op {
	case "decide":
		d := *c.Decision
		if open, ok := st.Open[d.Cluster]; ok {
			if open.Epoch == d.Epoch {
				st.Open[d.Cluster] = &d // a new leader taking over the same failover
				return nil
			}
			return fmt.Errorf("failover %d of %s is still open", open.Epoch, d.Cluster)
		}
		if d.Epoch != st.Epoch+1 {
			return fmt.Errorf("stale decision: epoch %d, next is %d", d.Epoch, st.Epoch+1)
		}
		st.Epoch = d.Epoch
		st.Open[d.Cluster] = &d
	case "promoted":
		if open, ok := st.Open[c.Cluster]; ok && open.Epoch == c.Decision.Epoch {
			open.Promoted = true
			st.Primary[c.Cluster], st.PrimEpoc[c.Cluster] = open.NewPrimary, open.Epoch
		}
	case "result":
		r := *c.Report
		// A result closes the open decision of its epoch, and nothing
		// else: a late or duplicate result (a deposed leader finishing, a
		// new leader's phantom "aborted") must not add a second history
		// record for one failover.
		open, ok := st.Open[r.Cluster]
		if !ok || open.Epoch != r.Epoch {
			return fmt.Errorf("result for failover %d of %s: no open decision of that epoch", r.Epoch, r.Cluster)
		}
		delete(st.Open, r.Cluster)
		st.History = append(st.History, r)
		if len(st.History) > historyLimit {
			st.History = st.History[len(st.History)-historyLimit:]
		}
		if r.Promoted {
			st.Primary[r.Cluster], st.PrimEpoc[r.Cluster] = r.NewPrimary, r.Epoch
			if r.Kind == failover.KindFailover {
				st.Blocked[r.Cluster] = c.At.Add(c.Block)
				delete(st.BlockedWhy, r.Cluster)
			}
		}
		if c.Auto && r.Result != failover.ResultSuccess && r.Result != failover.ResultPartial {
			// MHA's rule: after a failed automatic failover, no other
			// automatic one until an operator acknowledges.
			st.Blocked[r.Cluster] = blockedUntilAck()
			if st.BlockedWhy == nil {
				st.BlockedWhy = map[string]string{}
			}
			st.BlockedWhy[r.Cluster] = fmt.Sprintf("automatic failover %d ended %s: %s; run myha ack after looking", r.Epoch, r.Result, r.Error)
		}
	case "ack":
		delete(st.Blocked, c.Cluster)
		delete(st.BlockedWhy, c.Cluster)
	case "primary":
		if prev := st.Primary[c.Cluster]; prev != c.Primary {
			// A changed primary gets a new epoch, so leases naming it
			// are newer than any lease naming the previous one.
			if prev != "" {
				st.Epoch++
			}
			st.Primary[c.Cluster], st.PrimEpoc[c.Cluster] = c.Primary, st.Epoch
		}
	case "action":
		if c.Action == nil {
			return fmt.Errorf("action without an action")
		}
		st.Journal = append(st.Journal, JournalEntry{Action: *c.Action, Cluster: c.Cluster, Leader: c.Leader, At: c.At})
		if len(st.Journal) > historyLimit {
			st.Journal = st.Journal[len(st.Journal)-historyLimit:]
		}
	default:
		return fmt.Errorf("unknown op %q", c.Op)
	}
	return nil
}

// snapshot returns a deep copy of the state.
func (f *fsm) snapshot() fsmState {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(f.st)
	var out fsmState
	json.Unmarshal(b, &out)
	if out.Open == nil {
		out.Open = map[string]*Decision{}
	}
	return out
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	st := f.snapshot()
	b, err := json.Marshal(st)
	return fsmSnap(b), err
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st fsmState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return err
	}
	for _, m := range []*map[string]time.Time{&st.Blocked} {
		if *m == nil {
			*m = map[string]time.Time{}
		}
	}
	if st.Open == nil {
		st.Open = map[string]*Decision{}
	}
	if st.Primary == nil {
		st.Primary = map[string]string{}
	}
	if st.PrimEpoc == nil {
		st.PrimEpoc = map[string]int64{}
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

type fsmSnap []byte

// Persist implements raft.FSMSnapshot.
func (s fsmSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s fsmSnap) Release() {}
