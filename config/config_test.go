package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
clusters:
  - name: app1
    user: myha
    password: s3cret-pw
    replication_user: repl
    replication_password: repl-pw
    servers:
      - address: 198.18.0.11
        candidate: true
      - address: 198.18.0.12:3307
        no_master: true
      - address: db3.example.com
        priority: 10
    vip:
      address: 198.18.0.100/24
      interface: eth0
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Clusters[0]
	got := []string{cl.Servers[0].Address, cl.Servers[1].Address, cl.Servers[2].Address}
	want := []string{"198.18.0.11:3306", "198.18.0.12:3307", "db3.example.com:3306"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("addresses %v, want %v", got, want)
	}
	if !cl.Servers[0].Candidate || !cl.Servers[1].NoMaster || cl.Servers[2].Priority != 10 {
		t.Fatalf("flags lost: %+v", cl.Servers)
	}
	if cl.ConnectTimeout != time.Second || cl.ReadTimeout != 2*time.Second || cl.CheckInterval != time.Second {
		t.Fatalf("defaults not applied: %v %v %v", cl.ConnectTimeout, cl.ReadTimeout, cl.CheckInterval)
	}
	if cl.Password.Value() != "s3cret-pw" {
		t.Fatal("password not read")
	}
}

func TestExampleFileIsValid(t *testing.T) {
	if _, err := LoadFile("example.yaml", Options{}); err != nil {
		t.Fatalf("config/example.yaml must stay valid: %v", err)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown top key", "clusterz: []\n", `clusterz: unknown key`},
		{"unknown server key", strings.Replace(good, "priority: 10", "priorty: 10", 1), `clusters[0].servers[2].priorty: unknown key`},
		{"unknown vip key", strings.Replace(good, "interface: eth0", "iface: eth0", 1), `clusters[0].vip.iface: unknown key`},
		{"duplicate server", strings.Replace(good, "db3.example.com", "198.18.0.11:3306", 1), `clusters[0].servers[2].address: duplicate server 198.18.0.11:3306`},
		{"missing password", strings.Replace(good, "password: s3cret-pw", "", 1), `clusters[0].password: missing`},
		{"bad address", strings.Replace(good, "198.18.0.12:3307", "198.18.0.12:99999", 1), `clusters[0].servers[1].address: "198.18.0.12:99999": port must be 1-65535`},
		{"bad host", strings.Replace(good, "db3.example.com", "db 3", 1), `clusters[0].servers[2].address`},
		{"vip not cidr", strings.Replace(good, "198.18.0.100/24", "198.18.0.100", 1), `clusters[0].vip.address: "198.18.0.100" is not a CIDR`},
		{"bad duration", strings.Replace(good, "user: myha", "user: myha\n    read_timeout: soon", 1), `clusters[0].read_timeout: "soon" is not a duration: write it as Go does, e.g. 500ms`},
		{"bad bool", strings.Replace(good, "candidate: true", "candidate: maybe", 1), `clusters[0].servers[0].candidate`},
		{"duplicate cluster", good + strings.Replace(strings.Replace(good, "clusters:\n", "", 1), "198.18.0.1", "198.18.0.2", -1), `clusters[1].name: duplicate cluster name "app1"`},
		{"no clusters", "clusters: []\n", `clusters: no cluster configured`},
		{"bad yaml", "clusters: [\n", `not valid YAML`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), Options{})
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(line, "s3cret-pw") || strings.Contains(line, "repl-pw") {
					t.Fatalf("error leaks a secret: %q", line)
				}
			}
		})
	}
}

func TestSecretsFromFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "app1.pw")
	if err := os.WriteFile(pw, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(good, "password: s3cret-pw", "password_file: "+pw, 1)
	env := map[string]string{"MYHA_APP1_REPLICATION_PASSWORD": "from-env"}
	c, err := Parse([]byte(y), Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if c.Clusters[0].Password.Value() != "from-file" || c.Clusters[0].ReplicationPassword.Value() != "from-env" {
		t.Fatal("secrets not resolved from file and environment")
	}
	_, err = Parse([]byte(strings.Replace(good, "password: s3cret-pw", "password_file: /nonexistent/pw", 1)), Options{})
	if err == nil || !strings.Contains(err.Error(), "clusters[0].password_file: cannot read /nonexistent/pw") {
		t.Fatalf("missing password file: %v", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, err := Parse([]byte(good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(c.Clusters[0]), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c.Clusters[0])} {
		if strings.Contains(s, "s3cret-pw") {
			t.Fatal("a formatted config shows the password")
		}
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte("nope: 1\n"), 0o600)
	_, err := LoadFile(p, Options{})
	var es Errors
	if !errors.As(err, &es) || !strings.HasPrefix(err.Error(), p+":1:1: nope: unknown key") {
		t.Fatalf("got %v", err)
	}
}

const mhaConf = `
# app1 MHA
[server default]
user=mha
password=mha-pw
repl_user=repl
repl_password=repl-pw
ping_interval=3
ssh_user=root
manager_workdir=/var/log/masterha/app1
master_ip_failover_script=/usr/local/bin/master_ip_failover

[server1]
hostname=198.18.0.11
candidate_master=1

[server2]
hostname=198.18.0.12
port=3307
no_master=1

[server3]
hostname=db3.example.com
`

func TestImportMHARoundTrip(t *testing.T) {
	c, notes, err := ImportMHA(mhaConf, "app1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, c, true); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(buf.Bytes(), Options{})
	if err != nil {
		t.Fatalf("imported YAML does not load: %v", err)
	}
	cl := back.Clusters[0]
	if cl.User != "mha" || cl.Password.Value() != "mha-pw" || cl.ReplicationUser != "repl" || cl.ReplicationPassword.Value() != "repl-pw" {
		t.Fatal("credentials not carried over")
	}
	if cl.CheckInterval != 3*time.Second {
		t.Fatalf("ping_interval → check_interval: %v", cl.CheckInterval)
	}
	if len(cl.Servers) != 3 || !cl.Servers[0].Candidate || !cl.Servers[1].NoMaster || cl.Servers[1].Address != "198.18.0.12:3307" || cl.Servers[2].Address != "db3.example.com:3306" {
		t.Fatalf("servers: %+v", cl.Servers)
	}
	joined := fmt.Sprint(notes)
	if cl.Failover.MasterIPFailoverScript != "/usr/local/bin/master_ip_failover" {
		t.Fatalf("master_ip_failover_script not carried over: %q", cl.Failover.MasterIPFailoverScript)
	}
	for _, want := range []string{"ssh_user not imported", "ping_interval=3"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes %q lack %q", joined, want)
		}
	}
	buf.Reset()
	WriteYAML(&buf, c, false)
	if strings.Contains(buf.String(), "mha-pw") || !strings.Contains(buf.String(), "MYHA_APP1_PASSWORD") {
		t.Fatalf("redacted output wrong:\n%s", buf.String())
	}
}

func TestImportMHAErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[server1]\nport=3306\n", "has no hostname"},
		{"user=x\n[server1]\nhostname=a\n", "outside any section"},
		{"[server default]\nuser=a\n[server1]\nhostname=h\nuser=b\n", "sets its own user"},
		{"[server1]\nhostname=h\nport=x\n", "port=\"x\""},
		{"[server1]\nhostname=h\n[server1]\nhostname=i\n", "appears twice"},
		{"[server default]\nuser=a\n", "nothing to import"},
		{"[server1\n", "no closing ]"},
	} {
		_, _, err := ImportMHA(tc.in, "x")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ImportMHA(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzImportMHA(f *testing.F) {
	f.Add(mhaConf)
	f.Add("[server1]\nhostname=a:b\n")
	f.Add("[server default]\npassword=\"x\"\n[server2]\nip=::1\nport=1\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, _, err := ImportMHA(in, "fz")
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteYAML(&buf, c, true); err != nil {
			t.Fatal(err)
		}
		// Whatever we print must read back as YAML with the same servers,
		// or fail validation with a clear error; never be mis-read.
		back, err := Parse(buf.Bytes(), Options{})
		if err != nil {
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if len(back.Clusters[0].Servers) != len(c.Clusters[0].Servers) {
			t.Fatalf("server count changed:\n%s", buf.String())
		}
		if back.Clusters[0].Password.Value() != c.Clusters[0].Password.Value() {
			t.Fatalf("password changed in round trip")
		}
	})
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{"h", "h:1", "[::1]:3306", "::1", "1.2.3.4", "a..b", ":3306"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeAddress(s)
		if err != nil {
			return
		}
		m, err := NormalizeAddress(n)
		if err != nil || m != n {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, n, m, err)
		}
	})
}

func TestProbeKind(t *testing.T) {
	if _, err := Parse([]byte(strings.Replace(good, "user: myha", "user: myha\n    probe: ping", 1)), Options{}); err == nil || !strings.Contains(err.Error(), "clusters[0].probe") {
		t.Fatalf("bad probe kind: %v", err)
	}
	c, _, err := ImportMHA("[server default]\nuser=u\nping_type=INSERT\n[server1]\nhostname=h\n", "x")
	if err != nil || c.Clusters[0].Probe != "write" {
		t.Fatalf("ping_type=INSERT must become probe: write: %v %+v", err, c)
	}
	for _, v := range []string{"INSERT", "SELECT", "CONNECT"} {
		_, notes, err := ImportMHA("[server default]\nuser=u\nping_type="+v+"\n[server1]\nhostname=h\n", "x")
		found := false
		for _, n := range notes {
			found = found || n.Line == 3 && strings.Contains(n.Message, "ping_type="+v+" became probe:")
		}
		if err != nil || !found {
			t.Fatalf("ping_type=%s: no note saying what it became: %v %+v", v, err, notes)
		}
	}
}

func TestFencingKey(t *testing.T) {
	c, err := Parse([]byte(good), Options{})
	if err != nil || c.Clusters[0].Failover.Fencing != "require" {
		t.Fatalf("default fencing must be require: %v %+v", err, c)
	}
	withFencing := func(v string) string {
		return strings.Replace(good, "user: myha", "user: myha\n    failover:\n      fencing: "+v, 1)
	}
	if c, err := Parse([]byte(withFencing("best_effort")), Options{}); err != nil || c.Clusters[0].Failover.Fencing != "best_effort" {
		t.Fatalf("best_effort: %v", err)
	}
	if _, err := Parse([]byte(withFencing("maybe")), Options{}); err == nil || !strings.Contains(err.Error(), "clusters[0].failover.fencing") {
		t.Fatalf("bad fencing value: %v", err)
	}
}

// A duration without a unit is an error naming the key, never nanoseconds.
func TestDurationNeedsUnit(t *testing.T) {
	y := "clusters:\n  - name: a\n    user: u\n    password: p\n    replication_user: r\n    replication_password: rp\n" +
		"    failover:\n      block_period: 3600\n    servers:\n      - address: 10.0.0.1\n"
	_, err := Parse([]byte(y), Options{})
	if err == nil || !strings.Contains(err.Error(), "clusters[0].failover.block_period") || !strings.Contains(err.Error(), "no unit") {
		t.Fatalf("block_period: 3600 gave %v", err)
	}
	ok := strings.Replace(y, "3600", "1h", 1)
	if c, err := Parse([]byte(ok), Options{}); err != nil || c.Clusters[0].Failover.BlockPeriod != time.Hour {
		t.Fatalf("block_period: 1h gave %v", err)
	}
}
