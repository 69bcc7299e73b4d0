package failover

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/myha/myha/topology"
)

// RejoinStep is one step of a rejoin as it ran.
type RejoinStep struct {
	Name       string  `json:"name"`
	DurationMS float64 `json:"duration_ms"`
	Detail     string  `json:"detail,omitempty"`
	Err        string  `json:"error,omitempty"`
}

// RejoinReport is what a rejoin did, step by step; Done is set when the
// server replicates from the primary with both threads running.
type RejoinReport struct {
	Plan  RejoinPlan   `json:"plan"`
	Steps []RejoinStep `json:"steps"`
	Done  bool         `json:"done"`
	// StoppedAt names the step a failed rejoin stopped at; every step
	// before it is safe to leave as is (the server read-only at worst).
	StoppedAt string `json:"stopped_at,omitempty"`
}

// RejoinOptions are the imperative inputs of ExecuteRejoin.
type RejoinOptions struct {
	Dialer  topology.Dialer
	Spec    topology.ClusterSpec
	Repl    topology.Credentials // the account the server replicates with
	Timeout time.Duration        // for replication to start (default 15s)
}

// ExecuteRejoin carries out a rejoin plan without blockers: under the
// cluster's failover lock on the server, read_only=1; then, on a fresh
// reading of both servers (a writable stray may have taken writes since
// the plan), the errant test again; then the repoint, and a bounded wait
// for both replication threads. It stops at the first problem, saying
// where, and never makes anything writable.
func ExecuteRejoin(ctx context.Context, o RejoinOptions, plan RejoinPlan) RejoinReport {
	rep := RejoinReport{Plan: plan}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	step := func(name string, f func() (string, error)) bool {
		start := time.Now()
		detail, err := f()
		s := RejoinStep{Name: name, DurationMS: float64(time.Since(start).Microseconds()) / 1000, Detail: detail}
		if err != nil {
			s.Err = err.Error()
			rep.StoppedAt = name
		}
		rep.Steps = append(rep.Steps, s)
		return err == nil
	}
	spec := func(addr string) topology.ServerSpec {
		for _, s := range o.Spec.Servers {
			if s.Address == addr {
				return s
			}
		}
		return topology.ServerSpec{Address: addr}
	}
	var q topology.Querier
	var d topology.Dialect
	if !step("lock", func() (string, error) {
		st := topology.Probe(ctx, o.Dialer, spec(plan.Server))
		if !st.Reachable {
			return "", fmt.Errorf("cannot reach %s: %s", plan.Server, st.Error)
		}
		d = st.Dialect
		var err error
		if q, err = o.Dialer.Dial(ctx, plan.Server); err != nil {
			return "", err
		}
		rows, err := q.Query(ctx, d.GetLock(LockName(plan.Cluster)))
		if err != nil {
			return "", err
		}
		if len(rows) != 1 || rows[0]["r"] != "1" {
			return "", fmt.Errorf("the failover lock %s is held on %s: a failover or switchover is running; try again when it ends", LockName(plan.Cluster), plan.Server)
		}
		return LockName(plan.Cluster) + " held on " + plan.Server, nil
	}) {
		if q != nil {
			q.Close()
		}
		return rep
	}
	defer q.Close()
	if !step("fence", func() (string, error) {
		for _, s := range d.SetReadOnly(true) {
			if err := q.Exec(ctx, s); err != nil {
				return "", err
			}
		}
		return "read_only=1 on " + plan.Server, nil
	}) {
		return rep
	}
	var primary topology.ServerState
	if !step("recheck", func() (string, error) {
		v := topology.Probe(ctx, o.Dialer, spec(plan.Server))
		primary = topology.Probe(ctx, o.Dialer, spec(plan.Primary))
		if !v.Reachable || !primary.Reachable {
			return "", fmt.Errorf("lost %s or %s between the plan and the repoint", plan.Server, plan.Primary)
		}
		if primary.ReadOnly || primary.SuperReadOnly {
			return "", fmt.Errorf("%s is no longer writable: the primary changed; run myha rejoin again", plan.Primary)
		}
		vv, pv := topology.ServerView{ServerState: v}, topology.ServerView{ServerState: primary}
		if errant := ErrantAgainst(&vv, &pv); len(errant) > 0 {
			return "", fmt.Errorf("%s took writes %s never had before it was fenced: %s (left read-only, not repointed)", plan.Server, plan.Primary, strings.Join(errant, ", "))
		}
		return "nothing on " + plan.Server + " that " + plan.Primary + " lacks", nil
	}) {
		return rep
	}
	if !step("repoint", func() (string, error) {
		host, port := splitHostPort(plan.Primary)
		for _, s := range d.Repoint("", topology.Source{Host: host, Port: port, User: o.Repl.User, Password: o.Repl.Password, Demote: true}) {
			if err := q.Exec(ctx, s); err != nil {
				return "", fmt.Errorf("%s: %v", firstWords(s), err)
			}
		}
		return "replicating from " + plan.Primary, nil
	}) {
		return rep
	}
	rep.Done = step("verify", func() (string, error) {
		deadline := time.Now().Add(o.Timeout)
		for {
			v := topology.Probe(ctx, o.Dialer, spec(plan.Server))
			if c, ok := v.PrimaryConn(); ok && v.Reachable {
				if c.IORunning() && c.SQLRunning {
					return "io:Yes sql:Yes from " + c.Source(), nil
				}
				if c.LastIOErrno != 0 || c.LastSQLErrno != 0 {
					return "", fmt.Errorf("replication stopped: io error %d %s; sql error %d %s", c.LastIOErrno, c.LastIOError, c.LastSQLErrno, c.LastSQLError)
				}
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("replication threads not both running after %s", o.Timeout)
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(100 * time.Millisecond): // polling the server's state, bounded by the deadline
			}
		}
	})
	return rep
}

// firstWords names a statement in an error without its literals (a
// CHANGE MASTER carries the replication password).
func firstWords(stmt string) string {
	f := strings.Fields(stmt)
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, " ")
}
