package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityKeysParsedAndValidated(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"gossip.key", "api.token", "read.token"} {
		os.WriteFile(filepath.Join(dir, f), []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	}
	sec := "security:\n  gossip_key_file: " + dir + "/gossip.key\n  api_token_file: " + dir + "/api.token\n  api_read_token_file: " + dir + "/read.token\n" +
		"  ca_file: /etc/myha/tls/ca.crt\n  cert_file: /etc/myha/tls/{name}.crt\n  key_file: /etc/myha/tls/{name}.key\n" +
		"  api_cert_file: /etc/myha/tls/{name}.crt\n  api_key_file: /etc/myha/tls/{name}.key\n"
	c, err := Parse([]byte(sec+good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Security.APIReadToken.Value() == "" || NodeFile(c.Security.CertFile, "mon1") != "/etc/myha/tls/mon1.crt" {
		t.Fatalf("security: %+v", c.Security)
	}
	// Half a TLS setup is an error naming the keys.
	_, err = Parse([]byte("security:\n  ca_file: /x/ca.crt\n  api_cert_file: /x/a.crt\n"+good), Options{})
	if err == nil || !strings.Contains(err.Error(), "ca_file, cert_file and key_file together") || !strings.Contains(err.Error(), "api_cert_file and api_key_file") {
		t.Fatalf("half TLS accepted: %v", err)
	}
	if _, err := Parse([]byte("security:\n  insecure: maybe\n"+good), Options{}); err == nil {
		t.Fatal("insecure: maybe accepted")
	}
}

// The agent needs neither API token: a database host without the token
// files still loads the config.
func TestAgentDoesNotReadAPITokens(t *testing.T) {
	y := "security:\n  api_token_file: /nonexistent/api.token\n  api_read_token_file: /nonexistent/read.token\n" + good
	if _, err := Parse([]byte(y), Options{}); err == nil {
		t.Fatal("a monitor loaded a config whose token file is missing")
	}
	c, err := Parse([]byte(y), Options{Agent: true})
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	if c.Security.APIToken != "" || c.Security.APIReadToken != "" {
		t.Fatal("the agent holds an API token")
	}
}

func TestPermissionWarnings(t *testing.T) {
	dir := t.TempDir()
	key, pw, cfgPath := filepath.Join(dir, "gossip.key"), filepath.Join(dir, "app1.pw"), filepath.Join(dir, "myha.yaml")
	os.WriteFile(key, []byte("k"), 0o644)
	os.WriteFile(pw, []byte("p"), 0o600)
	os.WriteFile(cfgPath, []byte("x"), 0o644)
	c := &Config{Security: Security{GossipKeyFile: key}, Clusters: []Cluster{{Name: "app1", PasswordFile: pw, ReplicationPassword: "inline"}}}
	w := strings.Join(PermissionWarnings(cfgPath, c), "\n")
	if !strings.Contains(w, "security.gossip_key_file") || !strings.Contains(w, "inline passwords") || strings.Contains(w, "password_file") {
		t.Fatalf("warnings:\n%s", w)
	}
	os.Chmod(key, 0o600)
	os.Chmod(cfgPath, 0o640)
	if w := PermissionWarnings(cfgPath, c); len(w) != 0 {
		t.Fatalf("warnings for private files: %v", w)
	}
}

func TestValidationGaps(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{strings.Replace(good, "198.18.0.100/24", "198.18.0.100/0", 1), "cannot be a virtual IP"},
		{strings.Replace(good, "198.18.0.100/24", "255.255.255.255/32", 1), "cannot be a virtual IP"},
		{strings.Replace(good, "198.18.0.100/24", "198.18.0.0/24", 1), "cannot be a virtual IP"},
		{"agents:\n  http_port: 70000\n" + good, "agents.http_port: must be 1-65535"},
		{"agents:\n  gossip_port: -1\n" + good, "agents.gossip_port: must be 1-65535"},
		{"monitors:\n  - {name: a, address: 198.18.0.21}\n  - {name: b, address: 198.18.0.21}\n" + good, "monitors on one address need ports of their own"},
		{strings.Replace(good, "    servers:", "    check_interval: 1ns\n    servers:", 1), "check_interval: 1ns is too small"},
		{strings.Replace(good, "      interface: eth0", "      interface: eth0\n      lease: 1ns", 1), "vip.lease: 1ns is too short"},
		// The lease must outlast a renewal cycle: renewed once per check.
		{strings.Replace(good, "      interface: eth0", "      interface: eth0\n      lease: 2s", 1), "vip.lease: 2s is too short for check_interval 1s"},
		{strings.Replace(strings.Replace(good, "    servers:", "    check_interval: 3s\n    servers:", 1), "      interface: eth0", "      interface: eth0\n      lease: 3s", 1),
			"use at least 5.25s"},
		{strings.Replace(good, "    servers:", "    failover:\n      down_after: 1ns\n    servers:", 1), "failover.down_after: 1ns is too small"},
		{"monitors:\n  - {name: a, address: 198.18.0.21, api_port: 70000}\n" + good, "monitors[0].api_port: must be 1-65535"},
		{"monitors:\n  - {name: a, address: 198.18.0.21, raft_port: -1}\n" + good, "monitors[0].raft_port: must be 1-65535"},
		{strings.Replace(good, "198.18.0.12:3307", "198.18.0.12:70000", 1), "port must be 1-65535"},
		{strings.Replace(good, "198.18.0.12:3307", "198.18.0.12:-1", 1), "port must be 1-65535"},
		// Names that break write probes (myha.heartbeat.monitor is a
		// VARCHAR(64)), certificate files or state directories.
		{"monitors:\n  - {name: " + strings.Repeat("m", 65) + ", address: 198.18.0.21}\n" + good, "monitors[0].name"},
		{"monitors:\n  - {name: \"mon 1\", address: 198.18.0.21}\n" + good, "monitors[0].name: \"mon 1\": use letters"},
		{"monitors:\n  - {name: \"../x\", address: 198.18.0.21}\n" + good, "monitors[0].name"},
		{"monitors:\n  - {name: \"mön\", address: 198.18.0.21}\n" + good, "monitors[0].name"},
		{"monitors:\n  - {name: ca, address: 198.18.0.21}\n" + good, "not \"ca\""},
	} {
		_, err := Parse([]byte(c.yaml), Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	ok := "monitors:\n  - {name: a, address: 127.0.0.1}\n  - {name: b, address: 127.0.0.1, gossip_port: 17946, raft_port: 17947, api_port: 18080}\n" + good
	if _, err := Parse([]byte(ok), Options{}); err != nil {
		t.Fatalf("monitors on one address with their own ports: %v", err)
	}
}

// security.api_allow takes CIDRs and single addresses; anything else is an
// error naming the entry.
func TestAPIAllowParsedAndValidated(t *testing.T) {
	c, err := Parse([]byte("security:\n  api_allow: [10.1.0.0/16, 192.0.2.7, \"2001:db8::/32\", 10.2.3.4/24]\n"+good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(c.Security.APIAllowPrefixes())
	if got != "[10.1.0.0/16 192.0.2.7/32 2001:db8::/32 10.2.3.0/24]" {
		t.Fatalf("prefixes %s", got)
	}
	_, err = Parse([]byte("security:\n  api_allow: [10.0.0.0/8, 10.0.0.0/33, mon1]\n"+good), Options{})
	if err == nil || !strings.Contains(err.Error(), `security.api_allow[1]: "10.0.0.0/33" is not an IP address or CIDR`) ||
		!strings.Contains(err.Error(), `security.api_allow[2]: "mon1"`) || strings.Contains(err.Error(), "api_allow[0]") {
		t.Fatalf("bad entries: %v", err)
	}
	// One entry written without brackets is a list of one.
	if c, err := Parse([]byte("security:\n  api_allow: 10.0.0.0/8\n"+good), Options{}); err != nil || fmt.Sprint(c.Security.APIAllowPrefixes()) != "[10.0.0.0/8]" {
		t.Fatalf("a single entry: %v", err)
	}
}

// A config for a host that only reads through the monitors (an operator's
// laptop running myha topology --api) may leave out the database passwords
// and hold only the CA; every other load still requires them.
func TestThroughMonitorsNeedsNoDatabasePassword(t *testing.T) {
	laptop := strings.NewReplacer("    password: s3cret-pw\n", "", "    replication_password: repl-pw\n", "").Replace(good)
	laptop = "security:\n  ca_file: /etc/myha/tls/ca.crt\nmonitors:\n  - name: mon1\n    address: 198.18.0.2\n" + laptop
	_, err := Parse([]byte(laptop), Options{})
	for _, want := range []string{"clusters[0].password: missing", "myha topology --api", "clusters[0].replication_password: missing", "ca_file, cert_file and key_file together"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a monitor's load: want %q in the error, got %v", want, err)
		}
	}
	c, err := Parse([]byte(laptop), Options{ThroughMonitors: true})
	if err != nil {
		t.Fatalf("through the monitors: %v", err)
	}
	if c.Clusters[0].Name != "app1" || c.Security.CAFile == "" {
		t.Fatalf("loaded %+v", c.Clusters[0])
	}
	// A password given anyway (file missing here, or in the environment)
	// is not read: the command never holds it.
	withFile := strings.Replace(good, "    password: s3cret-pw\n", "    password_file: /nonexistent/pw\n", 1)
	env := func(k string) string { return map[string]string{"MYHA_APP1_REPLICATION_PASSWORD": "from-env"}[k] }
	c, err = Parse([]byte(withFile), Options{ThroughMonitors: true, Getenv: env})
	if err != nil {
		t.Fatalf("password_file on another host: %v", err)
	}
	if c.Clusters[0].Password != "" || c.Clusters[0].ReplicationPassword != "" {
		t.Fatal("a command reading through the monitors holds a database password")
	}
	// Other validation is unchanged.
	if _, err := Parse([]byte(strings.Replace(laptop, "198.18.0.12:3307", "198.18.0.12:99999", 1)), Options{ThroughMonitors: true}); err == nil {
		t.Fatal("a bad server address accepted through the monitors")
	}
}
