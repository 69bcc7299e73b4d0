package failover

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/myha/myha/topology"
)

// Store keeps a cluster's failover records in the state directory: the
// journal of a failover in progress (so a rerun continues safely), the
// history of finished ones, and acknowledgements for anti-flapping.
type Store struct {
	Dir string // state_dir
}

// InProgress is the journal of a running or interrupted failover.
type InProgress struct {
	ID         string    `json:"id"`
	Epoch      int64     `json:"epoch"`
	Kind       Kind      `json:"kind"`
	OldPrimary string    `json:"old_primary"`
	NewPrimary string    `json:"new_primary"`
	Started    time.Time `json:"started"`
	// Promoted is set once the new primary accepted writes: from then on a
	// rerun must finish this failover, never pick another primary.
	Promoted bool `json:"promoted"`
	// Writable is set once the new primary was seen to take writes
	// (read_only=0 done); Promoted alone is the intent, recorded before.
	Writable bool   `json:"writable,omitempty"`
	LastStep string `json:"last_step"`
}

// Abandon sets an interrupted failover's journal aside (renamed, kept for
// the record) so the next run plans afresh: the operator's way out when the
// server it promoted died before the failover finished.
func (s Store) Abandon(cluster string, j *InProgress) (string, error) {
	from := filepath.Join(s.dir(cluster), "in-progress.json")
	to := filepath.Join(s.dir(cluster), fmt.Sprintf("abandoned-%s.json", j.ID))
	if err := os.Rename(from, to); err != nil {
		return "", err
	}
	return to, syncDir(s.dir(cluster))
}

func (s Store) dir(cluster string) string { return filepath.Join(s.Dir, cluster) }

func (s Store) ensure(cluster string) error {
	if err := os.MkdirAll(s.dir(cluster), 0o700); err != nil {
		return fmt.Errorf("state_dir %s: %w (create it, or set state_dir in the config)", s.Dir, err)
	}
	return nil
}

// writeAtomic replaces a file so a crash leaves the old or the new content.
// The file and its directory are fsynced: the journal records an intent
// that must survive a power cut, not only a process crash.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Journal returns the in-progress record, or nil.
func (s Store) Journal(cluster string) (*InProgress, error) {
	b, err := os.ReadFile(filepath.Join(s.dir(cluster), "in-progress.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j InProgress
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: corrupt journal: %w", filepath.Join(s.dir(cluster), "in-progress.json"), err)
	}
	return &j, nil
}

// SaveJournal writes the in-progress record.
func (s Store) SaveJournal(cluster string, j *InProgress) error {
	if err := s.ensure(cluster); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(j, "", "  ")
	return writeAtomic(filepath.Join(s.dir(cluster), "in-progress.json"), b)
}

// Finish appends the report to the history and removes the journal.
func (s Store) Finish(cluster string, r *Report) error {
	if err := s.ensure(cluster); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir(cluster), "history.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if r.Result == ResultFailed {
		// Keep the journal: a rerun says what happened and, once promoted,
		// must finish with the same new primary.
		return nil
	}
	err = os.Remove(filepath.Join(s.dir(cluster), "in-progress.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// History returns the recorded failovers, oldest first.
func (s Store) History(cluster string) ([]Report, error) {
	f, err := os.Open(filepath.Join(s.dir(cluster), "history.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Report
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r Report
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// NextEpoch numbers failovers of a cluster: one more than any recorded.
func (s Store) NextEpoch(cluster string) int64 {
	h, _ := s.History(cluster)
	var max int64
	for _, r := range h {
		if r.Epoch > max {
			max = r.Epoch
		}
	}
	return max + 1
}

// Ack records that an operator acknowledged the last failover, lifting the
// block period.
func (s Store) Ack(cluster string, at time.Time) error {
	if err := s.ensure(cluster); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir(cluster), "ack"), []byte(at.UTC().Format(time.RFC3339Nano)))
}

// BlockedUntil says until when automatic failovers are refused: the last
// promoting failover plus the block period, unless acknowledged after it.
// The zero time means not blocked.
func (s Store) BlockedUntil(cluster string, period time.Duration, now time.Time) (time.Time, *Report) {
	h, _ := s.History(cluster)
	var last *Report
	for i := range h {
		if h[i].Promoted && (last == nil || h[i].Started.After(last.Started)) {
			last = &h[i]
		}
	}
	if last == nil {
		return time.Time{}, nil
	}
	until := last.Started.Add(period)
	if !now.Before(until) {
		return time.Time{}, last
	}
	if b, err := os.ReadFile(filepath.Join(s.dir(cluster), "ack")); err == nil {
		if at, err := time.Parse(time.RFC3339Nano, string(b)); err == nil && at.After(last.Started) {
			return time.Time{}, last
		}
	}
	return until, last
}

// Memory returns what was remembered of the cluster when its primary last
// answered, or nil.
func (s Store) Memory(cluster string) (*topology.Memory, error) {
	b, err := os.ReadFile(filepath.Join(s.dir(cluster), "memory.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m topology.Memory
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: corrupt: %w", filepath.Join(s.dir(cluster), "memory.json"), err)
	}
	return &m, nil
}

// Recall keeps the memory of a snapshot whose primary answers (written only
// when it changed), or, when the primary does not answer, completes the
// snapshot with what was remembered. Errors writing are returned; the
// snapshot is then still usable.
func (s Store) Recall(snap topology.Snapshot) (topology.Snapshot, error) {
	old, err := s.Memory(snap.Cluster)
	if m, ok := topology.Remember(&snap); ok {
		if old != nil && old.Same(m) {
			return snap, nil
		}
		if err := s.ensure(snap.Cluster); err != nil {
			return snap, err
		}
		b, _ := json.MarshalIndent(m, "", "  ")
		return snap, writeAtomic(filepath.Join(s.dir(snap.Cluster), "memory.json"), b)
	}
	if err != nil || old == nil {
		return snap, err
	}
	return snap.WithMemory(*old), nil
}
