package failover

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Records are kept per cluster name, and names repeat across unrelated
// configs ("lab", "main"): one state directory shared by two of them would
// mix their histories, epochs and journals, and a rerun could "finish"
// another cluster's failover. Each cluster directory therefore records the
// servers it belongs to; a config whose servers share none of them is
// another cluster, refused with a clear error instead of read.

// identity is <state_dir>/<cluster>/cluster.json.
type identity struct {
	Servers []string `json:"servers"`
}

// ErrForeignState reports that a cluster directory holds another cluster's
// records.
var ErrForeignState = errors.New("state directory holds another cluster's records")

// Bind makes sure the cluster's records belong to these servers. A new or
// unmarked directory is marked with them; a directory marked with servers
// that share at least one address with them is the same cluster (servers
// are replaced over time) and takes the new list; one sharing none is
// another cluster: Bind returns an error wrapping ErrForeignState that
// names both lists and what to do, and changes nothing.
func (s Store) Bind(cluster string, servers []string) error {
	now := slices.Sorted(slices.Values(servers))
	path := filepath.Join(s.dir(cluster), "cluster.json")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("state_dir %s: %w", s.Dir, err)
	default:
		var was identity
		if err := json.Unmarshal(b, &was); err != nil {
			return fmt.Errorf("%s: %w (move it aside if the directory is this cluster's)", path, err)
		}
		if slices.Equal(was.Servers, now) {
			return nil
		}
		shared := false
		for _, a := range was.Servers {
			shared = shared || slices.Contains(now, a)
		}
		if !shared && len(was.Servers) > 0 {
			return fmt.Errorf("%w: %s holds the records of a cluster named %q with servers %s, and this config's cluster %q has %s: give this config a state_dir of its own",
				ErrForeignState, s.dir(cluster), cluster, strings.Join(was.Servers, ", "), cluster, strings.Join(now, ", "))
		}
	}
	if err := s.ensure(cluster); err != nil {
		return err
	}
	out, err := json.Marshal(identity{Servers: now})
	if err != nil {
		return err
	}
	return writeAtomic(path, out)
}
