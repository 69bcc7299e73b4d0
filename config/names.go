package config

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Lookup resolves a host name to its addresses; net.DefaultResolver's
// LookupNetIP in production.
type Lookup func(ctx context.Context, host string) ([]netip.Addr, error)

// DefaultLookup resolves with the system's resolver.
func DefaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// hostEntry is one configured host:port, with the key that names it.
type hostEntry struct {
	key, host string
	port      int
	group     string // entries of one group may share an address (one monitor's ports differ anyway)
}

// CheckNames resolves every host name in the config (each lookup bounded
// by timeout, all at once) and reports, as errors naming both entries,
// what Validate cannot see from the text: one database server listed
// twice under two names (a host name and its IP, two names of one host),
// and two monitors on one address and port. A name that does not resolve
// is a warning: it may resolve where the config is used.
func CheckNames(ctx context.Context, c *Config, lookup Lookup, timeout time.Duration) (Errors, []string) {
	var servers, monitors []hostEntry
	for i, cl := range c.Clusters {
		for j, s := range cl.Servers {
			host, port, err := net.SplitHostPort(s.Address)
			if err != nil {
				continue
			}
			n, _ := strconv.Atoi(port)
			servers = append(servers, hostEntry{key: fmt.Sprintf("clusters[%d].servers[%d].address", i, j), host: host, port: n, group: fmt.Sprint("s", i, j)})
		}
	}
	for i, m := range c.Monitors {
		for _, p := range []struct {
			name string
			v    int
		}{{"gossip_port", m.GossipPort}, {"raft_port", m.RaftPort}, {"api_port", m.APIPort}} {
			monitors = append(monitors, hostEntry{key: fmt.Sprintf("monitors[%d].address (%s)", i, p.name), host: m.Address, port: p.v, group: fmt.Sprint("m", i)})
		}
	}
	resolved, warnings := resolveAll(ctx, append(append([]hostEntry(nil), servers...), monitors...), lookup, timeout)
	var errs Errors
	errs = append(errs, sameAddress(servers, resolved, "are the same server: list each server once")...)
	errs = append(errs, sameAddress(monitors, resolved, "are the same address and port: monitors on one host need ports of their own")...)
	return errs, warnings
}

// resolveAll looks every distinct host name up concurrently.
func resolveAll(ctx context.Context, entries []hostEntry, lookup Lookup, timeout time.Duration) (map[string][]netip.Addr, []string) {
	out := map[string][]netip.Addr{}
	names := map[string]bool{}
	for _, e := range entries {
		if ip, err := netip.ParseAddr(e.host); err == nil {
			out[e.host] = []netip.Addr{ip.Unmap()}
		} else {
			names[e.host] = true
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := map[string]error{}
	for name := range names {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			ips, err := lookup(lctx, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || len(ips) == 0 {
				failed[name] = err
				return
			}
			for i := range ips {
				ips[i] = ips[i].Unmap()
			}
			out[name] = ips
		}(name)
	}
	wg.Wait()
	var warnings []string
	for name, err := range failed {
		warnings = append(warnings, fmt.Sprintf("%s does not resolve here (%v): a server or monitor listed twice under this name and an address cannot be detected", name, err))
	}
	sort.Strings(warnings)
	return out, warnings
}

// sameAddress reports entries of different groups whose resolved
// address and port meet.
func sameAddress(entries []hostEntry, resolved map[string][]netip.Addr, what string) Errors {
	var errs Errors
	first := map[netip.AddrPort]hostEntry{}
	for _, e := range entries {
		reported := false
		for _, ip := range resolved[e.host] {
			ap := netip.AddrPortFrom(ip, uint16(e.port))
			prev, seen := first[ap]
			if !seen {
				first[ap] = e
				continue
			}
			if prev.group == e.group || reported || prev.host == e.host {
				continue // literal duplicates are Validate's
			}
			reported = true
			errs = append(errs, &Error{Key: e.key, Problem: fmt.Sprintf("%s and %s (%s) %s (both reach %s)",
				net.JoinHostPort(e.host, strconv.Itoa(e.port)), prev.key, net.JoinHostPort(prev.host, strconv.Itoa(prev.port)), what, ap)})
		}
	}
	return errs
}
