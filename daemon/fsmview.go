package daemon

import (
	"time"
)

// view is one cluster's part of the replicated state: the epoch, and that
// cluster's entries of every per-cluster map (open decision, block, agreed
// primary and its epoch, pause, maintenance), plus its failover history. The prober and the
// leader call it on every probe of every cluster, so it copies only what
// concerns that cluster — never the whole state, whose size grows with the
// number of clusters (snapshot copies it all, through JSON). The corrections
// journal is left out: nothing on the probe path reads it.
//
// A per-cluster map added to fsmState must be copied here too:
// TestFSMViewCopiesEveryPerClusterMap fails until it is.
func (f *fsm) view(cluster string) fsmState {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &f.st
	out := fsmState{Epoch: st.Epoch, Open: map[string]*Decision{}, Blocked: map[string]time.Time{}, Primary: map[string]string{}, PrimEpoc: map[string]int64{}}
	if d, ok := st.Open[cluster]; ok && d != nil {
		c := *d
		out.Open[cluster] = &c
	}
	if t, ok := st.Blocked[cluster]; ok {
		out.Blocked[cluster] = t
	}
	if p, ok := st.Primary[cluster]; ok {
		out.Primary[cluster] = p
	}
	if e, ok := st.PrimEpoc[cluster]; ok {
		out.PrimEpoc[cluster] = e
	}
	if why, ok := st.BlockedWhy[cluster]; ok {
		out.BlockedWhy = map[string]string{cluster: why}
	}
	if p, ok := st.Paused[cluster]; ok {
		out.Paused = map[string]Pause{cluster: p}
	}
	if m, ok := st.Maint[cluster]; ok {
		cp := make(map[string]Maintenance, len(m))
		for s, v := range m {
			cp[s] = v
		}
		out.Maint = map[string]map[string]Maintenance{cluster: cp}
	}
	for _, r := range st.History {
		if r.Cluster == cluster {
			out.History = append(out.History, r) // reports are never changed once appended
		}
	}
	return out
}
