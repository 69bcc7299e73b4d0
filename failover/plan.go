// Package failover decides and (in a later step) carries out a change of
// primary. The planner is a pure function from a topology snapshot and the
// cluster's policy to a Plan: `myha check`, `myha failover --dry-run`, the
// manual commands and the daemon all use it, so what check promises is what
// a failover does.
package failover

import (
	"time"
)

// Kind is the situation a plan is for.
type Kind string

// Plan kinds.
const (
	// KindFailover replaces a dead primary.
	KindFailover Kind = "failover"
	// KindSwitchover moves the primary role while the primary is healthy.
	KindSwitchover Kind = "switchover"
)

// Policy is the cluster's failover policy as plain values.
type Policy struct {
	MaxLag         time.Duration
	CatchupTimeout time.Duration
	// KillGrace is how long a switchover waits after read_only=1 before it
	// kills the sessions still writing.
	KillGrace time.Duration
	// VIP is the virtual address (CIDR) and its interface; empty for none.
	VIP, VIPInterface string
	// IPScript is set when an MHA-compatible IP script moves the address.
	IPScript bool
	// VIPByAgents is set when myha agents move the VIP under the monitors'
	// lease (vip.method: agent) rather than a script.
	VIPByAgents bool
	// MaxBacklog makes replicas with more than this many received-but-
	// unapplied (or missing) transactions ineligible: with the primary dead
	// Seconds_Behind_Master is NULL, so the backlog is judged by position.
	// 0 means no limit.
	MaxBacklog int64
	// SemiSync says whether the new primary switches the semi-sync primary
	// side on: "on", "off", or "" (auto: as the old primary had it when it
	// answers, else as the last snapshot in which it answered, else on when
	// the new primary's replica side was on).
	SemiSync string
	// Maintenance holds the servers an operator put in maintenance (myha
	// maintenance), with the reason: never chosen as the new primary,
	// still repointed to it like any replica.
	Maintenance map[string]string
}

// Request is what the operator (or the daemon) asks for.
type Request struct {
	Kind Kind
	// NewPrimary forces the choice; empty means the best eligible replica.
	NewPrimary string
	// Force fails over although the primary still answers (it is fenced first).
	Force bool
	// Hypothetical plans "if the primary died now" for myha check: the
	// primary's present health is ignored.
	Hypothetical bool
	// ReplicasConfirmed says the caller has established that the replicas
	// lost the primary (the daemon watches their heartbeats stop, which is
	// faster than their IO threads giving up); the "replicas still
	// replicate" blocker is then not applied.
	ReplicasConfirmed bool
	// AcceptLoss lets a failover proceed although transactions some replica
	// received would be lost (an operator's explicit decision; the daemon
	// never sets it).
	AcceptLoss bool
	// Captures are what the monitors' binlog captures hold (failover
	// only): transactions in them beyond the replicas are replayed to the
	// new primary before it is promoted.
	Captures []CaptureHold
	// PreviousAttempt is the server an earlier run of this failover chose
	// and stopped before promoting (from the journal): it may have been
	// pointed at a catch-up source, so it is planned as a replica of the
	// old primary again rather than left behind under that source.
	PreviousAttempt string
}

// StepKind names a step the executor knows how to run.
type StepKind string

// Step kinds, in the order they can appear.
const (
	StepFence        StepKind = "fence_old_primary"
	StepSetReadOnly  StepKind = "set_read_only"
	StepKillWriters  StepKind = "kill_writers"
	StepStopIO       StepKind = "stop_replication_io"
	StepWaitApplied  StepKind = "wait_relay_log"
	StepCatchUp      StepKind = "catch_up"
	StepWaitCaughtUp StepKind = "wait_caught_up"
	StepPromote      StepKind = "promote"
	StepRepoint      StepKind = "repoint"
	// StepAttach (switchover) points a replica at the new primary while it
	// is still read-only, once the replica has the old primary's final
	// position: replicas are attached before writes open, so no write is
	// acknowledged on a primary that has none.
	StepAttach StepKind = "attach_replica"
	// StepVerify checks, after promotion, that an attached replica runs
	// both threads against the new primary.
	StepVerify        StepKind = "verify_replica"
	StepDemote        StepKind = "demote_old_primary"
	StepMoveVIP       StepKind = "move_vip"
	StepStartSQL      StepKind = "start_sql_thread"
	StepKeepPairLink  StepKind = "keep_co_primary_link"
	StepRecordOutcome StepKind = "record"
)

// Step is one action of a plan, on one server.
type Step struct {
	Kind   StepKind `json:"kind"`
	Server string   `json:"server"`
	// Source is the server to replicate from (catch_up, repoint, demote).
	Source string `json:"source,omitempty"`
	// Target is the GTID position the step waits for, when known now.
	Target string `json:"target_position,omitempty"`
	// Group numbers steps that run in parallel; 0 runs alone.
	Group   int     `json:"group,omitempty"`
	Timeout float64 `json:"timeout_seconds,omitempty"`
	// Description says, in a DBA's words, what the step does and why.
	Description string `json:"description"`
}

// Candidate is the planner's verdict on one replica of the old primary.
type Candidate struct {
	Address  string   `json:"address"`
	Eligible bool     `json:"eligible"`
	Chosen   bool     `json:"chosen"`
	Rank     int      `json:"rank"` // 1 = most advanced; 0 when not ranked
	Received string   `json:"received_position"`
	Applied  string   `json:"applied_position"`
	Behind   int64    `json:"transactions_behind_most_advanced"`
	Reasons  []string `json:"reasons"` // why not eligible, or why not chosen
}

// Lost is a replica the failover cannot carry along.
type Lost struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// Loss estimates the transactions a failover would lose.
type Loss struct {
	// Count is nil when unknown (the dead primary's last position is unknown).
	Count       *int64 `json:"count"`
	Description string `json:"description"`
	// Received names the transactions that replicas received and the new
	// primary will not have, with who holds them. A plan with any needs
	// Request.AcceptLoss.
	Received []string `json:"received_lost,omitempty"`
}

// Plan is the whole decision: whom to promote, why, in which steps, and at
// what cost. A plan with blockers must not be executed.
type Plan struct {
	Cluster     string `json:"cluster"`
	Kind        Kind   `json:"kind"`
	OldPrimary  string `json:"old_primary"`
	NewPrimary  string `json:"new_primary"`
	Why         string `json:"why"`
	CatchUpFrom string `json:"catch_up_from,omitempty"`
	// Final is the position the new primary must hold before it is made
	// writable: the executor re-checks it and never promotes below it.
	Final            string      `json:"final_position,omitempty"`
	Candidates       []Candidate `json:"candidates"`
	Steps            []Step      `json:"steps"`
	LostReplicas     []Lost      `json:"lost_replicas"`
	LostTransactions Loss        `json:"lost_transactions"`
	Blockers         []string    `json:"blockers"`
	Warnings         []string    `json:"warnings"`
	// Resume is set when the plan finishes an interrupted failover whose
	// new primary was already promoted.
	Resume bool `json:"resume,omitempty"`
}

// OK reports whether the plan may be executed.
func (p *Plan) OK() bool { return len(p.Blockers) == 0 && p.NewPrimary != "" }
