package failover

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

// CaptureHold is what one monitor's binlog capture holds, as the caller
// learned it (the daemon asks every monitor's capture server): planner
// input, so the planner stays pure.
type CaptureHold struct {
	Monitor string `json:"monitor"`
	// Source is the capture server (host:port) a new primary replicates
	// from to replay what the capture holds.
	Source string `json:"source"`
	// Position is the capture's GTID position (MariaDB); empty with Error.
	Position string `json:"position,omitempty"`
	Error    string `json:"error,omitempty"`
}

// StepReplayCapture has the new primary replicate from a monitor's capture
// until it holds what the capture holds beyond the replicas. It runs after
// every catch-up and before promotion, on the chosen server only.
const StepReplayCapture StepKind = "replay_from_capture"

// captureReplay is the part of a plan that replays captured transactions.
type captureReplay struct {
	steps     []Step
	final     binlog.Position
	recovered int64
	from      []string // "N from monX"
}

// planCaptures decides which captures the new primary replicates from:
// those holding transactions beyond final (what the new primary will have
// from replicas), most first, skipping captures whose history diverged
// from the replicas'. Captures only matter for MariaDB (the capture speaks
// MariaDB's GTID protocol).
func planCaptures(p *Plan, chosen *replicaInfo, final binlog.Position, holds []CaptureHold, timeout float64) captureReplay {
	out := captureReplay{final: final}
	if final.Flavor != binlog.MariaDB || chosen.v.Dialect.Flavor != binlog.MariaDB {
		return out
	}
	type cand struct {
		h   CaptureHold
		pos binlog.Position
		n   int64
	}
	var cs []cand
	for _, h := range holds {
		if h.Error != "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("capture on %s could not be asked what it holds (%s): transactions only it acknowledged cannot be recovered", h.Monitor, h.Error))
			continue
		}
		pos, err := binlog.ParsePosition(binlog.MariaDB, h.Position)
		if err != nil {
			p.Warnings = append(p.Warnings, fmt.Sprintf("capture on %s reports an unreadable position %q: not used", h.Monitor, h.Position))
			continue
		}
		if diverged := divergedDomains(final, pos); len(diverged) > 0 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("capture on %s holds %s, which diverged from the replicas' %s (domains %s): not replayed", h.Monitor, pos, final, strings.Join(diverged, ",")))
			continue
		}
		if n := final.Missing(pos); n > 0 {
			cs = append(cs, cand{h, pos, n})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return int(b.n - a.n) })
	cur := final
	for _, c := range cs {
		n := cur.Missing(c.pos)
		if n == 0 {
			continue
		}
		cur = cur.Merge(c.pos)
		out.steps = append(out.steps, Step{Kind: StepReplayCapture, Server: chosen.v.Spec.Address, Source: c.h.Source, Target: cur.String(), Timeout: timeout,
			Description: fmt.Sprintf("replicate from the binlog capture on monitor %s (%s) until it has the %d transaction(s) only the capture holds (%s); the capture serves them to this server only", c.h.Monitor, c.h.Source, n, missingText(final, c.pos))})
		out.recovered += n
		out.from = append(out.from, fmt.Sprintf("%d from capture on %s", n, c.h.Monitor))
	}
	out.final = cur
	return out
}

// divergedDomains lists domains where the two positions hold the same
// seq_no from different servers.
func divergedDomains(a, b binlog.Position) []string {
	var out []string
	for _, r := range a.MariaDB.CompareDomains(b.MariaDB) {
		if r.Diverged {
			out = append(out, fmt.Sprint(r.Domain))
		}
	}
	return out
}

// captureLoss rewrites a dead primary's loss estimate once captures
// recover transactions.
func captureLoss(old *topology.ServerView, rec captureReplay, l Loss) Loss {
	if rec.recovered == 0 {
		return l
	}
	// A dead primary's semi-sync setting is remembered from its last
	// answer; whether it had fallen back to async is not (myha check's
	// capture check fails while it is).
	if old.SemiSync.SourceEnabled || old.SemiSync.SourceActive {
		zero := int64(0)
		return Loss{Count: &zero, Received: l.Received,
			Description: fmt.Sprintf("0 transactions lost (%d recovered: %s): semi-sync was on, so every acknowledged commit reached a replica or a capture, unless semi-sync had fallen back to async or a capture that acknowledged it is unreachable (see warnings)", rec.recovered, strings.Join(rec.from, ", "))}
	}
	l.Description = fmt.Sprintf("unknown: the primary is unreachable; %d transaction(s) recovered (%s), up to %s; semi-sync was not active, so whatever the primary committed after that is lost", rec.recovered, strings.Join(rec.from, ", "), rec.final)
	return l
}

// replayCapture has the new primary replicate from a capture server until
// it has applied the step's target, then stops that replication. The
// server's own IO and SQL threads do the work, so gtid_slave_pos advances
// per domain exactly as with any source. The CHANGE MASTER carries the
// cluster's TLS like every repoint: with a verified tls.mode the server
// connects with MASTER_SSL=1 and checks the capture's certificate against
// tls.ca_file (and its name under verify-full), and the capture server
// refuses it in plain text.
func (r *run) replayCapture(ctx context.Context, s Step) (string, error) {
	if s.Server != r.plan.NewPrimary {
		return "", fmt.Errorf("captured events go only to the server the plan promotes (%s), not %s", r.plan.NewPrimary, s.Server)
	}
	q, err := r.session(ctx, s.Server)
	if err != nil {
		return "", err
	}
	d, c := r.connName(s.Server)
	before, err := r.position(ctx, q, s.Server, "slave_pos")
	if err != nil {
		return "", err
	}
	host, port := splitHostPort(s.Source)
	if err := r.exec(ctx, q, d.StopReplica(c), d.ChangeSource(c, topology.Source{Host: host, Port: port, User: r.e.Repl.User, Password: r.e.Repl.Password, TLS: r.e.ReplTLS}), d.StartReplica(c)); err != nil {
		return "", err
	}
	if err := r.verifyReplicating(ctx, q, s.Server, s.Source); err != nil {
		_ = r.exec(ctx, q, d.StopReplica(c))
		return "", fmt.Errorf("replicating from the capture %s: %w", s.Source, err)
	}
	if err := r.waitGTID(ctx, q, s.Server, s.Target, r.e.Policy.CatchupTimeout); err != nil {
		_ = r.exec(ctx, q, d.StopReplica(c))
		return "", fmt.Errorf("replaying from the capture %s: %w", s.Source, err)
	}
	if err := r.exec(ctx, q, d.StopReplica(c)); err != nil {
		return "", err
	}
	n := int64(0)
	if b, err1 := binlog.ParsePosition(binlog.MariaDB, before); err1 == nil {
		if t, err2 := binlog.ParsePosition(binlog.MariaDB, s.Target); err2 == nil {
			n = b.Missing(t)
		}
	}
	return fmt.Sprintf("applied %d transaction(s) from the capture %s: now at %s", n, s.Source, s.Target), nil
}

// CaptureLagLimit is how many transactions a capture may trail the
// primary (as read a moment apart) before the capture check warns.
const CaptureLagLimit = 1000

// CaptureCheck judges the monitors' captures for myha check: a primary
// whose semi-sync fell back to async (captures stopped acknowledging)
// fails, because commits then return before any capture holds them; so
// does a cluster where no capture answers. A capture that is broken or
// trails the primary warns.
func CaptureCheck(snap *topology.Snapshot, holds []CaptureHold) []Check {
	var out []Check
	p, ok := snap.Server(snap.Primary)
	var prim binlog.Position
	if ok && p.Reachable {
		prim = p.ExecutedPosition()
		switch {
		case !p.SemiSync.SourceEnabled:
			out = append(out, Check{Name: "capture", Status: Warn, Server: p.Spec.Address,
				Message: "captures store the primary's binlog, but semi-sync is off on the primary: commits do not wait for a capture, so a lost host can lose the last ones",
				Fix:     "SET GLOBAL rpl_semi_sync_master_enabled=1 (and in my.cnf) on the primary; failover.semi_sync keeps it on the next primary"})
		case p.SemiSync.SourceClients == 0:
			// Seen on MariaDB 10.11: with no semi-sync client left,
			// Rpl_semi_sync_master_status stays ON and commits return at
			// once (counted as acknowledged), whatever wait_no_slave says.
			out = append(out, Check{Name: "capture", Status: Fail, Server: p.Spec.Address,
				Message: "semi-sync is on, but no capture (nor replica) is connected as a semi-sync client: commits return without waiting for anyone, so semi-sync has in effect fallen back to async",
				Fix:     "check the captures below (myha status, the monitors' logs: capture lines); commits wait again as soon as a capture reconnects"})
		case !p.SemiSync.SourceActive:
			out = append(out, Check{Name: "capture", Status: Fail, Server: p.Spec.Address,
				Message: fmt.Sprintf("semi-sync on the primary fell back to async (%d semi-sync client(s)): captures stopped acknowledging, so commits return before any capture holds them", p.SemiSync.SourceClients),
				Fix:     "check the captures below (myha status, the monitors' logs: capture lines); semi-sync switches back on by itself once a capture catches up"})
		}
	}
	answered := 0
	for _, h := range holds {
		if h.Error != "" {
			out = append(out, Check{Name: "capture", Status: Warn, Server: h.Source,
				Message: fmt.Sprintf("capture on %s does not answer: %s", h.Monitor, h.Error),
				Fix:     "start myha daemon on " + h.Monitor + " and check that its capture port is reachable from the servers and monitors"})
			continue
		}
		answered++
		pos, err := binlog.ParsePosition(binlog.MariaDB, h.Position)
		if err != nil || prim.Flavor != binlog.MariaDB {
			continue
		}
		if n := pos.Missing(prim); n > CaptureLagLimit {
			out = append(out, Check{Name: "capture", Status: Warn, Server: h.Source,
				Message: fmt.Sprintf("capture on %s holds %s, %d transaction(s) behind the primary's %s", h.Monitor, orNone(h.Position), n, prim),
				Fix:     "see the monitor's log for capture errors; a capture that cannot follow restarts from the primary's position and counts a gap (myha_capture_gaps_total)"})
		}
	}
	if len(holds) > 0 && answered == 0 {
		out = append(out, Check{Name: "capture", Status: Fail, Message: "no monitor's capture answers: a failover cannot recover what no replica received",
			Fix: "start myha daemon on the monitors; check capture.port is open"})
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "capture", Status: OK, Message: fmt.Sprintf("%d capture(s) answer and follow the primary; semi-sync waits for them", answered)})
	}
	return out
}
