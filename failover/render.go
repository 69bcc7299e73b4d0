package failover

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints a plan the way an operator reads it before saying yes.
func (p *Plan) WriteText(w io.Writer) {
	title := map[Kind]string{KindFailover: "Failover plan", KindSwitchover: "Switchover plan"}[p.Kind]
	fmt.Fprintf(w, "%s for cluster %s\n", title, p.Cluster)
	if p.OldPrimary != "" {
		fmt.Fprintf(w, "  old primary: %s\n", p.OldPrimary)
	}
	if p.NewPrimary != "" {
		fmt.Fprintf(w, "  new primary: %s (%s)\n", p.NewPrimary, p.Why)
	}
	if len(p.Blockers) > 0 {
		fmt.Fprintln(w, "  BLOCKED: it would not run:")
		for _, b := range p.Blockers {
			fmt.Fprintf(w, "    ✗ %s\n", b)
		}
	}
	if len(p.Candidates) > 0 {
		fmt.Fprintln(w, "  replicas, most advanced first:")
		for _, c := range p.Candidates {
			mark := " "
			if c.Chosen {
				mark = "→"
			}
			state := "eligible"
			if !c.Eligible {
				state = "NOT eligible"
			}
			fmt.Fprintf(w, "   %s %d. %s  received %s  applied %s  behind %d  %s", mark, c.Rank, c.Address, orNone(c.Received), orNone(c.Applied), c.Behind, state)
			if len(c.Reasons) > 0 {
				fmt.Fprintf(w, ": %s", strings.Join(c.Reasons, "; "))
			}
			fmt.Fprintln(w)
		}
	}
	if len(p.Steps) > 0 {
		fmt.Fprintln(w, "  steps:")
		for i, s := range p.Steps {
			par := ""
			if s.Group > 0 {
				par = fmt.Sprintf(" [parallel group %d]", s.Group)
			}
			fmt.Fprintf(w, "    %2d. %-20s %s%s: %s\n", i+1, s.Kind, s.Server, par, s.Description)
		}
	}
	if len(p.LostReplicas) > 0 {
		fmt.Fprintln(w, "  replicas left behind:")
		for _, l := range p.LostReplicas {
			fmt.Fprintf(w, "    - %s: %s\n", l.Address, l.Reason)
		}
	}
	if p.LostTransactions.Description != "" {
		fmt.Fprintf(w, "  transactions lost: %s\n", p.LostTransactions.Description)
	}
	for _, wn := range p.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", wn)
	}
}
