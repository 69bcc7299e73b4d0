package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ImportNote is something about an MHA file the user should know: a key
// myha does not carry over, or a setting that changes meaning.
type ImportNote struct {
	Line    int
	Message string
}

// String renders the note with its line number, when known.
func (n ImportNote) String() string {
	if n.Line > 0 {
		return fmt.Sprintf("line %d: %s", n.Line, n.Message)
	}
	return n.Message
}

// mhaLater are MHA keys whose job myha does differently; each gets a note.
var mhaLater = map[string]string{
	"master_ip_failover_script":      "",
	"master_ip_online_change_script": "",
	"shutdown_script":                "",
	"report_script":                  "",
	"secondary_check_script":         "myha confirms a dead primary through its other monitors and the replicas instead",
	"ssh_user":                       "myha uses no SSH: MariaDB GTID replication needs no relay-log copying",
	"ssh_port":                       "myha uses no SSH",
	"ssh_host":                       "myha uses no SSH",
	"ssh_options":                    "myha uses no SSH",
	"master_binlog_dir":              "myha uses no SSH to rescue binlogs",
	"remote_workdir":                 "myha uses no SSH",
	"manager_workdir":                "myha keeps its state in state_dir",
	"manager_log":                    "myha logs to stderr (journald under systemd)",
	"ping_type":                      "",
	"check_repl_delay":               "use failover.max_lag",
	"latest_priority":                "myha always prefers the most advanced replica, then candidate and priority",
	"ignore_fail":                    "myha never blocks a failover on an unreachable replica; it reports it as lost",
	"last_failover_minute":           "use failover.block_period",
	"multi_tier_slave":               "myha discovers intermediate replicas itself",
	"log_level":                      "use --log-level",
	"client_bindir":                  "not needed",
	"client_libdir":                  "not needed",
	"skip_init_ssh_check":            "myha uses no SSH",
	"skip_reset_slave":               "myha resets replication on the new primary",
	"use_gtid_auto_pos":              "myha always uses GTID positioning",
	"hostname":                       "",
	"ip":                             "",
	"port":                           "",
	"user":                           "",
	"password":                       "",
	"repl_user":                      "",
	"repl_password":                  "",
	"candidate_master":               "",
	"no_master":                      "",
	"ping_interval":                  "",
}

var mhaServerSection = regexp.MustCompile(`^server[A-Za-z0-9_.-]*$`)

// ImportMHA converts an MHA application config (INI) into one myha cluster.
// It returns notes for every key it does not carry over. Credentials may be
// per server in MHA but are per cluster in myha: differing ones are an error.
func ImportMHA(text, clusterName string) (*Config, []ImportNote, error) {
	secs, err := parseINI(text)
	if err != nil {
		return nil, nil, err
	}
	var notes []ImportNote
	cl := Cluster{Name: clusterName}
	report := ""
	var def *iniSection
	for i := range secs {
		if secs[i].Name == "server default" {
			def = &secs[i]
		}
	}
	if def == nil {
		def = &iniSection{Name: "server default"}
	}
	if len(secs[0].Keys) > 0 {
		return nil, nil, fmt.Errorf("line %d: key %q is outside any section (MHA keys go under [server default] or [serverN])", secs[0].Keys[0].Line, secs[0].Keys[0].Name)
	}
	// credentials: defaults, then per-server values must agree
	creds := map[string]iniKey{}
	for _, k := range []string{"user", "password", "repl_user", "repl_password"} {
		if kv, ok := def.get(k); ok {
			creds[k] = kv
		}
	}
	for _, kv := range def.Keys {
		switch kv.Name {
		case "master_ip_failover_script":
			cl.Failover.MasterIPFailoverScript = kv.Value
		case "master_ip_online_change_script":
			cl.Failover.MasterIPOnlineChangeScript = kv.Value
		case "shutdown_script":
			cl.Failover.ShutdownScript = kv.Value
		case "report_script":
			report = kv.Value
			notes = append(notes, ImportNote{kv.Line, "report_script became notify.report_script: run after each failover and switchover with MHA's arguments (--orig_master_host, --new_master_host, --new_slave_hosts, --subject, --body); notify.webhook can also POST every state change as JSON"})
		case "ping_type":
			switch strings.ToUpper(kv.Value) {
			case "INSERT":
				cl.Probe = "write"
				notes = append(notes, ImportNote{kv.Line, "ping_type=INSERT became probe: write (each monitor upserts its row in myha.heartbeat on the primary)"})
			case "SELECT", "CONNECT", "":
				cl.Probe = "select"
				notes = append(notes, ImportNote{kv.Line, fmt.Sprintf("ping_type=%s became probe: select (myha connects and reads the server's replication state; use probe: write to also prove it can commit)", kv.Value)})
			default:
				return nil, nil, fmt.Errorf("line %d: ping_type=%q: MHA knows SELECT, CONNECT and INSERT", kv.Line, kv.Value)
			}
		case "ping_interval":
			n, err := strconv.Atoi(kv.Value)
			if err != nil || n < 1 {
				return nil, nil, fmt.Errorf("line %d: ping_interval=%q is not a whole number of seconds", kv.Line, kv.Value)
			}
			cl.CheckInterval = time.Duration(n) * time.Second
			if n > 1 {
				notes = append(notes, ImportNote{kv.Line, fmt.Sprintf("ping_interval=%d became check_interval: %ds; myha detects faster with 1s (it confirms through other monitors and the replicas, so a short interval does not cause false failovers)", n, n)})
			}
		default:
			noteKey(&notes, kv)
		}
	}
	for i := range secs {
		s := &secs[i]
		if s.Name == "" || s == def {
			continue
		}
		if !mhaServerSection.MatchString(s.Name) {
			notes = append(notes, ImportNote{s.Line, fmt.Sprintf("section [%s] ignored (MHA servers are [serverN])", s.Name)})
			continue
		}
		host := ""
		if kv, ok := s.get("hostname"); ok {
			host = kv.Value
		}
		if kv, ok := s.get("ip"); ok && host == "" {
			host = kv.Value
		}
		if host == "" {
			return nil, nil, fmt.Errorf("line %d: [%s] has no hostname", s.Line, s.Name)
		}
		port := DefaultPort
		if kv, ok := s.get("port"); ok {
			p, err := strconv.Atoi(kv.Value)
			if err != nil || p < 1 || p > 65535 {
				return nil, nil, fmt.Errorf("line %d: [%s] port=%q is not 1-65535", kv.Line, s.Name, kv.Value)
			}
			port = p
		}
		srv := Server{Address: net.JoinHostPort(host, strconv.Itoa(port))}
		for _, kv := range s.Keys {
			switch kv.Name {
			case "hostname", "ip", "port":
			case "candidate_master":
				srv.Candidate = mhaBool(kv.Value)
			case "no_master":
				srv.NoMaster = mhaBool(kv.Value)
			case "user", "password", "repl_user", "repl_password":
				if prev, ok := creds[kv.Name]; ok && prev.Value != kv.Value {
					return nil, nil, fmt.Errorf("line %d: [%s] sets its own %s, different from line %d; myha uses one %s per cluster: make them equal", kv.Line, s.Name, kv.Name, prev.Line, kv.Name)
				}
				creds[kv.Name] = kv
			default:
				noteKey(&notes, kv)
			}
		}
		if srv.Candidate && srv.NoMaster {
			return nil, nil, fmt.Errorf("line %d: [%s] sets both candidate_master and no_master", s.Line, s.Name)
		}
		cl.Servers = append(cl.Servers, srv)
	}
	if len(cl.Servers) == 0 {
		return nil, nil, fmt.Errorf("no [serverN] sections: nothing to import")
	}
	cl.User = creds["user"].Value
	cl.Password = Secret(creds["password"].Value)
	cl.ReplicationUser = creds["repl_user"].Value
	cl.ReplicationPassword = Secret(creds["repl_password"].Value)
	if cl.User == "" {
		cl.User = "root"
		notes = append(notes, ImportNote{0, "no user= set; MHA's default 'root' was used: create a dedicated myha account (see README: privileges)"})
	}
	if cl.ReplicationUser == "" {
		notes = append(notes, ImportNote{0, "no repl_user= set: set replication_user in the output"})
	}
	return &Config{Clusters: []Cluster{cl}, Notify: Notify{ReportScript: report}}, notes, nil
}

func noteKey(notes *[]ImportNote, kv iniKey) {
	why, known := mhaLater[kv.Name]
	switch {
	case !known:
		*notes = append(*notes, ImportNote{kv.Line, fmt.Sprintf("%s: unknown MHA key, not imported", kv.Name)})
	case why != "":
		*notes = append(*notes, ImportNote{kv.Line, fmt.Sprintf("%s not imported: %s", kv.Name, why)})
	}
}

func mhaBool(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}
