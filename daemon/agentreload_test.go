package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/myha/myha/topology"
	"github.com/myha/myha/vip"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A reload (SIGHUP) reaches the running agent through Run's loop: cluster
// settings are applied, restart-only changes are named and not applied
// (the health endpoints stay on their port), a server moved to another
// cluster refuses the file; and cancelling Run (SIGTERM) ends it promptly.
// The agent's server is a closed port and gossip an in-memory network.
func TestAgentReloadThroughRun(t *testing.T) {
	var logs syncBuffer
	mock := &memberlist.MockNetwork{}
	port := freePort(t)
	servers := []topology.ServerSpec{{Address: "127.0.0.1:1"}, {Address: "127.0.0.2:1"}}
	cfg := AgentConfig{Server: "127.0.0.1:1", BindAddr: "127.0.0.1", HTTPPort: port, GossipPort: 1, Lease: 3 * time.Second,
		Cluster:   ClusterConfig{Spec: topology.ClusterSpec{Name: "app1", Servers: servers, ConnectTimeout: 200 * time.Millisecond, ReadTimeout: time.Second}},
		Transport: udpLike{mock.NewTransport("agent")}, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ag, err := NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	eventually(t, "the agent running", 5*time.Second, func() bool { return strings.Contains(logs.String(), "agent running") })

	nc := cfg
	nc.Cluster.Spec.Servers = append(append([]topology.ServerSpec(nil), servers...), topology.ServerSpec{Address: "127.0.0.3:1"})
	nc.Lease, nc.HTTPPort = 5*time.Second, port+1
	ag.Reload(nc)
	eventually(t, "the reload", 5*time.Second, func() bool {
		return strings.Contains(logs.String(), "SIGHUP: config reloaded") && strings.Contains(logs.String(), "need a restart")
	})
	out := logs.String()
	if !strings.Contains(out, "servers=3") || !strings.Contains(out, "lease=5s") || !strings.Contains(out, "agents.http_port") {
		t.Fatalf("reload log:\n%s", out)
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/liveness", port))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the health endpoints left their port on reload: %v", err)
	}
	resp.Body.Close()

	moved := cfg
	moved.Cluster.Spec.Name = "app2"
	ag.Reload(moved)
	eventually(t, "the refusal", 5*time.Second, func() bool { return strings.Contains(logs.String(), "config refused") })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return within 3 s of cancellation")
	}
	if !strings.Contains(logs.String(), "agent stopped") {
		t.Fatalf("no stop line:\n%s", logs.String())
	}
}

// The agent renews the VIP's lifetime only while its decision to hold
// stands (holdUntil): past it the kernel removes the address within
// vipLifetime plus its slack, less than agentReaction. Real addresses on a
// private veth pair (root).
func TestAgentRenewsTheVIPOnlyWhileTheDecisionStands(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to add addresses; CI runs as root")
		}
		t.Skip("needs root to add addresses")
	}
	a, b := fmt.Sprintf("mhra%d", os.Getpid()%100000), fmt.Sprintf("mhrb%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "link", "add", a, "type", "veth", "peer", "name", b).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", a).Run() })
	exec.Command("ip", "addr", "add", "198.18.252.1/24", "dev", a).Run()
	exec.Command("ip", "link", "set", a, "up").Run()
	exec.Command("ip", "link", "set", b, "up").Run()
	v, err := vip.New(vip.Config{Address: netip.MustParsePrefix("198.18.252.100/24"), Interface: a, Count: 1, Lifetime: vipLifetime}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ag := &Agent{vip: v, now: time.Now, log: slog.New(slog.DiscardHandler), cfg: AgentConfig{VIP: &vip.Config{Address: netip.MustParsePrefix("198.18.252.100/24")}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer v.Release()
	if err := v.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	until := start.Add(2500 * time.Millisecond)
	ag.setHoldUntil(until)
	go ag.renewLoop(ctx)
	for time.Now().Before(until.Add(-100 * time.Millisecond)) {
		if ok, _ := v.Present(); !ok {
			t.Fatalf("the VIP vanished %s after it was taken, while the decision to hold stood until %s", time.Since(start), until.Sub(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		ok, _ := v.Present()
		if !ok {
			break
		}
		if time.Since(until) > agentReaction {
			t.Fatalf("the VIP outlived the decision by more than agentReaction (%s)", agentReaction)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the VIP vanished %s after its holder's decision stopped standing (lifetime %s)", time.Since(until).Round(time.Millisecond), vipLifetime)
}
