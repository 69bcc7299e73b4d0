package vip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
)

// TestAcquireAnnounceRelease uses a private veth pair (198.18.254.0/24,
// never routed): the VIP must appear on one side, gratuitous ARP for it
// (requests and replies, sender = VIP with the holder's MAC) must arrive on
// the other, repeated after the delay, and Release must remove it.
func TestAcquireAnnounceRelease(t *testing.T) {
	a, _, ifa, got := vethPair(t, "mhva", "198.18.254")

	vipAddr := netip.MustParsePrefix("198.18.254.100/24")
	v, err := New(Config{Address: vipAddr, Interface: a, Count: 2, Repeat: 1, Delay: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.Present(); !ok || err != nil {
		t.Fatalf("after Acquire: present %v %v", ok, err)
	}
	requests, replies := 0, 0
	first := time.Time{}
	var last time.Time
	deadline := time.After(3 * time.Second)
	for requests+replies < 8 {
		select {
		case p := <-got:
			if p.SenderIP != vipAddr.Addr() || p.TargetIP != vipAddr.Addr() || p.SenderHardwareAddr.String() != ifa.HardwareAddr.String() {
				continue
			}
			if first.IsZero() {
				first = time.Now()
			}
			last = time.Now()
			if p.Operation == arp.OperationRequest {
				requests++
			} else {
				replies++
			}
		case <-deadline:
			t.Fatalf("gratuitous ARP seen: %d requests, %d replies (want 4 and 4 over two bursts)", requests, replies)
		}
	}
	if last.Sub(first) < 200*time.Millisecond {
		t.Fatalf("the second burst came %s after the first; want the configured delay", last.Sub(first))
	}
	if err := v.Acquire(context.Background()); err != nil {
		t.Fatalf("Acquire must be idempotent: %v", err)
	}
	if err := v.Release(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := v.Present(); ok {
		t.Fatal("address still present after Release")
	}
	if err := v.Release(); err != nil {
		t.Fatalf("Release must be idempotent: %v", err)
	}
}

// needRoot skips without root, except under CI=true, where a test that
// cannot run must fail rather than pass unseen.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (CAP_NET_ADMIN, CAP_NET_RAW) to add addresses and send raw ARP; CI runs as root")
		}
		t.Skip("needs root (CAP_NET_ADMIN, CAP_NET_RAW) to add addresses and send raw ARP")
	}
}

// vethPair makes a private veth pair in net.1/24 and 2/24 (a 198.18.x
// network, never routed), removed when the test ends, and returns the
// sending side's name, the listening side's name, the sending interface,
// and the ARP packets seen on the listening side.
func vethPair(t *testing.T, prefix, net24 string) (string, string, *net.Interface, chan *arp.Packet) {
	t.Helper()
	needRoot(t)
	a, b := fmt.Sprintf("%sa%d", prefix, os.Getpid()%100000), fmt.Sprintf("%sb%d", prefix, os.Getpid()%100000)
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() { exec.Command("ip", "link", "del", a).Run() })
	run("addr", "add", net24+".1/24", "dev", a)
	run("addr", "add", net24+".2/24", "dev", b)
	run("link", "set", a, "up")
	run("link", "set", b, "up")
	ifb, _ := net.InterfaceByName(b)
	ifa, _ := net.InterfaceByName(a)
	listener, err := arp.Dial(ifb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	got := make(chan *arp.Packet, 256)
	go func() {
		for {
			p, _, err := listener.Read()
			if err != nil {
				return
			}
			select {
			case got <- p:
			default:
			}
		}
	}()
	return a, b, ifa, got
}

func TestPermissionErrorNamesTheCapability(t *testing.T) {
	err := permission(fmt.Errorf("wrap: %w", os.ErrPermission), "add 198.18.0.100/24 to eth0", "CAP_NET_ADMIN")
	if err == nil || !contains(err.Error(), "CAP_NET_ADMIN") || !contains(err.Error(), "AmbientCapabilities") {
		t.Fatalf("got %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
