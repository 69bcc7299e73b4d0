package lab

import (
	"context"
	"fmt"
)

// Real partitions drop packets; they do not take links down. These helpers
// drop packets with nftables inside the host's namespace, in a table of
// their own (inet myha_part), so they never touch anything else.

const nftTable = "myha_part"

// ensureTable makes the table with an input and an output chain.
func (h *Host) ensureTable(ctx context.Context) error {
	if h.NS == "" {
		return ErrNoNamespaces
	}
	for _, args := range [][]string{
		{"add", "table", "inet", nftTable},
		{"add", "chain", "inet", nftTable, "in", "{ type filter hook input priority 0; }"},
		{"add", "chain", "inet", nftTable, "out", "{ type filter hook output priority 0; }"},
	} {
		if err := run(ctx, "ip", append([]string{"netns", "exec", h.NS, "nft"}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// DropFrom drops every packet between this host and the others, both
// directions: neither side hears the other, as in a real partition.
func (h *Host) DropFrom(ctx context.Context, other ...*Host) error {
	if err := h.DropIncomingFrom(ctx, other...); err != nil {
		return err
	}
	return h.DropOutgoingTo(ctx, other...)
}

// DropIncomingFrom drops packets the others send to this host (one way:
// this host still reaches them, but their answers are lost too, so TCP
// to them stalls while UDP from this host arrives).
func (h *Host) DropIncomingFrom(ctx context.Context, other ...*Host) error {
	return h.addRules(ctx, "in", "saddr", other)
}

// DropOutgoingTo drops packets this host sends to the others (one way).
func (h *Host) DropOutgoingTo(ctx context.Context, other ...*Host) error {
	return h.addRules(ctx, "out", "daddr", other)
}

func (h *Host) addRules(ctx context.Context, chain, field string, other []*Host) error {
	if err := h.ensureTable(ctx); err != nil {
		return err
	}
	for _, o := range other {
		if err := run(ctx, "ip", "netns", "exec", h.NS, "nft", "add", "rule", "inet", nftTable, chain, "ip", field, o.IP, "drop"); err != nil {
			return fmt.Errorf("lab: drop %s %s on %s: %w", field, o.IP, h.Name, err)
		}
	}
	return nil
}

// HealDrops removes every drop rule DropFrom, DropIncomingFrom and
// DropOutgoingTo added on this host.
func (h *Host) HealDrops(ctx context.Context) error {
	if h.NS == "" {
		return ErrNoNamespaces
	}
	if err := h.ensureTable(ctx); err != nil {
		return err
	}
	return run(ctx, "ip", "netns", "exec", h.NS, "nft", "delete", "table", "inet", nftTable)
}
