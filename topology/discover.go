package topology

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Discover probes every configured server in parallel and builds a snapshot.
// Each server's probe is bounded by its connect and read timeouts, so one
// hung server delays the snapshot by at most that.
//
// Errant-transaction checks compare a replica with its source, which races
// with ongoing writes: a replica read after its source may already hold the
// source's next transactions. So when errant transactions show up, the
// sources involved (and their own sources, deepest first) are read again,
// after their replicas, and the view is rebuilt; what remains is real.
func Discover(ctx context.Context, spec ClusterSpec, d Dialer) Snapshot {
	return discover(ctx, spec, d, nil)
}

// DiscoverRoutine is Discover for a monitor's routine probe: servers on a
// reused session take their slow-changing facts from facts (see
// FactsCache), and every full read refreshes it. The snapshot says which
// servers' facts were reused (Snapshot.ReusedFacts); planning a failover
// needs one from Discover.
func DiscoverRoutine(ctx context.Context, spec ClusterSpec, d Dialer, facts *FactsCache) Snapshot {
	return discover(ctx, spec, d, facts)
}

func discover(ctx context.Context, spec ClusterSpec, d Dialer, facts *FactsCache) Snapshot {
	start := time.Now()
	states := make([]ServerState, len(spec.Servers))
	var wg sync.WaitGroup
	for i, s := range spec.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			states[i] = probeBounded(ctx, spec, d, s, facts)
		}()
	}
	wg.Wait()
	snap := Build(spec.Name, states, start)
	if again := sourcesToReread(&snap); len(again) > 0 {
		for _, i := range again {
			states[i] = probeBounded(ctx, spec, d, spec.Servers[i], facts)
		}
		snap = Build(spec.Name, states, start)
	}
	snap.Took = time.Since(start)
	return snap
}

func probeBounded(ctx context.Context, spec ClusterSpec, d Dialer, s ServerSpec, facts *FactsCache) ServerState {
	// A handful of statements, each bounded by the read timeout.
	pctx, cancel := context.WithTimeout(ctx, spec.ConnectTimeout+4*spec.ReadTimeout)
	defer cancel()
	return probe(pctx, d, s, facts)
}

// sourcesToReread returns indexes of the sources of servers with errant
// transactions, plus their ancestors, deepest first.
func sourcesToReread(snap *Snapshot) []int {
	index := map[string]int{}
	for i, v := range snap.Servers {
		index[v.Spec.Address] = i
	}
	depth := func(i int) int {
		n := 0
		for seen := map[int]bool{}; snap.Servers[i].Source != "" && !seen[i]; n++ {
			seen[i] = true
			i = index[snap.Servers[i].Source]
		}
		return n
	}
	set := map[int]bool{}
	for _, v := range snap.Servers {
		if len(v.Errant) == 0 {
			continue
		}
		for s, seen := v.Source, map[string]bool{}; s != "" && !seen[s]; s = snap.Servers[index[s]].Source {
			seen[s] = true
			set[index[s]] = true
		}
	}
	var out []int
	for i := range set {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b int) int { return depth(b) - depth(a) })
	return out
}
