package failover

import (
	"fmt"

	"github.com/myha/myha/topology"
)

// BuildResume plans the rest of a failover that was interrupted after its
// new primary took writes. It never picks another primary: that would make
// two writers. It repoints whoever still follows the old primary, and
// re-applies the promotion if the new primary is not fully promoted.
func BuildResume(snap *topology.Snapshot, pol Policy, j *InProgress) Plan {
	p := Plan{Cluster: snap.Cluster, Kind: j.Kind, OldPrimary: j.OldPrimary, NewPrimary: j.NewPrimary, Resume: true,
		Why:        fmt.Sprintf("finishing failover %s, interrupted after %s was promoted", j.ID, j.NewPrimary),
		Candidates: []Candidate{}, Steps: []Step{}, LostReplicas: []Lost{}, Blockers: []string{}, Warnings: []string{}}
	np, ok := snap.Server(j.NewPrimary)
	switch {
	case !ok:
		p.Blockers = append(p.Blockers, fmt.Sprintf("the promoted server %s is no longer in the config", j.NewPrimary))
		return p
	case !np.Reachable:
		took := "it was about to be made writable when that run stopped, so it may have taken writes"
		if j.Writable {
			took = "it took writes"
		}
		p.Blockers = append(p.Blockers, fmt.Sprintf("failover %s promoted %s, which is now unreachable (%s); %s: bring it back to finish that failover, or run myha failover --accept-loss to set that attempt aside and fail over afresh (what only it received is lost)", j.ID, j.NewPrimary, np.Error, took))
		return p
	}
	if _, replicating := np.PrimaryConn(); replicating || np.ReadOnly || np.SuperReadOnly {
		p.Steps = append(p.Steps, Step{Kind: StepPromote, Server: np.Spec.Address, Description: "finish the promotion: stop and reset replication, read_only=0"})
	}
	for i := range snap.Servers {
		v := &snap.Servers[i]
		if v.Spec.Address == j.NewPrimary || v.Spec.Address == j.OldPrimary {
			continue
		}
		// Still on the old primary, or pointed at the new one but not
		// running (interrupted between CHANGE MASTER and START SLAVE).
		c, hasConn := v.PrimaryConn()
		half := v.Source == j.NewPrimary && hasConn && (!c.IORunning() || !c.SQLRunning)
		if v.Source != j.OldPrimary && !half {
			continue
		}
		switch {
		case !v.Reachable:
			p.LostReplicas = append(p.LostReplicas, Lost{Address: v.Spec.Address, Reason: "unreachable: repoint it when it is back"})
		case len(v.Errant) > 0:
			p.LostReplicas = append(p.LostReplicas, Lost{Address: v.Spec.Address, Reason: "errant transactions: it has diverged"})
		case v.Dialect.Flavor == np.Dialect.Flavor && np.ExecutedPosition().Missing(v.ExecutedPosition()) > 0:
			// The same "can it follow" rule as the first plan: it holds
			// what the new primary lacks, so it would diverge.
			p.LostReplicas = append(p.LostReplicas, Lost{Address: v.Spec.Address, Reason: fmt.Sprintf("holds %s, which the new primary lacks: it cannot follow without diverging",
				missingText(np.ExecutedPosition(), v.ExecutedPosition()))})
		default:
			p.Steps = append(p.Steps, Step{Kind: StepRepoint, Server: v.Spec.Address, Source: j.NewPrimary, Group: 2, Timeout: pol.CatchupTimeout.Seconds(),
				Description: "replicate from the new primary (GTID auto-positioning), then verify both threads run"})
		}
	}
	if pol.VIP != "" || pol.IPScript {
		p.Steps = append(p.Steps, Step{Kind: StepMoveVIP, Server: j.NewPrimary, Description: "move the VIP to the new primary (again: it is idempotent)"})
	}
	if len(p.Steps) == 0 {
		p.Warnings = append(p.Warnings, "nothing left to do: the interrupted failover had finished its changes")
	}
	return p
}
