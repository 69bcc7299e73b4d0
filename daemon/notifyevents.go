package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/myha/myha/failover"
)

// Event kinds: every state change the leader notifies.
const (
	EventPrimarySuspect     = "primary_suspect"
	EventPrimaryDead        = "primary_dead"
	EventPrimaryState       = "primary_state" // another detector verdict (no quorum, unreachable, ...)
	EventPrimaryHealthy     = "primary_healthy"
	EventFailoverStarted    = "failover_started"
	EventFailoverBlocked    = "failover_blocked"
	EventFailoverFinished   = "failover_finished"
	EventSwitchoverStarted  = "switchover_started"
	EventSwitchoverBlocked  = "switchover_blocked"
	EventSwitchoverFinished = "switchover_finished"
	EventLeaseMoved         = "lease_moved" // the VIP lease names a new holder
)

// Event is one state change as notified (webhook body, the page's live
// stream). Only the leader emits events, so each change is notified once
// while leadership is stable.
type Event struct {
	Seq        uint64           `json:"seq"`
	Kind       string           `json:"kind"`
	Cluster    string           `json:"cluster"`
	At         time.Time        `json:"at"`
	Monitor    string           `json:"monitor"`
	Message    string           `json:"message"`
	State      string           `json:"state,omitempty"`
	Primary    string           `json:"primary,omitempty"`
	OldPrimary string           `json:"old_primary,omitempty"`
	NewPrimary string           `json:"new_primary,omitempty"`
	Epoch      int64            `json:"epoch,omitempty"`
	Auto       bool             `json:"auto,omitempty"`
	Result     string           `json:"result,omitempty"`
	Reasons    []string         `json:"reasons,omitempty"`
	Blockers   []string         `json:"blockers,omitempty"`
	From       string           `json:"from,omitempty"` // lease_moved: the previous holder
	To         string           `json:"to,omitempty"`   // lease_moved: the new holder
	Report     *failover.Report `json:"report,omitempty"`
}

// report reports whether the event ends a failover or switchover: the
// moment MHA runs its report_script.
func (e Event) report() bool {
	return e.Kind == EventFailoverFinished || e.Kind == EventSwitchoverFinished
}

// recentEvents is how many events the page's live stream shows.
const recentEvents = 50

// eventLog numbers events and keeps the recent ones for the page.
type eventLog struct {
	mu     sync.Mutex
	seq    uint64
	recent []Event
	// last is, per cluster and kind family, the key of the last event
	// emitted: repeated blocked refusals are notified once.
	last map[string]string
}

// emit records an event and hands it to the notifier. It never blocks.
func (d *Daemon) emit(ev Event) {
	d.events.mu.Lock()
	d.events.seq++
	ev.Seq, ev.At, ev.Monitor = d.events.seq, d.now(), d.self.Name
	d.events.recent = append(d.events.recent, ev)
	if len(d.events.recent) > recentEvents {
		d.events.recent = d.events.recent[len(d.events.recent)-recentEvents:]
	}
	d.events.mu.Unlock()
	d.log.Info("event", "kind", ev.Kind, "cluster", ev.Cluster, "seq", ev.Seq, "message", ev.Message)
	if d.notify != nil {
		d.notify.offer(ev)
	}
}

// resetOnce forgets the last key of a family, so its next event is
// emitted whatever it says.
func (d *Daemon) resetOnce(cluster, family string) {
	d.events.mu.Lock()
	delete(d.events.last, cluster+"|"+family)
	d.events.mu.Unlock()
}

// emitOnce emits ev unless the last event of its family for its cluster
// had the same key (a refusal repeated at every probe is notified once);
// an empty key always emits and resets the family.
func (d *Daemon) emitOnce(family, key string, ev Event) {
	d.events.mu.Lock()
	if d.events.last == nil {
		d.events.last = map[string]string{}
	}
	k := ev.Cluster + "|" + family
	same := key != "" && d.events.last[k] == key
	d.events.last[k] = key
	d.events.mu.Unlock()
	if !same {
		d.emit(ev)
	}
}

// eventsSeq and recentEventsCopy feed the page's live stream.
func (d *Daemon) eventsSeq() uint64 {
	d.events.mu.Lock()
	defer d.events.mu.Unlock()
	return d.events.seq
}

func (d *Daemon) recentEventsCopy() []Event {
	d.events.mu.Lock()
	defer d.events.mu.Unlock()
	return append([]Event{}, d.events.recent...)
}

// verdictEvent is the event for a new detector verdict.
func verdictEvent(cluster, primary string, v Verdict) Event {
	ev := Event{Cluster: cluster, Primary: primary, State: string(v.State), Reasons: v.Reasons}
	switch v.State {
	case StateSuspect:
		ev.Kind, ev.Message = EventPrimarySuspect, fmt.Sprintf("primary %s is failing its probes", primary)
	case StateDead:
		ev.Kind, ev.Message = EventPrimaryDead, fmt.Sprintf("primary %s is dead (confirmed by %d monitors and the replicas)", primary, v.Votes)
	case StateHealthy:
		ev.Kind, ev.Message = EventPrimaryHealthy, fmt.Sprintf("primary %s is healthy", primary)
	default:
		ev.Kind, ev.Message = EventPrimaryState, fmt.Sprintf("primary %s: %s", primary, v.State)
	}
	return ev
}

// finishedEvent is the event for a failover's or switchover's report.
func finishedEvent(rep *failover.Report, auto bool) Event {
	kind := EventFailoverFinished
	if rep.Kind == failover.KindSwitchover {
		kind = EventSwitchoverFinished
	}
	msg := fmt.Sprintf("%s of %s %s: %s → %s", rep.Kind, rep.Cluster, rep.Result, rep.OldPrimary, rep.NewPrimary)
	if rep.Error != "" {
		msg += ": " + rep.Error
	}
	return Event{Kind: kind, Cluster: rep.Cluster, OldPrimary: rep.OldPrimary, NewPrimary: rep.NewPrimary, Epoch: rep.Epoch,
		Auto: auto, Result: string(rep.Result), Message: msg, Report: rep}
}

// runReport runs the report script with MHA's report_script arguments.
// Its failure is logged; nothing waits on it but later notifications.
func (n *notifier) runReport(ctx context.Context, ev Event) {
	args := reportArgs(ev)
	run := n.script
	if run == nil {
		run = reportScript
	}
	rctx, cancel := context.WithTimeout(ctx, n.cfg.ReportTimeout)
	defer cancel()
	if err := run(rctx, n.cfg.ReportScript, args); err != nil {
		n.log.Warn("notify.report_script failed", "script", n.cfg.ReportScript, "kind", ev.Kind, "cluster", ev.Cluster, "err", err)
	}
}

// reportArgs are MHA's report_script arguments for a finished failover or
// switchover: hosts without ports, as MHA passes them.
func reportArgs(ev Event) []string {
	var slaves []string
	if ev.Report != nil {
		for _, s := range ev.Report.FinalState {
			if s.Source == ev.NewPrimary && ev.NewPrimary != "" {
				slaves = append(slaves, hostOnly(s.Address))
			}
		}
	}
	what := "Master failover"
	if ev.Kind == EventSwitchoverFinished {
		what = "Master switchover"
	}
	outcome := "succeeded"
	if ev.Result != string(failover.ResultSuccess) {
		outcome = "failed (" + ev.Result + ")"
	}
	subject := fmt.Sprintf("%s to %s %s (cluster %s)", what, ev.NewPrimary, outcome, ev.Cluster)
	var body bytes.Buffer
	if ev.Report != nil {
		ev.Report.WriteTimeline(&body)
	} else {
		body.WriteString(ev.Message)
	}
	return []string{"--orig_master_host=" + hostOnly(ev.OldPrimary), "--new_master_host=" + hostOnly(ev.NewPrimary),
		"--new_slave_hosts=" + strings.Join(slaves, ","), "--subject=" + subject, "--body=" + body.String()}
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// reportScript runs the script with only PATH in its environment (the
// daemon's may hold passwords), output kept for the log.
func reportScript(ctx context.Context, path string, args []string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		s := strings.TrimSpace(out.String())
		if len(s) > 300 {
			s = s[len(s)-300:]
		}
		return fmt.Errorf("%v: %s", err, s)
	}
	return nil
}
