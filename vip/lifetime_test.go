package vip

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// TestLifetimeRenewedInPlaceAndExpires: with a Lifetime the address is
// added with that valid lifetime; renewing it every 200 ms keeps it
// without ever removing it (no RTM_DELADDR) and without a single
// gratuitous ARP beyond the Acquire bursts; once renewals stop, the kernel
// removes it by itself within the lifetime plus its timer slack; a renewal
// then does not put it back.
func TestLifetimeRenewedInPlaceAndExpires(t *testing.T) {
	a, _, _, got := vethPair(t, "mhvl", "198.18.253")
	updates := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.AddrSubscribe(updates, done); err != nil {
		t.Fatal(err)
	}
	vipAddr := netip.MustParsePrefix("198.18.253.100/24")
	v, err := New(Config{Address: vipAddr, Interface: a, Count: 2, Repeat: 1, Delay: 200 * time.Millisecond, Lifetime: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, _ := netlink.LinkByName(a)
	addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
	found := false
	for _, ad := range addrs {
		if ad.IP.String() == vipAddr.Addr().String() {
			found = true
			if ad.ValidLft < 1 || ad.ValidLft > 1 || ad.Flags&0x80 != 0 { // IFA_F_PERMANENT
				t.Fatalf("the VIP's lifetime: valid %d preferred %d flags %#x, want 1 s and not permanent", ad.ValidLft, ad.PreferedLft, ad.Flags)
			}
		}
	}
	if !found {
		t.Fatal("the VIP is not on the interface after Acquire")
	}
	isVIP := func(p *arp.Packet) bool { return p.SenderIP == vipAddr.Addr() }
	// The Acquire bursts: 2 × (request + reply), twice, 200 ms apart.
	announced := 0
	deadline := time.After(2 * time.Second)
	for announced < 8 {
		select {
		case p := <-got:
			if isVIP(p) {
				announced++
			}
		case <-deadline:
			t.Fatalf("%d announcements from Acquire, want 8", announced)
		}
	}
	drainUpdates := func() (dels int) {
		for {
			select {
			case u := <-updates:
				if u.LinkAddress.IP.String() == vipAddr.Addr().String() && !u.NewAddr {
					dels++
				}
			default:
				return dels
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // let the last burst's frames arrive
	for len(got) > 0 {
		<-got
	}
	drainUpdates()

	// Three seconds (three lifetimes) of renewals every 200 ms.
	var stopped time.Time
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if err := v.RenewLifetime(); err != nil {
			t.Fatalf("renewal: %v", err)
		}
		stopped = time.Now()
		if ok, _ := v.Present(); !ok {
			t.Fatal("the VIP vanished while renewed")
		}
	}
	extra := 0
	for len(got) > 0 {
		if isVIP(<-got) {
			extra++
		}
	}
	if extra != 0 {
		t.Fatalf("renewals sent %d gratuitous ARP frames, want none", extra)
	}
	if dels := drainUpdates(); dels != 0 {
		t.Fatalf("renewals removed the address %d times (a flap), want never", dels)
	}

	// Renewals stop (a killed or frozen holder): the kernel removes it.
	for {
		ok, err := v.Present()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Since(stopped) > 3*time.Second {
			t.Fatal("the VIP outlived its 1 s lifetime by more than 2 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	gone := time.Since(stopped)
	t.Logf("the VIP vanished %s after the last renewal (lifetime 1 s)", gone.Round(time.Millisecond))
	if gone < 900*time.Millisecond || gone > 2300*time.Millisecond {
		t.Fatalf("the VIP vanished %s after the last renewal; want about its 1 s lifetime (0.9-2.3 s: the kernel checks lifetimes at most once a second; see daemon.vipKernelSlack)", gone)
	}
	if err := v.RenewLifetime(); !errors.Is(err, ErrExpired) {
		t.Fatalf("renewing an expired VIP: %v, want ErrExpired", err)
	}
	if ok, _ := v.Present(); ok {
		t.Fatal("a renewal put an expired VIP back without announcing it")
	}
	if err := v.Release(); err != nil {
		t.Fatalf("Release after expiry: %v", err)
	}
	// After Release, a renewal does nothing.
	if err := v.RenewLifetime(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := v.Present(); ok {
		t.Fatal("a renewal after Release added the VIP")
	}
}

// An address left on the interface without a lifetime (by an earlier run,
// or a version before lifetimes) is not renewed until Acquire adopts it;
// Acquire gives it the lifetime, after which it expires like one it added.
func TestAcquireAdoptsALeftoverAddress(t *testing.T) {
	a, _, _, _ := vethPair(t, "mhvo", "198.18.251")
	if out, err := exec.Command("ip", "addr", "add", "198.18.251.100/24", "dev", a).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	v, err := New(Config{Address: netip.MustParsePrefix("198.18.251.100/24"), Interface: a, Count: 1, Lifetime: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lifetime := func() (int, bool) {
		l, _ := netlink.LinkByName(a)
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, ad := range addrs {
			if ad.IP.String() == "198.18.251.100" {
				return ad.ValidLft, ad.Flags&0x80 != 0 // IFA_F_PERMANENT
			}
		}
		return -1, false
	}
	if v.Held() {
		t.Fatal("held before Acquire")
	}
	v.RenewLifetime()
	if _, permanent := lifetime(); !permanent {
		t.Fatal("a renewal touched an address this VIP does not hold")
	}
	if err := v.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lft, permanent := lifetime(); permanent || lft != 1 || !v.Held() {
		t.Fatalf("after Acquire: valid %d permanent %v held %v", lft, permanent, v.Held())
	}
	start := time.Now()
	for {
		if ok, _ := v.Present(); !ok {
			break
		}
		if time.Since(start) > 2300*time.Millisecond {
			t.Fatal("the adopted address outlived its lifetime")
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.Release()
}
