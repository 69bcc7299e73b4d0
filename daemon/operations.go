package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/myha/myha/failover"
)

// maxOperations bounds the operations a monitor remembers: the oldest is
// forgotten when a new one starts, so polling clients must read the
// outcome within the next maxOperations changes.
const maxOperations = 64

// Operation states.
const (
	opRunning   = "running"
	opSucceeded = "succeeded"
	opFailed    = "failed"
)

// operation is a failover or switchover started with async: its id lets
// a client poll GET /api/v1/operations/{id} for the outcome. It lives in
// the memory of the leader that runs it: a leader change or restart
// forgets it (the replicated history in GET /api/v1/failovers keeps the
// report).
type operation struct {
	ID       string           `json:"id"`
	Cluster  string           `json:"cluster"`
	Kind     string           `json:"kind"`
	State    string           `json:"state"`
	Started  time.Time        `json:"started"`
	Finished *time.Time       `json:"finished,omitempty"`
	Error    *apiError        `json:"error,omitempty"`
	Report   *failover.Report `json:"report,omitempty"`
}

// opStore keeps the last maxOperations operations, oldest first.
type opStore struct {
	mu    sync.Mutex
	max   int
	ops   map[string]*operation
	order []string
}

func newOpStore(max int) *opStore { return &opStore{max: max, ops: map[string]*operation{}} }

// start records a running operation and returns a copy.
func (s *opStore) start(cluster, kind string, now time.Time) operation {
	var b [12]byte
	rand.Read(b[:])
	op := &operation{ID: hex.EncodeToString(b[:]), Cluster: cluster, Kind: kind, State: opRunning, Started: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) >= s.max {
		delete(s.ops, s.order[0])
		s.order = s.order[1:]
	}
	s.ops[op.ID] = op
	s.order = append(s.order, op.ID)
	return *op
}

// finish records an operation's outcome (a forgotten one is ignored).
func (s *opStore) finish(id string, rep *failover.Report, e *apiError, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[id]
	if !ok {
		return
	}
	op.State, op.Report, op.Error, op.Finished = opSucceeded, rep, e, &now
	if e != nil {
		op.State = opFailed
	}
}

// get returns a copy of an operation.
func (s *opStore) get(id string) (operation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[id]
	if !ok {
		return operation{}, false
	}
	return *op, true
}
