package config

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// One server listed under a host name and under its IP, or under two
// names, is refused with an error naming both entries; so are two
// monitors that meet on one address and port. The lookup is a fake (a
// table) here; TestCheckNamesResolvesLocalhost uses the real resolver.
func TestCheckNamesFindsOneServerListedTwice(t *testing.T) {
	table := map[string][]netip.Addr{
		"db1.example":  {netip.MustParseAddr("198.18.0.11")},
		"db1b.example": {netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("2001:db8::11")},
		"mon1.example": {netip.MustParseAddr("198.18.0.21")},
	}
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		if ips, ok := table[host]; ok {
			return ips, nil
		}
		if host == "slow.example" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, errors.New("no such host")
	}
	y := `monitors:
  - {name: mon1, address: mon1.example}
  - {name: mon2, address: 198.18.0.21}
  - {name: mon3, address: 198.18.0.21, gossip_port: 17946, raft_port: 17947, api_port: 18080}
clusters:
  - name: app1
    user: u
    password: p
    replication_user: r
    replication_password: rp
    servers:
      - address: 198.18.0.11
      - address: db1.example
      - address: db1.example:3307
      - address: nowhere.example
      - address: slow.example
  - name: app2
    user: u
    password: p
    replication_user: r
    replication_password: rp
    servers:
      - address: db1b.example
`
	c, err := Parse([]byte(y), Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	errs, warnings := CheckNames(context.Background(), c, lookup, 300*time.Millisecond)
	if time.Since(start) > 2*time.Second {
		t.Fatalf("lookups not bounded: %s", time.Since(start))
	}
	got := errs.Error()
	for _, want := range []string{
		"clusters[0].servers[1].address: db1.example:3306 and clusters[0].servers[0].address (198.18.0.11:3306) are the same server",
		"clusters[1].servers[0].address: db1b.example:3306 and clusters[0].servers[0].address (198.18.0.11:3306) are the same server",
		"monitors[1].address (gossip_port): 198.18.0.21:7946 and monitors[0].address (gossip_port) (mon1.example:7946) are the same address and port",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "servers[2]") || strings.Contains(got, "monitors[2]") {
		t.Errorf("another port on the same host is another server:\n%s", got)
	}
	w := strings.Join(warnings, "\n")
	if !strings.Contains(w, "nowhere.example does not resolve") || !strings.Contains(w, "slow.example does not resolve") {
		t.Errorf("warnings: %s", w)
	}
}

// The real resolver: localhost is 127.0.0.1 (in /etc/hosts everywhere).
func TestCheckNamesResolvesLocalhost(t *testing.T) {
	y := strings.Replace(good, "      - address: db3.example.com\n", "      - address: 127.0.0.1\n      - address: localhost\n", 1)
	c, err := Parse([]byte(y), Options{})
	if err != nil {
		t.Fatal(err)
	}
	errs, _ := CheckNames(context.Background(), c, DefaultLookup, 2*time.Second)
	if !strings.Contains(errs.Error(), "localhost:3306 and clusters[0].servers[2].address (127.0.0.1:3306) are the same server") {
		t.Fatalf("localhost and 127.0.0.1 accepted as two servers: %v", errs)
	}
}
