package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// The leader's corrections are computed by one pure function from what it
// sees (the snapshot, the verdict, the replicated state) and carried out by
// one path that journals each change in raft before making it, under the
// cluster's failover lock, after re-reading the server (VTOrc's lock →
// refresh → re-analyse → act → audit).

// ActionKind names a correction.
type ActionKind string

// Corrections the leader makes.
const (
	// ActAgreePrimary records the one writable root in service as the
	// agreed primary (a manual switchover, a failover run by the CLI).
	ActAgreePrimary ActionKind = "agree_primary"
	// ActFenceStray sets read_only=1 on a writable server that is not the
	// agreed primary.
	ActFenceStray ActionKind = "fence_stray"
	// ActMakeWritable sets read_only=0 on the agreed primary when it came
	// back read-only (a fast restart) and still leads its replicas.
	ActMakeWritable ActionKind = "make_writable"
	// ActCloseSuperseded closes an open failover decision: the cluster is
	// healthy under another primary than the one it was failing over.
	ActCloseSuperseded ActionKind = "close_superseded"
)

// Action is one correction with the reason it is needed.
type Action struct {
	Kind   ActionKind `json:"kind"`
	Server string     `json:"server"`
	Reason string     `json:"reason"`
	Epoch  int64      `json:"epoch,omitempty"` // the decision closed
}

// JournalEntry is an action as committed to raft before it was made.
type JournalEntry struct {
	Action
	Cluster string    `json:"cluster"`
	Leader  string    `json:"leader"`
	At      time.Time `json:"at"`
}

// correctionInput is everything planCorrections looks at.
type correctionInput struct {
	Cluster string
	Snap    *topology.Snapshot
	Verdict Verdict
	State   fsmState
	// Agents is set with vip.method: agent. AgentAlive then holds the
	// servers whose agent reported within agentAliveWithin: only a running
	// agent (and its watchdog) fences a primary whose host is cut off.
	Agents     bool
	AgentAlive map[string]bool
}

// agentAliveWithin is how recent an agent's report must be for it to
// count as running (agents report every agentTick).
const agentAliveWithin = time.Second

func writable(v *topology.ServerView) bool { return v.Reachable && !v.ReadOnly && !v.SuperReadOnly }

// planCorrections is the leader's analysis: which corrections the cluster
// needs now. It is pure; the caller executes the list in order.
func planCorrections(in correctionInput) []Action {
	snap, st := in.Snap, in.State
	var writers []string
	for i := range snap.Servers {
		if writable(&snap.Servers[i]) {
			writers = append(writers, snap.Servers[i].Spec.Address)
		}
	}
	// The one writable root in service, whatever else is wrong.
	inService := ""
	if len(writers) == 1 && writers[0] == snap.Primary {
		inService = snap.Primary
	}
	agreed := st.Primary[in.Cluster]
	var acts []Action
	if open, ok := st.Open[in.Cluster]; ok {
		// A decision is open: its failover runs or will be resumed. Touch
		// nothing, unless the cluster is plainly healthy under another
		// primary than the one it was failing over (an operator finished
		// it by hand): then it is superseded.
		if inService == "" || inService == open.OldPrimary || in.Verdict.State != StateHealthy {
			return nil
		}
		acts = append(acts, Action{Kind: ActCloseSuperseded, Server: inService, Epoch: open.Epoch,
			Reason: fmt.Sprintf("failover %d (%s → %s) is superseded: %s is the one writable primary and healthy", open.Epoch, open.OldPrimary, open.NewPrimary, inService)})
	}
	if inService != "" && inService != agreed {
		acts = append(acts, Action{Kind: ActAgreePrimary, Server: inService,
			Reason: fmt.Sprintf("%s is the one writable root in service (was %q)", inService, agreed)})
		agreed = inService
	}
	if agreed == "" {
		return acts
	}
	for _, w := range writers {
		if w != agreed {
			acts = append(acts, Action{Kind: ActFenceStray, Server: w, Reason: fmt.Sprintf("writable, but the agreed primary is %s", agreed)})
		}
	}
	if a, ok := makeWritable(in, agreed, writers); ok {
		acts = append(acts, a)
	}
	return acts
}

// makeWritable: the agreed primary came back read-only (servers start
// with read_only=1, so a fast restart leaves the cluster without a writer)
// and nothing happened meanwhile: no server is writable, the primary is
// healthy in the verdict, every reachable server still replicates from it,
// and it plus the replicas connected to it are a strict majority of the
// cluster (the agent's failsafe rule: a primary cut off from its replicas,
// which its agent fenced, is never made writable again).
func makeWritable(in correctionInput, agreed string, writers []string) (Action, bool) {
	p, ok := in.Snap.Server(agreed)
	if !ok || !p.Reachable || writable(p) || len(writers) > 0 || in.Verdict.State != StateHealthy || in.Snap.Primary != agreed {
		return Action{}, false
	}
	if _, replicating := p.PrimaryConn(); replicating {
		return Action{}, false // it replicates from someone: not a root
	}
	connected := 0
	for i := range in.Snap.Servers {
		v := &in.Snap.Servers[i]
		if v.Spec.Address == agreed || !v.Reachable {
			continue
		}
		c, ok := v.PrimaryConn()
		if !ok || c.Source() != agreed {
			return Action{}, false // someone follows another source: not "nothing happened"
		}
		if c.IORunning() {
			connected++
		}
	}
	if (1+connected)*2 <= len(in.Snap.Servers) {
		return Action{}, false
	}
	if in.Agents && !in.AgentAlive[agreed] {
		// Its agent is paused or dead (its watchdog may have fenced it):
		// re-opened now, nothing would fence it if its host were cut off.
		return Action{}, false
	}
	return Action{Kind: ActMakeWritable, Server: agreed,
		Reason: fmt.Sprintf("the agreed primary is back read-only with %d replica(s) connected and no other writer: a restart, not a failover", connected)}, true
}

// correct runs the corrections the analysis asks for, one path for all.
func (cm *clusterMon) correct(ctx context.Context, snap *topology.Snapshot, v Verdict, st fsmState) {
	in := correctionInput{Cluster: cm.cfg.Spec.Name, Snap: snap, Verdict: v, State: st, Agents: cm.cfg.VIPLease > 0, AgentAlive: map[string]bool{}}
	if in.Agents {
		now := cm.d.now()
		for i := range snap.Servers {
			addr := snap.Servers[i].Spec.Address
			if _, at, ok := cm.d.gossip().agent(addr); ok && now.Sub(at) < agentAliveWithin {
				in.AgentAlive[addr] = true
			}
		}
	}
	for _, a := range planCorrections(in) {
		if ctx.Err() != nil || !cm.d.isLeader() {
			return
		}
		if err := cm.perform(ctx, snap, a); err != nil {
			cm.d.log.Warn("correction not made", "cluster", cm.cfg.Spec.Name, "action", a.Kind, "server", a.Server, "err", err)
		}
	}
}

// perform carries out one action. Changes to servers are made under the
// cluster's failover lock on that server, after re-reading it, and after
// the action is committed to the raft journal (which only the leader can).
func (cm *clusterMon) perform(ctx context.Context, snap *topology.Snapshot, a Action) error {
	name := cm.cfg.Spec.Name
	switch a.Kind {
	case ActAgreePrimary:
		if err := cm.d.apply(command{Op: "primary", Cluster: name, Primary: a.Server, At: cm.d.now()}); err != nil {
			return err
		}
		cm.d.log.Info("agreed primary follows the writable root in service", "cluster", name, "primary", a.Server, "why", a.Reason)
		return nil
	case ActCloseSuperseded:
		rep := &failover.Report{Epoch: a.Epoch, Cluster: name, Kind: failover.KindFailover, NewPrimary: a.Server,
			Result: resultSuperseded, Error: a.Reason, Started: cm.d.now(), Steps: []failover.StepResult{}}
		if open, ok := cm.d.fsm.view(cm.cfg.Spec.Name).Open[name]; ok && open.Epoch == a.Epoch {
			rep.Kind, rep.OldPrimary = open.Kind, open.OldPrimary // history shows what was superseded
		}
		if err := cm.d.apply(command{Op: "result", Report: rep, At: cm.d.now()}); err != nil {
			return err
		}
		cm.d.log.Warn("closed a superseded failover decision", "cluster", name, "epoch", a.Epoch, "why", a.Reason)
		return nil
	}
	v, ok := snap.Server(a.Server)
	if !ok {
		return fmt.Errorf("%s is not in the snapshot", a.Server)
	}
	actx, cancel := context.WithTimeout(ctx, cm.cfg.Spec.ConnectTimeout+4*cm.cfg.Spec.ReadTimeout)
	defer cancel()
	q, err := cm.dialer.Dial(actx, a.Server)
	if err != nil {
		return err
	}
	defer q.Close()
	// Lock: the same lock failovers and switchovers hold; one that runs
	// now owns the cluster's transient states.
	// A holder with another account than myha's is ended (it is not a
	// failover, and must not keep a stray writable server unfenced).
	res, err := failover.AcquireLock(actx, q, v.Dialect, a.Server, failover.LockName(name), cm.cfg.Spec.Credentials.User, cm.d.log)
	if err != nil {
		return err
	}
	switch {
	case res.Taken:
		defer q.Exec(context.WithoutCancel(actx), "DO RELEASE_LOCK("+topology.QuoteLiteral(lockName(name))+")")
	case res.Squatter == nil:
		return fmt.Errorf("a failover or switchover holds the lock (%s): leaving it alone", res.Holder)
	}
	// Refresh and re-analyse: the server may have changed since the probe.
	ro, err := q.Query(actx, "SELECT @@global.read_only AS ro")
	if err != nil || len(ro) != 1 {
		return fmt.Errorf("re-reading read_only: %v", err)
	}
	isRO := ro[0]["ro"] == "1"
	var stmts []string
	switch a.Kind {
	case ActFenceStray:
		if isRO && (v.Dialect.IsMariaDB() || v.SuperReadOnly) {
			return nil
		}
		stmts = v.Dialect.SetReadOnly(true)
	case ActMakeWritable:
		if !isRO {
			return nil
		}
		stmts = v.Dialect.SetReadOnly(false)
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	// Audit first: a change the journal does not hold is never made, and a
	// monitor that is no longer leader cannot commit.
	if err := cm.d.apply(command{Op: "action", Cluster: name, Action: &a, At: cm.d.now()}); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for _, s := range stmts {
		if err = q.Exec(actx, s); err != nil {
			break
		}
	}
	cm.d.log.Warn("correction made", "cluster", name, "action", a.Kind, "server", a.Server, "why", a.Reason, "err", err)
	return err
}

// lockName is the lock name as GET_LOCK receives it (truncated to 64).
func lockName(cluster string) string {
	n := failover.LockName(cluster)
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// resultSuperseded closes a decision that another change made moot.
const resultSuperseded failover.Result = "superseded"
