package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
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
	Op       string           `json:"op"` // decide, promoted, result, ack, primary, action, pause, resume, maintenance
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
	// Pause is the pause an operator asked for (op pause), or the one a
	// leader ends because its deadline passed (op resume).
	Pause *Pause `json:"pause,omitempty"`
	// Server, On and Reason mark a server in or out of maintenance.
	Server string `json:"server,omitempty"`
	On     bool   `json:"on,omitempty"`
	Reason string `json:"reason,omitempty"`
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
	// Paused holds the clusters an operator paused (myha pause): no
	// automatic action is taken on them until resumed or Until passes.
	Paused map[string]Pause `json:"paused,omitempty"`
	// Maint holds, per cluster, the servers in maintenance: never chosen
	// as a new primary, out of the agents' replica routing and alerts.
	Maint map[string]map[string]Maintenance `json:"maintenance,omitempty"`
}

const historyLimit = 200

// blockedUntilAck is the block end of a failed automatic failover: only
// myha ack lifts it.
func blockedUntilAck() time.Time { return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }

// fsm applies commands to fsmState. Reads take copies under the lock.
type fsm struct {
	mu  sync.Mutex
	st  fsmState
	log *slog.Logger
}

func newFSM() *fsm {
	return &fsm{st: fsmState{Open: map[string]*Decision{}, Blocked: map[string]time.Time{}, Primary: map[string]string{}, PrimEpoc: map[string]int64{}},
		log: slog.New(slog.DiscardHandler)}
}

// Apply implements raft.FSM. It returns an error value for refused
// commands. Every entry is validated first, and a panic is turned into a
// refusal: the log is persisted and replayed at every start, so one entry
// that crashed Apply would crash every monitor on every restart.
func (f *fsm) Apply(l *raft.Log) (res any) {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		err = fmt.Errorf("bad command: %w", err)
		f.log.Error("raft command rejected", "index", l.Index, "err", err)
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("command %q at index %d panicked: %v", c.Op, l.Index, p)
			f.log.Error("raft command rejected", "index", l.Index, "op", c.Op, "err", err, "stack", string(debug.Stack()))
			res = err
		}
	}()
	if err := c.validate(&f.st); err != nil {
		f.log.Error("raft command rejected", "index", l.Index, "op", c.Op, "err", err)
		return err
	}
	return f.apply(c)
}

// maxField bounds the strings a command may carry (cluster names, server
// addresses, monitor names): anything longer is not something myha wrote.
const maxField = 512

// validate checks a command's shape against the state it applies to, so
// apply never dereferences a missing field and stale or future epochs are
// refused rather than rolling the agreed primary back.
func (c *command) validate(st *fsmState) error {
	long := func(ss ...string) bool {
		for _, s := range ss {
			if len(s) > maxField {
				return true
			}
		}
		return false
	}
	switch c.Op {
	case "decide":
		d := c.Decision
		switch {
		case d == nil:
			return errors.New("decide without a decision")
		case d.Cluster == "" || d.NewPrimary == "":
			return errors.New("decide: cluster and new primary are required")
		case d.Kind != failover.KindFailover && d.Kind != failover.KindSwitchover:
			return fmt.Errorf("decide: unknown kind %q", d.Kind)
		case d.Epoch <= 0:
			return fmt.Errorf("decide: epoch %d", d.Epoch)
		case long(d.Cluster, d.OldPrimary, d.NewPrimary, d.Leader):
			return errors.New("decide: field too long")
		}
	case "promoted":
		switch {
		case c.Decision == nil || c.Cluster == "":
			return errors.New("promoted: cluster and decision are required")
		case c.Decision.Cluster != "" && c.Decision.Cluster != c.Cluster:
			return fmt.Errorf("promoted: decision of %q sent for %q", c.Decision.Cluster, c.Cluster)
		}
		open, ok := st.Open[c.Cluster]
		if !ok || open.Epoch != c.Decision.Epoch {
			return fmt.Errorf("promoted: no open failover of %s with epoch %d (stale)", c.Cluster, c.Decision.Epoch)
		}
	case "result":
		r := c.Report
		switch {
		case r == nil:
			return errors.New("result without a report")
		case r.Cluster == "":
			return errors.New("result: cluster is required")
		case r.Epoch <= 0 || r.Epoch > st.Epoch:
			return fmt.Errorf("result: epoch %d was never decided (last %d)", r.Epoch, st.Epoch)
		case r.Promoted && r.NewPrimary == "":
			return errors.New("result: promoted without a new primary")
		case r.Promoted && r.Epoch < st.PrimEpoc[r.Cluster]:
			return fmt.Errorf("result: stale promotion (epoch %d, agreed primary is from epoch %d)", r.Epoch, st.PrimEpoc[r.Cluster])
		case c.Block < 0:
			return errors.New("result: negative block period")
		case long(r.Cluster, r.OldPrimary, r.NewPrimary):
			return errors.New("result: field too long")
		}
	case "ack":
		if c.Cluster == "" || long(c.Cluster) {
			return errors.New("ack: cluster is required")
		}
	case "primary":
		if c.Cluster == "" || c.Primary == "" || long(c.Cluster, c.Primary) {
			return errors.New("primary: cluster and primary are required")
		}
	case "action":
		a := c.Action
		switch {
		case a == nil || c.Cluster == "":
			return errors.New("action: cluster and action are required")
		case a.Kind == "" || long(c.Cluster, string(a.Kind), a.Server, c.Leader) || len(a.Reason) > 4*maxField:
			return errors.New("action: kind required, fields bounded")
		}
	case "pause", "resume", "maintenance":
		return c.validateOperator(st)
	default:
		return fmt.Errorf("unknown op %q", c.Op)
	}
	return nil
}

// apply changes the state; validate has accepted c.
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
		open := st.Open[c.Cluster]
		open.Promoted = true
		st.Primary[c.Cluster], st.PrimEpoc[c.Cluster] = open.NewPrimary, open.Epoch
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
	case "pause", "resume", "maintenance":
		return st.applyOperator(c)
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
	for k, d := range st.Open {
		if d == nil {
			delete(st.Open, k) // a malformed snapshot must not crash a later apply
		}
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
