package daemon

import (
	"bytes"
	"encoding/gob"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"
)

// fileStore is raft's log and stable store in one file. The monitors' log is
// small (failover decisions, acknowledgements, primary changes; compacted by
// snapshots), so every write rewrites the file atomically (write, fsync,
// rename): raft's votes and terms survive a crash, which its safety needs.
// It replaces raft-boltdb, whose bolt engine fails Go's pointer checks.
type fileStore struct {
	mu    sync.Mutex
	path  string
	state storeState
}

type storeState struct {
	Logs map[uint64]*raft.Log
	KV   map[string][]byte
	KVU  map[string]uint64
}

func openFileStore(path string) (*fileStore, error) {
	s := &fileStore{path: path, state: storeState{Logs: map[uint64]*raft.Log{}, KV: map[string][]byte{}, KVU: map[string]uint64{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s.state); err != nil {
		return nil, err
	}
	if s.state.Logs == nil {
		s.state.Logs = map[uint64]*raft.Log{}
	}
	if s.state.KV == nil {
		s.state.KV = map[string][]byte{}
	}
	if s.state.KVU == nil {
		s.state.KVU = map[string]uint64{}
	}
	return s, nil
}

func (s *fileStore) save() error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&s.state); err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
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
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (s *fileStore) bounds() (first, last uint64) {
	for i := range s.state.Logs {
		if first == 0 || i < first {
			first = i
		}
		if i > last {
			last = i
		}
	}
	return
}

// FirstIndex implements raft.LogStore.
func (s *fileStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, _ := s.bounds()
	return f, nil
}

// LastIndex implements raft.LogStore.
func (s *fileStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, l := s.bounds()
	return l, nil
}

// GetLog implements raft.LogStore.
func (s *fileStore) GetLog(index uint64, log *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.state.Logs[index]
	if !ok {
		return raft.ErrLogNotFound
	}
	*log = *l
	return nil
}

// StoreLog implements raft.LogStore.
func (s *fileStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore.
func (s *fileStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range logs {
		c := *l
		c.Data = append([]byte(nil), l.Data...)
		c.Extensions = append([]byte(nil), l.Extensions...)
		s.state.Logs[l.Index] = &c
	}
	return s.save()
}

// DeleteRange implements raft.LogStore.
func (s *fileStore) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.state.Logs {
		if i >= min && i <= max {
			delete(s.state.Logs, i)
		}
	}
	return s.save()
}

// Set implements raft.StableStore.
func (s *fileStore) Set(key []byte, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.KV[string(key)] = append([]byte(nil), val...)
	return s.save()
}

// Get implements raft.StableStore.
func (s *fileStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.state.KV[string(key)]
	if !ok {
		return nil, errors.New("not found")
	}
	return append([]byte(nil), v...), nil
}

// SetUint64 implements raft.StableStore.
func (s *fileStore) SetUint64(key []byte, val uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.KVU[string(key)] = val
	return s.save()
}

// GetUint64 implements raft.StableStore.
func (s *fileStore) GetUint64(key []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.KVU[string(key)], nil
}
