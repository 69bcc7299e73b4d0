package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// filterTransport drops gossip packets and connections from addresses that
// are neither monitors nor database hosts, before memberlist reads them.
// (Source addresses of UDP can be forged on a LAN; the mandatory gossip key
// is what authenticates content. This only cuts everyone else out early.)
type filterTransport struct {
	memberlist.NodeAwareTransport
	mu      sync.Mutex
	allowed map[netip.Addr]bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
	reject  func(string)
}

func newFilterTransport(t memberlist.NodeAwareTransport, hosts []string, reject func(string)) *filterTransport {
	f := &filterTransport{NodeAwareTransport: t, allowed: map[netip.Addr]bool{}, packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn), done: make(chan struct{}), reject: reject}
	f.setHosts(hosts)
	go f.pump()
	return f
}

// setHosts replaces the addresses gossip is accepted from.
func (f *filterTransport) setHosts(hosts []string) {
	allowed := map[netip.Addr]bool{}
	for _, h := range hosts {
		for _, a := range resolveHost(h) {
			allowed[a.Unmap()] = true
		}
	}
	f.mu.Lock()
	f.allowed = allowed
	f.mu.Unlock()
}

// resolveHost turns a configured host (IP or name) into addresses, bounded.
func resolveHost(h string) []netip.Addr {
	if a, err := netip.ParseAddr(h); err == nil {
		return []netip.Addr{a}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", h)
	if err != nil {
		return nil
	}
	return ips
}

func (f *filterTransport) ok(a net.Addr) bool {
	var ip netip.Addr
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(v.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(v.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.allowed[ip.Unmap()]
}

func (f *filterTransport) pump() {
	in, sin := f.NodeAwareTransport.PacketCh(), f.NodeAwareTransport.StreamCh()
	for {
		select {
		case <-f.done:
			return
		case p := <-in:
			if !f.ok(p.From) {
				f.reject(fmt.Sprintf("packet from %s, not a configured host", p.From))
				continue
			}
			select {
			case f.packets <- p:
			case <-f.done:
				return
			}
		case c := <-sin:
			if !f.ok(c.RemoteAddr()) {
				f.reject(fmt.Sprintf("connection from %s, not a configured host", c.RemoteAddr()))
				c.Close()
				continue
			}
			select {
			case f.streams <- c:
			case <-f.done:
				c.Close()
				return
			}
		}
	}
}

// PacketCh implements memberlist.Transport.
func (f *filterTransport) PacketCh() <-chan *memberlist.Packet { return f.packets }

// StreamCh implements memberlist.Transport.
func (f *filterTransport) StreamCh() <-chan net.Conn { return f.streams }

// Shutdown implements memberlist.Transport.
func (f *filterTransport) Shutdown() error {
	f.once.Do(func() { close(f.done) })
	return f.NodeAwareTransport.Shutdown()
}

// NotifyAlive implements memberlist.AliveDelegate: a member named after a
// monitor must live at that monitor's address, and an agent at its
// server's; other names are not members.
func (g *gossip) NotifyAlive(n *memberlist.Node) error {
	allow := g.allow.Load()
	if allow == nil || n.Name == g.self {
		return nil
	}
	host := ""
	if h, ok := allow.Monitors[n.Name]; ok {
		host = h
	} else if server, ok := cutPrefix(n.Name, "agent-"); ok {
		for _, ss := range allow.Servers {
			if ss[server] {
				host, _, _ = net.SplitHostPort(server)
			}
		}
	}
	if host == "" {
		g.reject("member " + n.Name + " is not configured")
		return fmt.Errorf("%s is not a configured monitor or agent", n.Name)
	}
	for _, a := range resolveHost(host) {
		if ip, ok := netip.AddrFromSlice(n.Addr); ok && ip.Unmap() == a.Unmap() {
			return nil
		}
	}
	g.reject("member " + n.Name + " at the wrong address")
	return fmt.Errorf("%s announced from %s, not its configured address", n.Name, n.Addr)
}

// NotifyMerge implements memberlist.MergeDelegate with the same rule.
func (g *gossip) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if err := g.NotifyAlive(p); err != nil {
			return err
		}
	}
	return nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}
