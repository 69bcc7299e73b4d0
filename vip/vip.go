// Package vip moves a virtual IP address the way keepalived does: the
// address is added to (or removed from) an interface with netlink, and
// bursts of gratuitous ARP (IPv4) or unsolicited neighbour advertisements
// (IPv6) tell the network's ARP caches where it now lives.
//
// It needs CAP_NET_ADMIN (addresses) and CAP_NET_RAW (raw ARP/NDP frames);
// without them it fails with an error that says so.
package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
)

// Config is one VIP and its announcement schedule. Zero values take
// keepalived's defaults: 5 announcements at once, 5 more after 5 s, no
// periodic refresh.
type Config struct {
	Address   netip.Prefix // e.g. 198.18.0.100/24
	Interface string
	// Count is how many announcements a burst sends.
	Count int
	// Repeat is how many more bursts follow the first, Delay apart.
	Repeat int
	Delay  time.Duration
	// Refresh, when set, re-announces periodically while held.
	Refresh time.Duration
	// Lifetime, when set, gives the address a valid (and preferred)
	// lifetime: the kernel removes it by itself once that long has passed
	// since it was added or last renewed (RenewLifetime), so an address
	// whose holder was killed or frozen does not stay behind. Whole
	// seconds, rounded up (the kernel's unit); zero: permanent.
	Lifetime time.Duration
}

// lifetimeSecs is Lifetime in the kernel's whole seconds, rounded up.
func (c Config) lifetimeSecs() int {
	if c.Lifetime <= 0 {
		return 0
	}
	return int((c.Lifetime + time.Second - 1) / time.Second)
}

func (c Config) withDefaults() Config {
	if c.Count == 0 {
		c.Count = 5
	}
	if c.Delay == 0 {
		c.Delay = 5 * time.Second
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	return c
}

// VIP manages one address on one interface.
type VIP struct {
	cfg Config
	log *slog.Logger

	// mu serializes the address changes (Acquire, RenewLifetime,
	// Release): a renewal can never re-add an address Release removed.
	mu     sync.Mutex
	cancel context.CancelFunc // stops scheduled announcements
	held   bool               // between Acquire and Release
}

// New checks the interface exists. It does not touch it.
func New(cfg Config, log *slog.Logger) (*VIP, error) {
	if !cfg.Address.IsValid() {
		return nil, errors.New("vip: no address")
	}
	if _, err := net.InterfaceByName(cfg.Interface); err != nil {
		return nil, fmt.Errorf("vip %s: interface %q: %w", cfg.Address, cfg.Interface, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &VIP{cfg: cfg.withDefaults(), log: log}, nil
}

func (v *VIP) link() (netlink.Link, error) {
	l, err := netlink.LinkByName(v.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vip: interface %q: %w", v.cfg.Interface, err)
	}
	return l, nil
}

func (v *VIP) addr() *netlink.Addr {
	p := v.cfg.Address
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}}
	if n := v.cfg.lifetimeSecs(); n > 0 {
		a.ValidLft, a.PreferedLft = n, n
	}
	return a
}

// Present reports whether the address is on the interface.
func (v *VIP) Present() (bool, error) {
	l, err := v.link()
	if err != nil {
		return false, err
	}
	family := netlink.FAMILY_V4
	if v.cfg.Address.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(l, family)
	if err != nil {
		return false, permission(err, "list addresses", "CAP_NET_ADMIN")
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v.cfg.Address.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// Acquire adds the address (if missing) and announces it: a burst now and
// the configured repeats and refreshes in the background until Release.
// With a Lifetime, an address already present (left by an earlier run)
// gets the lifetime too.
func (v *VIP) Acquire(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	l, err := v.link()
	if err != nil {
		return err
	}
	present, err := v.Present()
	if err != nil {
		return err
	}
	switch {
	case !present:
		if err := netlink.AddrAdd(l, v.addr()); err != nil && !errors.Is(err, syscall.EEXIST) {
			return permission(err, fmt.Sprintf("add %s to %s", v.cfg.Address, v.cfg.Interface), "CAP_NET_ADMIN")
		}
	case v.cfg.Lifetime > 0:
		if err := netlink.AddrReplace(l, v.addr()); err != nil {
			return permission(err, fmt.Sprintf("set the lifetime of %s on %s", v.cfg.Address, v.cfg.Interface), "CAP_NET_ADMIN")
		}
	}
	v.held = true
	if err := v.Announce(); err != nil {
		v.log.Warn("vip: announcement failed", "vip", v.cfg.Address, "err", err)
	}
	if v.cancel != nil {
		v.cancel()
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.cancel = cancel
	go v.schedule(actx)
	return nil
}

// Held reports whether the VIP is between Acquire and Release: an address
// present but not held (left by an earlier run) is not renewed until
// Acquire adopts it.
func (v *VIP) Held() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.held
}

// ErrExpired is RenewLifetime's answer when the address is gone (its
// lifetime ran out, or someone removed it): it is not put back without
// an announcement; Acquire does that.
var ErrExpired = errors.New("vip: the address is no longer on the interface")

// RenewLifetime restarts the address's lifetime, in place: the kernel
// updates the existing address (RTM_NEWADDR with NLM_F_REPLACE), so it is
// neither removed nor re-added, and nothing is announced. It does nothing
// without a Lifetime or outside Acquire…Release.
func (v *VIP) RenewLifetime() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.held || v.cfg.Lifetime <= 0 {
		return nil
	}
	present, err := v.Present()
	if err != nil {
		return err
	}
	if !present {
		return ErrExpired
	}
	l, err := v.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrReplace(l, v.addr()); err != nil {
		return permission(err, fmt.Sprintf("renew %s on %s", v.cfg.Address, v.cfg.Interface), "CAP_NET_ADMIN")
	}
	return nil
}

// schedule sends the repeat bursts (keepalived's garp_master_repeat after
// garp_master_delay) and the periodic refresh, until cancelled.
func (v *VIP) schedule(ctx context.Context) {
	for i := 0; i < v.cfg.Repeat; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(v.cfg.Delay):
			v.Announce()
		}
	}
	if v.cfg.Refresh <= 0 {
		return
	}
	t := time.NewTicker(v.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v.Announce()
		}
	}
}

// Release removes the address (if present) and stops announcements.
func (v *VIP) Release() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.held = false
	if v.cancel != nil {
		v.cancel()
		v.cancel = nil
	}
	l, err := v.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(l, v.addr()); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) {
		present, perr := v.Present()
		if perr == nil && !present {
			return nil
		}
		return permission(err, fmt.Sprintf("remove %s from %s", v.cfg.Address, v.cfg.Interface), "CAP_NET_ADMIN")
	}
	return nil
}

// Announce sends one burst: gratuitous ARP requests and replies for IPv4
// (some devices only learn from one kind), unsolicited neighbour
// advertisements for IPv6.
func (v *VIP) Announce() error {
	ifi, err := net.InterfaceByName(v.cfg.Interface)
	if err != nil {
		return err
	}
	if v.cfg.Address.Addr().Is6() {
		return v.announce6(ifi)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return permission(err, "open a raw ARP socket on "+v.cfg.Interface, "CAP_NET_RAW")
	}
	defer c.Close()
	ip := v.cfg.Address.Addr()
	for i := 0; i < v.cfg.Count; i++ {
		for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
			p, err := arp.NewPacket(op, ifi.HardwareAddr, ip, ethernet.Broadcast, ip)
			if err != nil {
				return err
			}
			if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
				return permission(err, "send gratuitous ARP on "+v.cfg.Interface, "CAP_NET_RAW")
			}
		}
	}
	return nil
}

func (v *VIP) announce6(ifi *net.Interface) error {
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return permission(err, "open an ICMPv6 socket on "+v.cfg.Interface, "CAP_NET_RAW")
	}
	defer c.Close()
	na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: v.cfg.Address.Addr(),
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}}}
	for i := 0; i < v.cfg.Count; i++ {
		if err := c.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes()); err != nil {
			return permission(err, "send neighbour advertisements on "+v.cfg.Interface, "CAP_NET_RAW")
		}
	}
	return nil
}

// permission turns EPERM into an error that names the missing capability.
func permission(err error, what, capability string) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("vip: cannot %s: permission denied: needs %s (run as root, or set AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW in the systemd unit)", what, capability)
	}
	return fmt.Errorf("vip: cannot %s: %w", what, err)
}
