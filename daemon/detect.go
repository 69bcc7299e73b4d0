// Package daemon is `myha daemon`: monitors that probe every server, gossip
// what they see (hashicorp/memberlist), elect one leader (hashicorp/raft),
// agree by quorum that a primary is dead, and let only the leader fail over,
// with the shared planner and executor.
package daemon

import (
	"fmt"
	"strings"
	"time"

	"github.com/myha/myha/failover"
)

// State is a cluster's health as the detector judges it.
type State string

// Detector states. Only StateDead leads to a failover.
const (
	StateHealthy     State = "healthy"
	StateSuspect     State = "suspect"                // own probes fail, not yet long enough
	StateNoQuorum    State = "primary_down_no_quorum" // fewer than a majority of monitors see it down
	StateUnreachable State = "unreachable_primary"    // replicas still replicate: a network problem
	StateAllDown     State = "primary_and_replicas_unreachable"
	// StateNoServerMajority: the primary looks dead, but too few of the
	// cluster's servers are reachable and free of it to promote safely
	// (the server-majority rule: see ServerMajority).
	StateNoServerMajority State = "primary_down_no_server_majority"
	StateNoPrimary        State = "no_primary"
	StateDead             State = "dead_primary"
)

// PeerView is another monitor's latest observation of the primary, with its
// age measured on that monitor's clock plus transit.
type PeerView struct {
	Monitor   string
	Reachable bool
	DownFor   time.Duration
	Age       time.Duration
}

// ReplicaView is what this monitor sees of one replica of the primary.
type ReplicaView struct {
	Address   string
	Reachable bool
	IORunning bool
	// SilentFor is how long the replica has received nothing (no event, no
	// heartbeat) from the primary.
	SilentFor time.Duration
	// HeartbeatPeriod is the replica's own MASTER_HEARTBEAT_PERIOD
	// (Slave_heartbeat_period); 0 when the server does not report it.
	HeartbeatPeriod time.Duration
	// NotReplica marks a configured server that does not replicate from
	// the primary at all (another source, or none): it cannot be keeping
	// the old primary's failsafe majority.
	NotReplica bool
}

// DetectInput is everything a verdict depends on.
type DetectInput struct {
	Primary  string
	Monitors int // configured monitors, this one included
	// Servers is how many servers the cluster's config lists, the primary
	// included (0: the primary plus Replicas, for tests). Replicas should
	// then hold every other configured server.
	Servers      int
	OwnReachable bool
	OwnFailures  int           // consecutive failed probes
	OwnDownFor   time.Duration // since the first of them
	Peers        []PeerView
	Replicas     []ReplicaView
	DownAfter    time.Duration // the primary must be down this long
	Freshness    time.Duration // peer observations older than this do not count
	// MinSilence is the shortest silence that can count as losing the
	// primary, whatever the heartbeat period (the probe granularity).
	MinSilence time.Duration
}

// Verdict is the detector's judgement with its reasons, in words.
type Verdict struct {
	State   State    `json:"state"`
	Votes   int      `json:"monitors_seeing_it_down"`
	Needed  int      `json:"monitors_needed"`
	Reasons []string `json:"reasons"`
	// Warnings are configuration problems that slow or prevent detection,
	// whatever the state (a replica heartbeat too long for down_after).
	Warnings []string `json:"warnings,omitempty"`
}

// silenceMargin is added to one and a half heartbeat periods before a
// silent replica counts as having lost its primary: network jitter and the
// time between reading the replica and judging.
const silenceMargin = 250 * time.Millisecond

// SilenceLimit is how long a replica with this heartbeat period must have
// received nothing before its silence proves it lost the primary: a
// primary with nothing to send sends a heartbeat every period, so 1.5
// periods plus a margin, and never less than minSilence. A replica whose
// period is unknown (0) never proves anything by silence; only its IO
// thread giving up does.
func SilenceLimit(heartbeat, minSilence time.Duration) (time.Duration, bool) {
	if heartbeat <= 0 {
		return 0, false
	}
	return max(heartbeat*3/2+silenceMargin, minSilence), true
}

// heartbeatWarnings names replicas whose heartbeat period is too long for
// down_after: their silence cannot confirm a dead primary before their IO
// thread gives up (slave_net_timeout), so a cut primary is confirmed late
// or never.
func heartbeatWarnings(in DetectInput) []string {
	var out []string
	for _, r := range in.Replicas {
		if !r.Reachable {
			continue
		}
		lim, ok := SilenceLimit(r.HeartbeatPeriod, in.MinSilence)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s reports no heartbeat period: its silence cannot confirm a dead primary (CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=1)", r.Address))
		case lim > 2*max(in.DownAfter, time.Second):
			out = append(out, fmt.Sprintf("%s has MASTER_HEARTBEAT_PERIOD=%s: its silence confirms a lost primary only after %s, much longer than failover.down_after=%s (CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=1)",
				r.Address, r.HeartbeatPeriod, lim.Round(time.Millisecond), in.DownAfter))
		}
	}
	return out
}

// ServerMajority is the number of servers that must agree for one side of
// any partition to hold writes: a strict majority of the cluster's
// configured servers. The old primary's agent keeps it writable without a
// lease only while it plus the servers following it reach this number
// (Agent, failsafe); the monitors promote only when this many servers
// other than the old primary are reachable and none of them follows it.
// The two sets are disjoint, so both can never reach a strict majority.
func ServerMajority(servers int) int { return servers/2 + 1 }

// following reports whether this replica still counts as following the
// primary: its IO thread is connected and it has not been silent for longer
// than its own heartbeat period allows. The agent of the primary counts
// its followers with the same definition.
func following(ioRunning bool, silent, heartbeat, minSilence time.Duration) bool {
	if !ioRunning {
		return false
	}
	lim, ok := SilenceLimit(heartbeat, minSilence)
	return !ok || silent <= lim
}

// ServerMajorityCheck is the check that says what the server-majority rule
// costs for a cluster of n servers.
func ServerMajorityCheck(n int) failover.Check {
	need := ServerMajority(n)
	switch {
	case n <= 2:
		return failover.Check{Name: "server_majority", Status: failover.Warn,
			Message: fmt.Sprintf("%d server(s): a promotion needs %d servers other than the dead primary reachable and free of it, which a cluster of %d never has: the daemon never fails over automatically (myha failover by hand still works)", n, need, n),
			Fix:     "add a third server; a small replica with no_master: true is enough, it counts in the majority"}
	case need == n-1:
		return failover.Check{Name: "server_majority", Status: failover.OK,
			Message: fmt.Sprintf("%d servers: automatic failover needs %d of them besides the dead primary, i.e. every replica reachable; a dead primary together with a dead replica waits for a DBA (myha failover)", n, need)}
	}
	return failover.Check{Name: "server_majority", Status: failover.OK,
		Message: fmt.Sprintf("%d servers: automatic failover needs %d of them besides the dead primary reachable and not following it", n, need)}
}

// minFailures is how many consecutive probes must fail, however fast.
const minFailures = 2

// Detect decides whether the primary is dead. A primary is declared dead
// only when all hold: this monitor's probes failed repeatedly for at least
// DownAfter; a strict majority of all configured monitors has fresh
// observations that it is unreachable; every reachable replica has lost
// it (IO thread not connected, or nothing received for longer than its own
// heartbeat period allows: SilenceLimit); and a strict majority of the
// cluster's configured servers (ServerMajority), not counting the primary,
// is reachable from here and free of it. When in doubt it says so and does
// not declare the primary dead.
func Detect(in DetectInput) Verdict {
	v := Verdict{Needed: in.Monitors/2 + 1, Warnings: heartbeatWarnings(in)}
	if in.Primary == "" {
		v.State = StateNoPrimary
		v.Reasons = []string{"no primary identified"}
		return v
	}
	if in.OwnReachable {
		v.State = StateHealthy
		return v
	}
	if in.OwnFailures < minFailures || in.OwnDownFor < in.DownAfter {
		v.State = StateSuspect
		v.Reasons = []string{fmt.Sprintf("%d failed probe(s) over %s; failing over needs %d over at least %s (failover.down_after)",
			in.OwnFailures, in.OwnDownFor.Round(time.Millisecond), minFailures, in.DownAfter)}
		return v
	}
	v.Votes = 1
	var stale, up []string
	for _, p := range in.Peers {
		switch {
		case p.Age > in.Freshness:
			stale = append(stale, p.Monitor)
		case p.Reachable:
			up = append(up, p.Monitor)
		default:
			v.Votes++
		}
	}
	if v.Votes < v.Needed {
		v.State = StateNoQuorum
		v.Reasons = append(v.Reasons, fmt.Sprintf("only %d of %d monitors see %s down; %d needed", v.Votes, in.Monitors, in.Primary, v.Needed))
		if len(up) > 0 {
			v.Reasons = append(v.Reasons, "reachable from "+strings.Join(up, ", "))
		}
		if len(stale) > 0 {
			v.Reasons = append(v.Reasons, "no fresh word from "+strings.Join(stale, ", "))
		}
		return v
	}
	servers := in.Servers
	if servers == 0 {
		servers = len(in.Replicas) + 1
	}
	need := ServerMajority(servers)
	reachable, free := 0, 0
	var still, gone []string
	for _, r := range in.Replicas {
		if !r.Reachable {
			gone = append(gone, r.Address)
			continue
		}
		reachable++
		// Connected and not silent for longer than its own heartbeat
		// period allows (without a known period, silence proves nothing):
		// it still follows the primary.
		if !r.NotReplica && following(r.IORunning, r.SilentFor, r.HeartbeatPeriod, in.MinSilence) {
			still = append(still, r.Address)
			continue
		}
		free++
	}
	switch {
	case reachable == 0:
		v.State = StateAllDown
		v.Reasons = append(v.Reasons, fmt.Sprintf("%s and all its replicas are unreachable: no failover (this monitor group may be cut off)", in.Primary))
	case len(still) > 0:
		v.State = StateUnreachable
		v.Reasons = append(v.Reasons, fmt.Sprintf("%s is unreachable from the monitors, but %s still replicate from it: no failover", in.Primary, strings.Join(still, ", ")))
	case free < need:
		// The server-majority rule: with fewer servers on our side, the
		// old primary may still have a majority of its own (it plus the
		// servers we cannot see), and its agent keeps it writable.
		v.State = StateNoServerMajority
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d of %d monitors see %s down, but only %d of the cluster's %d servers are reachable and free of it; promoting needs %d (server-majority rule: otherwise the old primary could still hold a majority and stay writable): no automatic failover",
			v.Votes, in.Monitors, in.Primary, free, servers, need))
		if len(gone) > 0 {
			v.Reasons = append(v.Reasons, "unreachable: "+strings.Join(gone, ", ")+"; if they are really dead, a DBA can run myha failover")
		}
		if servers <= 2 {
			v.Reasons = append(v.Reasons, "a cluster of 2 servers never fails over automatically: add a third (no_master: true is enough)")
		}
	default:
		v.State = StateDead
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d of %d monitors see %s down for %s and %d of the cluster's %d servers are reachable and free of it (%d needed)",
			v.Votes, in.Monitors, in.Primary, in.OwnDownFor.Round(time.Millisecond), free, servers, need))
	}
	return v
}
