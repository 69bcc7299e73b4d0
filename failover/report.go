package failover

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Result is how a failover ended.
type Result string

// Results.
const (
	ResultSuccess    Result = "success"
	ResultPartial    Result = "partial"     // new primary writable, but some later step failed
	ResultFailed     Result = "failed"      // stopped at a safe point
	ResultRolledBack Result = "rolled_back" // switchover undone: old primary writable again
	ResultAborted    Result = "aborted"     // nothing changed (blocked, lock held, pre hook failed)
)

// StepResult is one executed step with its timing.
type StepResult struct {
	Step
	StartMS    float64 `json:"start_ms"` // since the failover started
	DurationMS float64 `json:"duration_ms"`
	Status     string  `json:"status"` // done, skipped, warning, failed
	Note       string  `json:"note,omitempty"`
}

// ServerSummary is a server's state after the run: who is writable, who
// replicates from whom.
type ServerSummary struct {
	Address    string `json:"address"`
	Reachable  bool   `json:"reachable"`
	Writable   bool   `json:"writable"`
	Source     string `json:"source,omitempty"`
	IORunning  bool   `json:"io_running"`
	SQLRunning bool   `json:"sql_running"`
	Position   string `json:"gtid_position,omitempty"`
	Note       string `json:"note,omitempty"`
}

// Report is the record of one failover or switchover: printed as a
// timeline, returned as JSON, appended to the history.
type Report struct {
	ID         string    `json:"id"`
	Epoch      int64     `json:"epoch"`
	Cluster    string    `json:"cluster"`
	Kind       Kind      `json:"kind"`
	OldPrimary string    `json:"old_primary"`
	NewPrimary string    `json:"new_primary"`
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
	Result     Result    `json:"result"`
	Promoted   bool      `json:"promoted"`
	// WritableAfterMS is the time from the start to the new primary taking writes.
	WritableAfterMS *float64 `json:"writable_after_ms"`
	// WriteBlockedMS is, for a switchover, read_only=1 on the old primary to
	// read_only=0 on the new one.
	WriteBlockedMS *float64        `json:"write_blocked_ms,omitempty"`
	Error          string          `json:"error,omitempty"`
	SafeStop       string          `json:"safe_stop,omitempty"`
	Steps          []StepResult    `json:"steps"`
	Warnings       []string        `json:"warnings"`
	FinalState     []ServerSummary `json:"final_state"`
}

func msSince(start, t time.Time) float64 { return float64(t.Sub(start).Microseconds()) / 1000 }

// WriteTimeline prints the report the way an operator reads it afterwards.
func (r *Report) WriteTimeline(w io.Writer) {
	fmt.Fprintf(w, "%s %s of cluster %s: %s → %s: %s in %s\n", strings.ToUpper(string(r.Kind[:1]))+string(r.Kind[1:]), r.ID, r.Cluster,
		r.OldPrimary, orNone(r.NewPrimary), strings.ToUpper(string(r.Result)), fmtMS(r.DurationMS))
	for _, s := range r.Steps {
		fmt.Fprintf(w, "  %9s %-21s %-22s %-8s %9s  %s\n", "+"+fmtMS(s.StartMS), s.Kind, s.Server, s.Status, fmtMS(s.DurationMS), s.Note)
	}
	if r.WritableAfterMS != nil {
		fmt.Fprintf(w, "  new primary writable %s after the failover started (detection time not included)\n", fmtMS(*r.WritableAfterMS))
	}
	if r.WriteBlockedMS != nil {
		fmt.Fprintf(w, "  writes were blocked for %s (read_only=1 on the old primary → read_only=0 on the new)\n", fmtMS(*r.WriteBlockedMS))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	if r.SafeStop != "" {
		fmt.Fprintf(w, "  stopped: %s\n", r.SafeStop)
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", wn)
	}
	if len(r.FinalState) > 0 {
		fmt.Fprintln(w, "  servers now:")
		for _, s := range r.FinalState {
			state := "UNREACHABLE"
			if s.Reachable {
				state = "read-only"
				if s.Writable {
					state = "WRITABLE"
				}
				if s.Source != "" {
					state += fmt.Sprintf(", replicates from %s (io:%v sql:%v)", s.Source, yn(s.IORunning), yn(s.SQLRunning))
				}
			}
			note := ""
			if s.Note != "" {
				note = " — " + s.Note
			}
			fmt.Fprintf(w, "    %-22s %s%s\n", s.Address, state, note)
		}
	}
}

func yn(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

func fmtMS(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.2fs", ms/1000)
	}
	return fmt.Sprintf("%.1fms", ms)
}
