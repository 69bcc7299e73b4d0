package failover

import (
	"fmt"

	"github.com/myha/myha/binlog"

	"github.com/myha/myha/topology"
)

// steps lays out what the executor will do, in order. Parallel steps share a
// group number.
func steps(snap *topology.Snapshot, old *topology.ServerView, chosen *replicaInfo, sources, reps []*replicaInfo, pol Policy, req Request, replays []Step) []Step {
	var out []Step
	timeout := pol.CatchupTimeout.Seconds()
	newP := chosen.v.Spec.Address
	add := func(s Step) { out = append(out, s) }
	followers := func() []*replicaInfo {
		var f []*replicaInfo
		for _, r := range reps {
			if r != chosen && r.lostWhy == "" && r.v.Reachable {
				f = append(f, r)
			}
		}
		return f
	}()
	pairSwitch := req.Kind == KindSwitchover && old.CoPrimaryOf == newP

	if req.Kind == KindSwitchover {
		// Replicas move below the new primary while the old one still
		// takes writes: they are attached before writes open on the new
		// primary, and the write-blocked window does not pay for it.
		for _, r := range followers {
			add(Step{Kind: StepAttach, Server: r.v.Spec.Address, Source: newP, Group: 1, Timeout: timeout,
				Description: "replicate from the new primary, chained below it while the old primary still takes writes (stop, wait until the new primary has what it applied, repoint); a failure rolls back"})
		}
		add(Step{Kind: StepSetReadOnly, Server: old.Spec.Address,
			Description: fmt.Sprintf("SET GLOBAL %s=1 on the old primary: writes stop here (the write-blocked window starts)", old.Dialect.ReadOnlyVariable())})
		add(Step{Kind: StepKillWriters, Server: old.Spec.Address, Timeout: pol.KillGrace.Seconds(),
			Description: fmt.Sprintf("let writes still running finish (up to %s), then kill the sessions still writing; read the final position", pol.KillGrace)})
		add(Step{Kind: StepWaitCaughtUp, Server: newP, Source: old.Spec.Address, Timeout: timeout,
			Description: "wait until the new primary has applied the old primary's last transaction; on timeout roll back (old primary writable again, nothing else changed)"})
		add(Step{Kind: StepPromote, Server: newP, Description: promoteText(chosen.v, old, pairSwitch)})
		for _, r := range followers {
			add(Step{Kind: StepVerify, Server: r.v.Spec.Address, Source: newP, Group: 2, Timeout: timeout,
				Description: "verify it received the old primary's last transaction through the new primary and both threads run against it"})
		}
		if pairSwitch {
			add(Step{Kind: StepKeepPairLink, Server: old.Spec.Address, Source: newP,
				Description: "the old primary keeps replicating from its co-primary, which is now the primary; the pair stays a pair"})
		} else {
			add(Step{Kind: StepDemote, Server: old.Spec.Address, Source: newP,
				Description: "make the old primary a read-only replica of the new one (MASTER_DEMOTE_TO_SLAVE=1 on MariaDB)"})
		}
		if pol.VIP != "" || pol.IPScript {
			add(Step{Kind: StepMoveVIP, Server: newP, Description: vipText(pol)})
		}
		return out
	}

	fence := fmt.Sprintf("SET GLOBAL %s=1 and kill client sessions on the old primary, so it cannot take writes if it comes back", old.Dialect.ReadOnlyVariable())
	if !old.Reachable || req.Hypothetical {
		fence = "the old primary is unreachable: fence it with SET GLOBAL read_only=1 if it answers by then; otherwise it stays unfenced over SQL (a shutdown hook can power it off)"
	}
	add(Step{Kind: StepFence, Server: old.Spec.Address, Description: fence})
	feeders := append([]*replicaInfo{chosen}, sources...)
	// A stopped SQL thread is started while the IO thread still runs:
	// starting it after both are stopped would discard the relay log.
	for _, r := range feeders {
		if r.sqlStop {
			add(Step{Kind: StepStartSQL, Server: r.v.Spec.Address,
				Description: "its SQL thread was stopped without error: start it (before its IO thread stops, which keeps the relay log) to apply what it received"})
		}
	}
	for _, r := range reps {
		if r.v.Reachable {
			add(Step{Kind: StepStopIO, Server: r.v.Spec.Address, Group: 1,
				Description: "stop the IO thread: freeze what it received, so a primary that comes back cannot feed some replicas and not others"})
		}
	}
	for _, r := range feeders {
		add(Step{Kind: StepWaitApplied, Server: r.v.Spec.Address, Target: r.received.String(), Timeout: timeout,
			Description: fmt.Sprintf("wait until it has applied everything it received (%s); stop if it now holds less than that", orNone(r.received.String()))})
	}
	target := chosen.received
	for _, src := range sources {
		target = target.Merge(src.received)
		add(Step{Kind: StepCatchUp, Server: newP, Source: src.v.Spec.Address, Target: target.String(), Timeout: timeout,
			Description: fmt.Sprintf("replicate from %s until it has everything that one received", src.v.Spec.Address)})
	}
	for _, rs := range replays {
		add(rs)
		if t, err := binlog.ParsePosition(target.Flavor, rs.Target); err == nil {
			target = target.Merge(t)
		}
	}
	add(Step{Kind: StepPromote, Server: newP, Target: target.String(), Description: "check it holds " + orNone(target.String()) + ", then " + promoteText(chosen.v, old, false)})
	for _, r := range followers {
		add(Step{Kind: StepRepoint, Server: r.v.Spec.Address, Source: newP, Group: 2, Timeout: timeout,
			Description: "replicate from the new primary (GTID auto-positioning), then verify both threads run"})
	}
	if pol.VIP != "" || pol.IPScript {
		add(Step{Kind: StepMoveVIP, Server: newP, Description: vipText(pol)})
	}
	return out
}

func vipText(pol Policy) string {
	if pol.VIP == "" {
		return "move the service address to the new primary with the MHA-compatible IP script"
	}
	return fmt.Sprintf("move VIP %s (%s) to the new primary", pol.VIP, pol.VIPInterface)
}

func promoteText(v, old *topology.ServerView, keepLink bool) string {
	s := "stop replication, RESET SLAVE ALL, SET GLOBAL read_only=0"
	if v.Dialect.Flavor == "mysql" {
		s = "stop replication, RESET REPLICA ALL, SET GLOBAL super_read_only=0, read_only=0"
	}
	if keepLink {
		s = "SET GLOBAL read_only=0, keeping its replication from the old primary (the co-primary link)"
	}
	if old.SemiSync.SourceEnabled {
		s += "; switch the semi-sync primary side on (the old primary used it)"
	}
	return s
}
