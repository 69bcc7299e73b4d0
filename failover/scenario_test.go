package failover

// Planner scenarios as data: every file in testdata/scenarios describes a
// cluster, a policy and a request, then the plan the planner makes for it.
// The format is documented in testdata/scenarios/README.md.
//
//	go test ./failover -run TestScenarios            compare
//	go test ./failover -run TestScenarios -update    rewrite the expected parts

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myha/myha/binlog"
	"github.com/myha/myha/topology"
)

var update = flag.Bool("update", false, "rewrite the expected part of testdata/scenarios/*.txt with the current output")

// scenarioSeparator ends a scenario's description; the expected output follows.
const scenarioSeparator = "----"

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/scenarios")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := parseScenario(string(raw))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			got := sc.run()
			if *update {
				if err := os.WriteFile(file, []byte(sc.header+scenarioSeparator+"\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !sc.hasExpected {
				t.Fatalf("%s: no %q line and expected output: run go test ./failover -run TestScenarios -update", file, scenarioSeparator)
			}
			if got != sc.want {
				t.Errorf("%s: output differs (run with -update to accept it, then review the diff)\n%s", file, lineDiff(sc.want, got))
			}
		})
	}
}

// scenario is one parsed file.
type scenario struct {
	header      string // the text before the separator, kept verbatim
	want        string
	hasExpected bool
	cluster     string
	pol         Policy
	req         Request
	states      []topology.ServerState
}

// run builds the snapshot the way discovery does, plans, and renders both.
func (sc *scenario) run() string {
	snap := topology.Build(sc.cluster, sc.states, time.Time{})
	plan := Build(&snap, sc.pol, sc.req)
	var b bytes.Buffer
	writeTopology(&b, &snap)
	plan.WriteText(&b)
	return b.String()
}

// writeTopology prints what topology.Build derived, so a reader can check
// that the scenario describes the cluster they meant.
func writeTopology(b *bytes.Buffer, snap *topology.Snapshot) {
	fmt.Fprintf(b, "topology: primary %s\n", orNone(snap.Primary))
	for _, v := range snap.Servers {
		fmt.Fprintf(b, "  %s  %s", v.Spec.Address, v.Role)
		if v.Source != "" {
			fmt.Fprintf(b, " of %s", v.Source)
		}
		if v.CoPrimaryOf != "" {
			fmt.Fprintf(b, " (pair with %s)", v.CoPrimaryOf)
		}
		if !v.Reachable {
			b.WriteString("  UNREACHABLE")
		} else if !v.ReadOnly && !v.SuperReadOnly {
			b.WriteString("  writable")
		}
		if len(v.Errant) > 0 {
			fmt.Fprintf(b, "  errant %s", strings.Join(v.Errant, ","))
		}
		b.WriteString("\n")
		for _, p := range v.Problems {
			fmt.Fprintf(b, "    ! %s\n", p)
		}
	}
	for _, p := range snap.Problems {
		fmt.Fprintf(b, "  ! %s\n", p)
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// parseScenario reads the description part and splits off the expected part.
func parseScenario(text string) (*scenario, error) {
	sc := &scenario{cluster: "c",
		pol: Policy{MaxLag: 30 * time.Second, CatchupTimeout: time.Minute, KillGrace: time.Second}}
	var header strings.Builder
	lines := bufio.NewScanner(strings.NewReader(text))
	lines.Buffer(nil, 1<<20)
	var desc []string
	for lines.Scan() {
		l := lines.Text()
		if l == scenarioSeparator {
			sc.hasExpected = true
			break
		}
		header.WriteString(l + "\n")
		desc = append(desc, l)
	}
	if sc.hasExpected {
		var want strings.Builder
		for lines.Scan() {
			want.WriteString(lines.Text() + "\n")
		}
		sc.want = want.String()
	}
	sc.header = header.String()
	if len(desc) == 0 || !strings.HasPrefix(desc[0], "# expected:") {
		return nil, errors.New(`the first line must be "# expected: <what a DBA expects here>"`)
	}
	if err := sc.parseDescription(desc); err != nil {
		return nil, err
	}
	return sc, nil
}

// directive is one logical line: a keyword and its key=value settings, with
// the continuation lines folded in.
type directive struct {
	line int
	word string
	arg  string // the word after server/cluster
	kv   [][2]string
}

func (sc *scenario) parseDescription(lines []string) error {
	var dirs []*directive
	for i, l := range lines {
		n := i + 1
		if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "" {
			continue
		}
		toks, err := tokens(l)
		if err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		indented := l[0] == ' ' || l[0] == '\t'
		if indented && toks[0] != "repl" {
			if len(dirs) == 0 {
				return fmt.Errorf("line %d: continuation line without a directive", n)
			}
			d := dirs[len(dirs)-1]
			if err := d.addKV(toks); err != nil {
				return fmt.Errorf("line %d: %v", n, err)
			}
			continue
		}
		d := &directive{line: n, word: toks[0]}
		rest := toks[1:]
		switch d.word {
		case "server", "cluster":
			if len(rest) == 0 || strings.Contains(rest[0], "=") {
				return fmt.Errorf("line %d: %s needs a name first", n, d.word)
			}
			d.arg, rest = rest[0], rest[1:]
		case "repl", "policy", "request":
		default:
			return fmt.Errorf("line %d: unknown directive %q (want cluster, policy, request, server, repl)", n, d.word)
		}
		if err := d.addKV(rest); err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		dirs = append(dirs, d)
	}

	// Servers first (replication defaults look up other servers), then the rest.
	type pending struct {
		st   *topology.ServerState
		set  map[string]bool
		conn []*directive
	}
	var servers []*pending
	sawRequest := false
	for _, d := range dirs {
		switch d.word {
		case "cluster":
			if len(d.kv) > 0 {
				return fmt.Errorf("line %d: cluster takes only a name", d.line)
			}
			sc.cluster = d.arg
		case "policy":
			for _, kv := range d.kv {
				if err := setPolicy(&sc.pol, kv[0], kv[1]); err != nil {
					return fmt.Errorf("line %d: %s: %v", d.line, kv[0], err)
				}
			}
		case "request":
			sawRequest = true
			for _, kv := range d.kv {
				if err := setRequest(&sc.req, kv[0], kv[1]); err != nil {
					return fmt.Errorf("line %d: %s: %v", d.line, kv[0], err)
				}
			}
		case "server":
			st := newServerState(d.arg)
			p := &pending{st: &st, set: map[string]bool{}}
			for _, kv := range d.kv {
				if err := setServer(p.st, kv[0], kv[1]); err != nil {
					return fmt.Errorf("line %d: %s: %v", d.line, kv[0], err)
				}
				p.set[kv[0]] = true
			}
			servers = append(servers, p)
		case "repl":
			if len(servers) == 0 {
				return fmt.Errorf("line %d: repl before any server", d.line)
			}
			p := servers[len(servers)-1]
			p.conn = append(p.conn, d)
		}
	}
	if !sawRequest || sc.req.Kind == "" {
		return errors.New("a request line with kind=failover|switchover is required")
	}
	if len(servers) == 0 {
		return errors.New("no servers")
	}

	idOf := map[string]uint32{}
	for _, p := range servers {
		if p.st.Reachable {
			idOf[p.st.Spec.Address] = p.st.ServerID
		}
	}
	for _, p := range servers {
		st := p.st
		if !st.Reachable {
			// Probe returns nothing but the error for a server it cannot
			// read: scenarios must not pretend to know more.
			for k := range p.set {
				switch k {
				case "reachable", "error", "answered", "candidate", "no_master", "priority":
				default:
					return fmt.Errorf("server %s: %s: an unreachable server has no state (discovery knows only the error)", st.Spec.Address, k)
				}
			}
			if len(p.conn) > 0 {
				return fmt.Errorf("server %s: an unreachable server has no replication connections (discovery cannot read them)", st.Spec.Address)
			}
			*st = topology.ServerState{Spec: st.Spec, Error: st.Error, Answered: st.Answered}
			if st.Error == "" {
				st.Error = "connect: connection refused"
			}
			sc.states = append(sc.states, *st)
			continue
		}
		if !p.set["gtid_current_pos"] {
			st.GTIDCurrentPos = st.GTIDSlavePos.Merge(st.GTIDBinlogPos)
		}
		for _, d := range p.conn {
			c := topology.ReplicaConn{IOState: "Yes", SQLRunning: true, UsingGTID: "Slave_Pos"}
			if st.Dialect.Flavor == binlog.MySQL {
				c.UsingGTID = "Auto_Position"
			}
			set := map[string]bool{}
			for _, kv := range d.kv {
				if err := setConn(&c, kv[0], kv[1]); err != nil {
					return fmt.Errorf("line %d: %s: %v", d.line, kv[0], err)
				}
				set[strings.ToLower(kv[0])] = true
			}
			if c.SourceHost == "" {
				return fmt.Errorf("line %d: repl needs source=host:port", d.line)
			}
			if !set["master_server_id"] {
				c.SourceServerID = idOf[c.Source()]
			}
			if !set["lag"] && c.IORunning() && c.SQLRunning {
				zero := int64(0)
				c.LagSeconds = &zero
			}
			if !set["gtid_io_pos"] && c.UsingGTID != "No" && st.Dialect.Flavor == binlog.MariaDB {
				c.GTIDIOPos = st.GTIDSlavePos
			}
			st.Replication = append(st.Replication, c)
		}
		sc.states = append(sc.states, *st)
	}
	return nil
}

func (d *directive) addKV(toks []string) error {
	for _, t := range toks {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q: want key=value", t)
		}
		d.kv = append(d.kv, [2]string{strings.ToLower(k), v})
	}
	return nil
}

// tokens splits a line on blanks; a value may be double-quoted to hold
// blanks (error="Got fatal error 1236"), with \" and \\ inside.
func tokens(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inTok, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted, inTok = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inTok {
		out = append(out, cur.String())
	}
	if len(out) == 0 {
		return nil, errors.New("empty line")
	}
	return out, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "on", "1", "true":
		return true, nil
	case "no", "off", "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes/no", v)
}

func setPolicy(p *Policy, k, v string) error {
	var err error
	switch k {
	case "max_lag":
		p.MaxLag, err = time.ParseDuration(v)
	case "catchup_timeout":
		p.CatchupTimeout, err = time.ParseDuration(v)
	case "kill_grace":
		p.KillGrace, err = time.ParseDuration(v)
	case "max_backlog":
		p.MaxBacklog, err = strconv.ParseInt(v, 10, 64)
	case "semi_sync":
		p.SemiSync = v
	case "vip":
		p.VIP = v
	case "vip_interface":
		p.VIPInterface = v
	case "ip_script":
		p.IPScript, err = parseBool(v)
	case "vip_by_agents":
		p.VIPByAgents, err = parseBool(v)
	default:
		return errors.New("unknown policy key")
	}
	return err
}

func setRequest(r *Request, k, v string) error {
	var err error
	switch k {
	case "kind":
		if v != string(KindFailover) && v != string(KindSwitchover) {
			return fmt.Errorf("%q: want failover or switchover", v)
		}
		r.Kind = Kind(v)
	case "force":
		r.Force, err = parseBool(v)
	case "new_primary":
		r.NewPrimary = v
	case "hypothetical":
		r.Hypothetical, err = parseBool(v)
	case "replicas_confirmed":
		r.ReplicasConfirmed, err = parseBool(v)
	default:
		return errors.New("unknown request key")
	}
	return err
}

// newServerState is a healthy MariaDB 10.11 server as the lab runs them:
// read-only, binlog and log_slave_updates on, GTID strict mode.
func newServerState(addr string) topology.ServerState {
	return topology.ServerState{Spec: topology.ServerSpec{Address: addr}, Reachable: true,
		Dialect:  topology.Dialect{Flavor: binlog.MariaDB, Major: 10, Minor: 11, Patch: 19},
		ReadOnly: true, LogBin: true, LogReplicaUpd: true, BinlogFormat: "ROW", GTIDStrictMode: true,
		Vars: map[string]string{}}
}

func setServer(s *topology.ServerState, k, v string) error {
	var err error
	b := func(dst *bool) { *dst, err = parseBool(v) }
	mpos := func(dst *binlog.MariaDBPos) { *dst, err = binlog.ParseMariaDBPos(v) }
	u32 := func(dst *uint32) {
		var n uint64
		n, err = strconv.ParseUint(v, 10, 32)
		*dst = uint32(n)
	}
	switch k {
	case "reachable":
		b(&s.Reachable)
	case "error":
		s.Error = v
	case "answered":
		b(&s.Answered)
	case "candidate":
		b(&s.Spec.Candidate)
	case "no_master":
		b(&s.Spec.NoMaster)
	case "priority":
		s.Spec.Priority, err = strconv.Atoi(v)
	case "server_id":
		u32(&s.ServerID)
	case "server_uuid":
		s.ServerUUID = v
	case "hostname":
		s.Hostname = v
	case "flavor":
		if v != string(binlog.MariaDB) && v != string(binlog.MySQL) {
			return fmt.Errorf("%q: want mariadb or mysql", v)
		}
		s.Dialect.Flavor = binlog.Flavor(v)
	case "version":
		var d topology.Dialect
		if d, err = topology.DialectFor(v, ""); err == nil {
			s.Dialect.Major, s.Dialect.Minor, s.Dialect.Patch = d.Major, d.Minor, d.Patch
			s.VersionRaw = v
		}
	case "read_only":
		b(&s.ReadOnly)
	case "super_read_only":
		b(&s.SuperReadOnly)
	case "log_bin":
		b(&s.LogBin)
	case "log_slave_updates":
		b(&s.LogReplicaUpd)
	case "binlog_format":
		s.BinlogFormat = v
	case "gtid_binlog_pos":
		mpos(&s.GTIDBinlogPos)
	case "gtid_slave_pos":
		mpos(&s.GTIDSlavePos)
	case "gtid_current_pos":
		mpos(&s.GTIDCurrentPos)
	case "gtid_strict_mode":
		b(&s.GTIDStrictMode)
	case "gtid_domain_id":
		u32(&s.GTIDDomainID)
	case "gtid_mode":
		s.GTIDMode = v
	case "gtid_executed":
		s.GTIDExecuted, err = binlog.ParseMySQLSet(v)
	case "master_status":
		s.BinlogCoord, err = binlog.ParseFilePos(v)
	case "rpl_semi_sync_master_enabled":
		b(&s.SemiSync.SourceEnabled)
	case "rpl_semi_sync_master_status":
		b(&s.SemiSync.SourceActive)
	case "rpl_semi_sync_master_clients":
		s.SemiSync.SourceClients, err = strconv.Atoi(v)
	case "rpl_semi_sync_slave_enabled":
		b(&s.SemiSync.ReplicaOn)
	case "rpl_semi_sync_slave_status":
		b(&s.SemiSync.ReplicaActive)
	default:
		name, ok := strings.CutPrefix(k, "var.")
		if !ok || name == "" {
			return errors.New("unknown server key")
		}
		s.Vars[name] = v
	}
	return err
}

// filterColumns are SHOW SLAVE STATUS's Replicate_* columns, as discovery
// stores them in ReplicaConn.Filters.
var filterColumns = []string{"Replicate_Do_DB", "Replicate_Ignore_DB", "Replicate_Do_Table", "Replicate_Ignore_Table",
	"Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table", "Replicate_Rewrite_DB", "Replicate_Do_Domain_Ids",
	"Replicate_Ignore_Domain_Ids", "Replicate_Ignore_Server_Ids"}

func setConn(c *topology.ReplicaConn, k, v string) error {
	var err error
	i64 := func(dst *int64) { *dst, err = strconv.ParseInt(v, 10, 64) }
	u64 := func(dst *uint64) { *dst, err = strconv.ParseUint(v, 10, 64) }
	switch k {
	case "connection_name":
		c.Name = v
	case "source":
		host, port, ok := strings.Cut(v, ":")
		if !ok {
			return errors.New("want host:port")
		}
		c.SourceHost = host
		c.SourcePort, err = strconv.Atoi(port)
	case "master_server_id":
		var n uint64
		n, err = strconv.ParseUint(v, 10, 32)
		c.SourceServerID = uint32(n)
	case "master_uuid":
		c.SourceUUID = v
	case "io":
		switch v {
		case "Yes", "No", "Connecting", "Preparing":
			c.IOState = v
		default:
			return fmt.Errorf("%q: want Yes, No, Connecting or Preparing", v)
		}
	case "sql":
		c.SQLRunning, err = parseBool(v)
	case "last_io_errno":
		c.LastIOErrno, err = strconv.Atoi(v)
	case "last_io_error":
		c.LastIOError = v
	case "last_sql_errno":
		c.LastSQLErrno, err = strconv.Atoi(v)
	case "last_sql_error":
		c.LastSQLError = v
	case "lag":
		if strings.EqualFold(v, "NULL") {
			c.LagSeconds = nil
			return nil
		}
		var n int64
		i64(&n)
		c.LagSeconds = &n
	case "sql_delay":
		i64(&c.SQLDelay)
	case "using_gtid":
		c.UsingGTID = v
	case "gtid_io_pos":
		c.GTIDIOPos, err = binlog.ParseMariaDBPos(v)
	case "retrieved_gtid_set":
		c.RetrievedSet, err = binlog.ParseMySQLSet(v)
	case "executed_gtid_set":
		c.ExecutedSet, err = binlog.ParseMySQLSet(v)
	case "master_log_file":
		c.ReadCoord.File = v
	case "read_master_log_pos":
		u64(&c.ReadCoord.Pos)
	case "relay_master_log_file":
		c.ExecCoord.File = v
	case "exec_master_log_pos":
		u64(&c.ExecCoord.Pos)
	case "heartbeat_period":
		c.HeartbeatSecs, err = strconv.ParseFloat(v, 64)
	case "received_heartbeats":
		i64(&c.Heartbeats)
	case "connect_retry":
		c.ConnectRetry, err = strconv.Atoi(v)
	default:
		for _, f := range filterColumns {
			if strings.EqualFold(k, f) {
				if c.Filters == nil {
					c.Filters = map[string]string{}
				}
				c.Filters[f] = v
				return nil
			}
		}
		return errors.New("unknown replication key")
	}
	return err
}

func TestScenarioParser(t *testing.T) {
	ok := "# expected: x\nrequest kind=failover\nserver db1:3306 reachable=no\nserver db2:3306 server_id=2\n    gtid_slave_pos=0-1-5 gtid_binlog_pos=0-1-5\n  repl source=db1:3306 io=Connecting last_io_error=\"a \\\"b\\\" c\" Replicate_Do_DB=app\n----\nout\n"
	sc, err := parseScenario(ok)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.states) != 2 || sc.states[0].Reachable || sc.states[0].Error == "" || sc.want != "out\n" || !sc.hasExpected {
		t.Fatalf("parsed %+v", sc)
	}
	c := sc.states[1].Replication[0]
	if c.LastIOError != `a "b" c` || c.Filters["Replicate_Do_DB"] != "app" || c.LagSeconds != nil || c.GTIDIOPos.String() != "0-1-5" ||
		sc.states[1].GTIDCurrentPos.String() != "0-1-5" {
		t.Fatalf("connection %+v, current %s", c, sc.states[1].GTIDCurrentPos)
	}
	for _, bad := range []string{
		"request kind=failover\nserver db1:3306\n",                                                 // no "# expected:" line
		"# expected: x\nserver db1:3306\n",                                                         // no request
		"# expected: x\nrequest kind=failover\nserver db1:3306 colour=blue\n",                      // unknown key
		"# expected: x\nrequest kind=failover\nserver db1:3306 reachable=no server_id=1\n",         // state on a dead server
		"# expected: x\nrequest kind=failover\nserver db1:3306\n  repl io=Yes\n",                   // repl without source
		"# expected: x\nrequest kind=failover\nserver db1:3306 error=\"unterminated\n",             // quote
		"# expected: x\nrequest kind=takeover\nserver db1:3306\n",                                  // bad kind
		"# expected: x\nrequest kind=failover\nserver db1:3306 gtid_binlog_pos=zero\n",             // bad position
		"# expected: x\nrequest kind=failover\nrepl source=db1:3306\nserver db1:3306\n",            // repl first
		"# expected: x\nrequest kind=failover\nserver db1:3306\n  repl source=db1:3306 io=maybe\n", // bad IO state
	} {
		if _, err := parseScenario(bad); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}
