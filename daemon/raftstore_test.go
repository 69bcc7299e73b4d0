package daemon

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

func TestFileStoreSurvivesReopen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "raft.state")
	s, err := openFileStore(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := s.StoreLog(&raft.Log{Index: i, Term: 2, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	s.SetUint64([]byte("CurrentTerm"), 2)
	s.Set([]byte("LastVoteCand"), []byte("mon2"))
	s.DeleteRange(1, 2)

	r, err := openFileStore(p)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.FirstIndex()
	last, _ := r.LastIndex()
	term, _ := r.GetUint64([]byte("CurrentTerm"))
	vote, _ := r.Get([]byte("LastVoteCand"))
	var l raft.Log
	if err := r.GetLog(4, &l); err != nil || l.Data[0] != 4 {
		t.Fatalf("log 4: %v %v", l, err)
	}
	if first != 3 || last != 5 || term != 2 || string(vote) != "mon2" {
		t.Fatalf("after reopen: first %d last %d term %d vote %q", first, last, term, vote)
	}
	if err := r.GetLog(1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("deleted log still there: %v", err)
	}
}
