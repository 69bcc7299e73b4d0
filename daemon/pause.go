package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/myha/myha/failover"
	"github.com/myha/myha/topology"
)

// An operator working on a cluster says so to the monitors, through raft,
// so every monitor (and the next leader) honours it: a paused cluster gets
// no automatic action (failover, fencing, corrections, rejoin; the agreed
// primary keeps its lease, so the VIP stays where it is), and a server in
// maintenance is never chosen as a new primary, leaves the agents' replica
// routing and is not counted as a problem. Manual failovers and
// switchovers still run: the operator is in charge.

// Pause is an operator's pause of a cluster's automatic actions.
type Pause struct {
	// Since is when the leader committed it (leader's clock).
	Since time.Time `json:"since"`
	// Until is when it ends by itself (leader's clock); zero: at myha resume.
	Until  time.Time `json:"until,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Maintenance marks a server an operator works on.
type Maintenance struct {
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
}

// Bounds on what operator commands may make the state hold: the API checks
// names against the config, these only stop a forged entry from growing
// the state without end.
const (
	maxPaused          = 4096 // clusters
	maxMaintPerCluster = 1024 // servers
	maxOperatorReason  = 2 * maxField
)

// validateOperator checks pause, resume and maintenance commands.
func (c *command) validateOperator(st *fsmState) error {
	if c.Cluster == "" || len(c.Cluster) > maxField {
		return fmt.Errorf("%s: cluster is required (at most %d bytes)", c.Op, maxField)
	}
	switch c.Op {
	case "pause":
		p := c.Pause
		switch {
		case p == nil:
			return errors.New("pause: no pause given")
		case len(p.Reason) > maxOperatorReason:
			return errors.New("pause: reason too long")
		case !p.Until.IsZero() && !p.Until.After(p.Since):
			return fmt.Errorf("pause: ends (%s) before it starts (%s)", p.Until.Format(time.RFC3339), p.Since.Format(time.RFC3339))
		}
		if _, ok := st.Paused[c.Cluster]; !ok && len(st.Paused) >= maxPaused {
			return errors.New("pause: too many paused clusters")
		}
	case "resume":
		// A leader ending a timed pause names the pause it ends (Pause),
		// so a pause renewed meanwhile is not ended by mistake; apply
		// checks it.
	case "maintenance":
		switch {
		case c.Server == "" || len(c.Server) > maxField:
			return errors.New("maintenance: server is required")
		case len(c.Reason) > maxOperatorReason:
			return errors.New("maintenance: reason too long")
		}
		if _, ok := st.Maint[c.Cluster][c.Server]; c.On && !ok {
			if len(st.Maint[c.Cluster]) >= maxMaintPerCluster || st.Maint[c.Cluster] == nil && len(st.Maint) >= maxPaused {
				return errors.New("maintenance: too many servers in maintenance")
			}
		}
	}
	return nil
}

// applyOperator changes the state for an accepted operator command.
func (st *fsmState) applyOperator(c command) any {
	switch c.Op {
	case "pause":
		if st.Paused == nil {
			st.Paused = map[string]Pause{}
		}
		st.Paused[c.Cluster] = *c.Pause
	case "resume":
		cur, ok := st.Paused[c.Cluster]
		if c.Pause != nil && (!ok || !cur.Since.Equal(c.Pause.Since)) {
			return fmt.Errorf("resume: the pause of %s that ran out was replaced or lifted already", c.Cluster)
		}
		delete(st.Paused, c.Cluster)
	case "maintenance":
		if !c.On {
			delete(st.Maint[c.Cluster], c.Server)
			if len(st.Maint[c.Cluster]) == 0 {
				delete(st.Maint, c.Cluster)
			}
			return nil
		}
		if st.Maint == nil {
			st.Maint = map[string]map[string]Maintenance{}
		}
		if st.Maint[c.Cluster] == nil {
			st.Maint[c.Cluster] = map[string]Maintenance{}
		}
		st.Maint[c.Cluster][c.Server] = Maintenance{Since: c.At, Reason: c.Reason}
	}
	return nil
}

// pauseAt is the pause decision, a pure function of the replicated state
// and a clock: paused while a pause is recorded and its deadline (if any)
// is still ahead; expired once the deadline passed (the leader then
// commits its end, and acts as if it were gone meanwhile).
func pauseAt(st *fsmState, cluster string, now time.Time) (p Pause, paused, expired bool) {
	p, ok := st.Paused[cluster]
	if !ok {
		return Pause{}, false, false
	}
	if !p.Until.IsZero() && !now.Before(p.Until) {
		return p, false, true
	}
	return p, true, false
}

// maintenanceOf lists the servers of cluster in maintenance with their
// reasons (nil when none).
func maintenanceOf(st *fsmState, cluster string) map[string]string {
	m := st.Maint[cluster]
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for s, v := range m {
		out[s] = orText(v.Reason, "no reason given")
	}
	return out
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// leaseMaintReason bounds the reason a lease carries to agents: leases go
// out every probe and must stay small (one UDP packet).
const leaseMaintReason = 80

// leaseMaintenance is what a lease tells the agents about maintenance.
func leaseMaintenance(st *fsmState, cluster string) map[string]string {
	m := maintenanceOf(st, cluster)
	for s, r := range m {
		if len(r) > leaseMaintReason {
			m[s] = r[:leaseMaintReason]
		}
	}
	return m
}

// leadPaused is what the leader does for a paused cluster: it keeps the
// agreed primary's lease (the VIP stays where it is) and takes no other
// action; it says once why a dead primary is not failed over.
func (cm *clusterMon) leadPaused(snap *topology.Snapshot, v Verdict, st fsmState, p Pause) {
	name := cm.cfg.Spec.Name
	if agreed := st.Primary[name]; agreed != "" {
		cm.renewLease(snap, agreed, st.PrimEpoc[name])
		if cm.d.pub != nil {
			cm.d.pub.offer(name, publishedTopology(snap, agreed, cm.cfg.Policy.MaxLag))
		}
	}
	cm.mu.Lock()
	noted := cm.pauseNoted == v.State
	cm.pauseNoted = v.State
	cm.mu.Unlock()
	if !noted && v.State != StateHealthy {
		cm.d.log.Warn("the cluster is paused: no automatic action (failover, fencing, corrections); run myha resume to let the monitors act",
			"cluster", name, "state", v.State, "paused_since", p.Since, "until", untilText(p.Until), "reason", p.Reason)
	}
}

// endPause commits the end of a timed pause whose deadline passed.
func (cm *clusterMon) endPause(p Pause) {
	name := cm.cfg.Spec.Name
	if err := cm.d.apply(command{Op: "resume", Cluster: name, Pause: &p, At: cm.d.now()}); err != nil {
		cm.d.log.Warn("could not record the end of a timed pause (the leader acts as resumed anyway)", "cluster", name, "err", err)
		return
	}
	cm.d.log.Warn("timed pause ended: automatic actions resume", "cluster", name, "paused_since", p.Since, "until", p.Until, "reason", p.Reason)
}

func untilText(t time.Time) string {
	if t.IsZero() {
		return "myha resume"
	}
	return t.Format(time.RFC3339)
}

// operatorStatus adds the pause and maintenance to a cluster's API status.
func (cm *clusterMon) operatorStatus(out map[string]any, st *fsmState) {
	name := cm.cfg.Spec.Name
	if p, paused, _ := pauseAt(st, name, cm.d.now()); paused {
		v := map[string]any{"since": p.Since, "reason": p.Reason,
			"note": "no automatic failover, fencing or correction; manual failover and switchover still run"}
		if !p.Until.IsZero() {
			v["until"] = p.Until
		}
		out["paused"] = v
	}
	if m := st.Maint[name]; len(m) > 0 {
		out["maintenance"] = m
	}
}

// observeOperator exports the pause and maintenance as gauges.
func (cm *clusterMon) observeOperator(st *fsmState) {
	name := cm.cfg.Spec.Name
	_, paused, _ := pauseAt(st, name, cm.d.now())
	cm.d.met.paused.WithLabelValues(name).Set(b2f(paused))
	for _, s := range cm.cfg.Spec.Servers {
		_, in := st.Maint[name][s.Address]
		cm.d.met.maintenance.WithLabelValues(name, s.Address).Set(b2f(in))
	}
}

// sortedKeys returns a map's keys in order (stable output).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// policy is the cluster's failover policy with the servers in maintenance
// as they are now: the planner never chooses one.
func (cm *clusterMon) policy() failover.Policy {
	pol := cm.cfg.Policy
	pol.Maintenance = maintenanceOf(cm.d.fsm.operatorView(cm.cfg.Spec.Name), cm.cfg.Spec.Name)
	return pol
}

// maxPauseFor bounds --for: a longer pause is an indefinite one (myha
// pause without --for), which says so.
const maxPauseFor = 366 * 24 * time.Hour

// operatorAction runs pause, resume and maintenance on the leader.
func (d *Daemon) operatorAction(w http.ResponseWriter, r *http.Request, cm *clusterMon, action string) {
	name := cm.cfg.Spec.Name
	q := r.URL.Query()
	reason := q.Get("reason")
	if len(reason) > maxOperatorReason {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("reason: at most %d bytes", maxOperatorReason), nil, nil)
		return
	}
	now := d.now()
	switch action {
	case "pause":
		p := Pause{Since: now, Reason: reason}
		if f := q.Get("for"); f != "" {
			dur, err := time.ParseDuration(f)
			if err != nil || dur <= 0 || dur > maxPauseFor {
				writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("for=%q: a duration with a unit, more than 0 and at most %s (2h, 30m); leave it out to pause until myha resume", f, maxPauseFor), nil, nil)
				return
			}
			p.Until = now.Add(dur)
		}
		if err := d.apply(command{Op: "pause", Cluster: name, Pause: &p, At: now}); err != nil {
			writeError(w, http.StatusConflict, codeConflict, err.Error(), nil, nil)
			return
		}
		d.log.Warn("cluster paused by an operator: no automatic action until resumed", "cluster", name, "until", untilText(p.Until), "reason", reason)
		out := map[string]any{"cluster": name, "paused": true, "since": p.Since, "reason": reason,
			"note": "no automatic failover, fencing or correction; the agreed primary keeps the VIP; manual failover and switchover still run"}
		if !p.Until.IsZero() {
			out["until"] = p.Until
		}
		writeJSON(w, http.StatusOK, out)
	case "resume":
		if err := d.apply(command{Op: "resume", Cluster: name, At: now}); err != nil {
			writeError(w, http.StatusConflict, codeConflict, err.Error(), nil, nil)
			return
		}
		d.log.Warn("cluster resumed by an operator: automatic actions allowed again", "cluster", name)
		writeJSON(w, http.StatusOK, map[string]any{"cluster": name, "paused": false})
	case "maintenance":
		server := q.Get("server")
		known := false
		for _, s := range cm.cfg.Spec.Servers {
			known = known || s.Address == server
		}
		on := q.Get("state")
		switch {
		case !known:
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("server=%q is not a server of cluster %s (host:port as in the config)", server, name), nil, nil)
			return
		case on != "on" && on != "off":
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("state=%q: on or off", on), nil, nil)
			return
		}
		if err := d.apply(command{Op: "maintenance", Cluster: name, Server: server, On: on == "on", Reason: reason, At: now}); err != nil {
			writeError(w, http.StatusConflict, codeConflict, err.Error(), nil, nil)
			return
		}
		d.log.Warn("server maintenance changed by an operator", "cluster", name, "server", server, "maintenance", on, "reason", reason)
		writeJSON(w, http.StatusOK, map[string]any{"cluster": name, "server": server, "maintenance": on == "on", "reason": reason})
	}
}

// operatorChecks adds the cluster's pause and maintenance to its checks.
func (cm *clusterMon) operatorChecks(checks []failover.Check) []failover.Check {
	st := cm.d.fsm.operatorView(cm.cfg.Spec.Name)
	var pp *Pause
	if p, paused, _ := pauseAt(st, cm.cfg.Spec.Name, cm.d.now()); paused {
		pp = &p
	}
	return OperatorChecks(checks, pp, maintenanceOf(st, cm.cfg.Spec.Name))
}

// OperatorChecks shows an operator's pause and servers in maintenance in a
// check report: a pause is a warning (no automatic failover runs), a server
// in maintenance is shown and its own findings no longer count (they are
// kept, marked, so nothing is hidden).
func OperatorChecks(checks []failover.Check, paused *Pause, maint map[string]string) []failover.Check {
	out := make([]failover.Check, 0, len(checks)+1+len(maint))
	for _, c := range checks {
		if why, ok := maint[c.Server]; ok && c.Server != "" && c.Status != failover.OK {
			c.Message = fmt.Sprintf("(in maintenance: %s; not counted) %s: %s", why, c.Status, c.Message)
			c.Status = failover.OK
		}
		out = append(out, c)
	}
	if paused != nil {
		msg := "paused since " + paused.Since.Format(time.RFC3339) + " until " + untilText(paused.Until)
		if paused.Reason != "" {
			msg += " (" + paused.Reason + ")"
		}
		out = append(out, failover.Check{Name: "paused", Status: failover.Warn,
			Message: msg + ": no automatic failover, fencing or correction; manual failover and switchover still run",
			Fix:     "myha resume --cluster ... when the work is done"})
	}
	for _, s := range sortedKeys(maint) {
		out = append(out, failover.Check{Name: "maintenance", Server: s, Status: failover.OK,
			Message: "in maintenance (" + maint[s] + "): never chosen as new primary, out of the agents' /replica"})
	}
	return out
}

// operatorView is the pause and maintenance of one cluster, copied under
// the lock: cheap enough for every probe, unlike a whole snapshot (which
// carries the history).
func (f *fsm) operatorView(cluster string) *fsmState {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &fsmState{}
	if p, ok := f.st.Paused[cluster]; ok {
		out.Paused = map[string]Pause{cluster: p}
	}
	if m := f.st.Maint[cluster]; len(m) > 0 {
		cp := make(map[string]Maintenance, len(m))
		for s, v := range m {
			cp[s] = v
		}
		out.Maint = map[string]map[string]Maintenance{cluster: cp}
	}
	return out
}
