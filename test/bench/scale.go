package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/myha/myha/test/fakeserver"
)

// scaleOpts choose the sizing run: cluster counts, monitors, and how long
// the steady state is measured.
type scaleOpts struct {
	ns       []int
	monitors int
	window   time.Duration
	bin      string // a prebuilt myha, or "" to build one
	// kills is how many clusters' primaries are killed, one after the
	// other, for the detection figures.
	kills int
	// profileDir, when set, gets each monitor's CPU profile of the run,
	// and the fakes' (this process's) of the steady state.
	profileDir string
}

// benchScale is the sizing simulation. The servers are FAKES
// (test/fakeserver: the real MySQL wire protocol from go-mysql's server
// package, scripted MariaDB state, all on 127.0.0.1, in this process):
// thousands of real mariadbd do not fit a 2-core machine. The monitors are
// real `myha daemon` processes with real memberlist and raft on loopback.
// For each N it measures a steady state of N clusters × 3 servers, then
// kills one cluster's primary (its replicas report their IO thread
// reconnecting at the same moment, as real replicas would within their
// heartbeat) and times the leader's dead verdict and the fake failover's
// read_only=0 on the new primary.
func benchScale(ctx context.Context, o scaleOpts) error {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	bin := o.bin
	if bin == "" {
		b, cleanup, err := buildMyha()
		if err != nil {
			return err
		}
		defer cleanup()
		bin = b
	}
	fmt.Printf("scale: %d monitor(s) (real myha daemon processes, memberlist + raft on loopback) against N clusters × 3 FAKE servers\n", o.monitors)
	fmt.Printf("  (fakes: test/fakeserver on 127.0.0.1 in the bench process; check_interval 1s, down_after 1s, fencing best_effort; steady state %s)\n", o.window)
	fmt.Printf("  %-5s %-8s %-17s %-13s %-13s %-9s %-7s %-7s %-11s %-9s %-12s %-16s %-10s %s\n", "N", "rounds/s", "round p50/p99", "CPU s/s/mon", "CPU/1k rnd/s", "RSS MB", "gorout", "sockets", "gossip KB/s", "raft e/h", "api ms", "kill→dead ms", "→write ms", "fakes CPU")
	for _, n := range o.ns {
		r, err := scaleRun(ctx, bin, n, o)
		if err != nil {
			return fmt.Errorf("N=%d: %w", n, err)
		}
		perK := 0.0
		if r.rounds > 0 {
			perK = mean(r.cpu) / r.rounds * 1000
		}
		fmt.Printf("  %-5d %-8.0f %-17s %-13s %-13s %-9s %-7s %-7s %-11s %-9s %-12s %-16s %-10s %.2f\n", n, r.rounds,
			fmt.Sprintf("%.1f/%.1f ms", r.p50*1000, r.p99*1000), maxMean(r.cpu, "%.2f"), fmt.Sprintf("%.2f", perK), maxMean(r.rss, "%.0f"), maxMean(r.gor, "%.0f"),
			maxMean(r.socks, "%.0f"), maxMean(r.gossip, "%.0f"), fmt.Sprintf("%.0f", r.raftPerHour),
			fmt.Sprintf("%.0f/%.0f", r.api[len(r.api)/2], r.api[len(r.api)-1]), msSpread(r.dead), msSpread(r.writable), r.fakesCPU)
	}
	fmt.Println("  (rounds/s: probe rounds of clusters per second per monitor, N at full rate; per monitor: max/mean over monitors; CPU/1k rnd/s: mean CPU per monitor divided by its probe rounds, scaled to 1,000 rounds a second (a projection where the machine starved the run); api = GET /api/clusters to its last byte, median/max of 5; kill→dead and →write: median/max over the killed primaries, one cluster at a time (n=count); raft e/h = log entries per hour in steady state)")
	return nil
}

func maxMean(v []float64, f string) string {
	if len(v) == 0 {
		return "-"
	}
	sum, mx := 0.0, v[0]
	for _, x := range v {
		sum += x
		mx = max(mx, x)
	}
	if len(v) == 1 {
		return fmt.Sprintf(f, mx)
	}
	return fmt.Sprintf(f+"/"+f, mx, sum/float64(len(v)))
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

// msSpread is "median/max (n=count)" of durations, "none" for a kill
// that got no answer in time counted as missing.
func msSpread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	v := slices.Clone(ds)
	slices.Sort(v)
	return fmt.Sprintf("%d/%d (n=%d)", v[len(v)/2].Milliseconds(), v[len(v)-1].Milliseconds(), len(v))
}

type scaleResult struct {
	p50, p99                     float64
	rounds                       float64 // probe rounds per second per monitor
	cpu, rss, gor, socks, gossip []float64
	raftPerHour                  float64
	api                          []float64
	dead, writable               []time.Duration
	fakesCPU                     float64
}

type scaleCluster struct {
	name    string
	servers [3]*fakeserver.Server
}

var scaleCols = []string{"Connection_name", "Master_Host", "Master_Port", "Master_Server_Id", "Slave_IO_Running", "Slave_SQL_Running",
	"Seconds_Behind_Master", "Using_Gtid", "Gtid_IO_Pos", "Slave_received_heartbeats", "Last_SQL_Error", "Last_IO_Error"}

// scaleState is a FAKE MariaDB 10.11: a primary (primary == "") or a
// replica of primary (server_id primaryID) with its IO thread in io.
func scaleState(id, primaryID int, primary, io string) fakeserver.State {
	st := fakeserver.State{Version: "10.11.19-MariaDB-log", Comment: "fake",
		Vars: map[string]string{"server_id": fmt.Sprint(id), "read_only": "ON", "log_bin": "ON", "log_slave_updates": "ON",
			"binlog_format": "ROW", "gtid_strict_mode": "ON", "gtid_binlog_pos": "0-1-10", "gtid_slave_pos": "0-1-10", "gtid_current_pos": "0-1-10"},
		// Uptime, as every real server reports it: the routine probe
		// reuses slow-changing facts only from a server not restarted since.
		Status: map[string]string{"Uptime": "100000"}, ReplicaColumns: scaleCols, BinlogFile: "mysql-bin.000001", BinlogPos: 4}
	if primary == "" {
		st.Vars["read_only"] = "OFF"
		return st
	}
	host, port, _ := net.SplitHostPort(primary)
	st.ReplicaRows = []map[string]string{{"Connection_name": "", "Master_Host": host, "Master_Port": port, "Master_Server_Id": fmt.Sprint(primaryID),
		"Slave_IO_Running": io, "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": "0", "Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-1-10",
		"Slave_received_heartbeats": "5", "Last_SQL_Error": "", "Last_IO_Error": ""}}
	return st
}

var writableStmt = regexp.MustCompile(`(?i)^SET GLOBAL read_only\s*=\s*(0|OFF)`)

func scaleRun(ctx context.Context, bin string, n int, o scaleOpts) (*scaleResult, error) {
	res := &scaleResult{}
	var clusters []*scaleCluster
	defer func() {
		for _, c := range clusters {
			for _, s := range c.servers {
				if s != nil {
					s.Kill()
				}
			}
		}
	}()
	kills := min(max(o.kills, 1), n)
	var wroteAt sync.Map // cluster name → first time of read_only=0 on one of its servers
	for i := 0; i < n; i++ {
		c := &scaleCluster{name: fmt.Sprintf("c%04d", i)}
		for j := 0; j < 3; j++ {
			primary := ""
			if j > 0 {
				primary = c.servers[0].Addr()
			}
			s, err := fakeserver.Start("myha", "pw", scaleState(3*i+j+1, 3*i+1, primary, "Yes"))
			if err != nil {
				return nil, err
			}
			s.NoLog.Store(true)
			if i < kills && j > 0 {
				name := c.name
				s.OnQuery = func(q string) (*mysql.Result, bool, error) {
					if writableStmt.MatchString(strings.TrimSpace(q)) {
						wroteAt.LoadOrStore(name, time.Now())
					}
					return nil, false, nil
				}
			}
			c.servers[j] = s
		}
		clusters = append(clusters, c)
	}
	dir, err := os.MkdirTemp("", "myha-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ports := freePorts(3 * o.monitors)
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\nsecurity:\n  insecure: true\nmonitors:\n", dir)
	var apis []string
	for m := 0; m < o.monitors; m++ {
		fmt.Fprintf(&b, "  - name: m%d\n    address: 127.0.0.1\n    gossip_port: %d\n    raft_port: %d\n    api_port: %d\n", m+1, ports[3*m], ports[3*m+1], ports[3*m+2])
		apis = append(apis, fmt.Sprintf("http://127.0.0.1:%d", ports[3*m+2]))
	}
	b.WriteString("clusters:\n")
	for _, c := range clusters {
		fmt.Fprintf(&b, "  - name: %s\n    user: myha\n    password: pw\n    replication_user: repl\n    replication_password: r\n    check_interval: 1s\n    failover:\n      down_after: 1s\n      fencing: best_effort\n    servers:\n", c.name)
		for _, s := range c.servers {
			fmt.Fprintf(&b, "      - address: %s\n", s.Addr())
		}
	}
	cfg := filepath.Join(dir, "scale.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	type mon struct {
		cmd  *exec.Cmd
		dead *sync.Map // cluster name → when its log first said dead_primary
	}
	var mons []*mon
	defer func() {
		for _, m := range mons {
			m.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, m := range mons {
			done := make(chan struct{})
			go func() { m.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				m.cmd.Process.Kill()
				<-done
			}
		}
	}()
	for m := 0; m < o.monitors; m++ {
		args := []string{"daemon", "--name", fmt.Sprintf("m%d", m+1), "--config", cfg, "--log-format", "json"}
		if o.profileDir != "" {
			args = append(args, "--cpu-profile", filepath.Join(o.profileDir, fmt.Sprintf("cpu-N%d-m%d.pprof", n, m+1)))
		}
		cmd := exec.Command(bin, args...)
		logf, err := os.Create(filepath.Join(os.TempDir(), fmt.Sprintf("myha-scale-N%d-m%d.log", n, m+1)))
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		pipe, err := cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		mn := &mon{cmd: cmd, dead: &sync.Map{}}
		mons = append(mons, mn)
		go scanLog(pipe, logf, mn.dead)
	}
	// Every monitor sees N healthy clusters, and one leads.
	deadline := time.Now().Add(90*time.Second + time.Duration(n)*30*time.Millisecond)
	for {
		ok := true
		for _, a := range apis {
			if healthyClusters(a) != n {
				ok = false
				break
			}
		}
		if ok && leaderIndex(apis) >= 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("monitors not all healthy on %d clusters in time (logs in %s/myha-scale-N%d-m*.log)", n, os.TempDir(), n)
		}
		for _, m := range mons {
			if m.cmd.ProcessState != nil {
				return nil, fmt.Errorf("a monitor exited")
			}
		}
		time.Sleep(time.Second)
	}
	time.Sleep(3 * time.Second) // past the first rounds' connects
	// Steady state.
	type sample struct {
		cpu, gossip, raft float64
		buckets           map[float64]float64
	}
	take := func() ([]sample, float64) {
		var out []sample
		for i, m := range mons {
			met := metricsOf(apis[i])
			out = append(out, sample{cpu: procCPU(m.cmd.Process.Pid), gossip: met.scalar["myha_gossip_sent_bytes_total"], raft: met.scalar["myha_raft_last_index"], buckets: met.buckets})
		}
		return out, procCPU(os.Getpid())
	}
	s0, f0 := take()
	t0 := time.Now()
	if o.profileDir != "" {
		stop, err := profileSelf(filepath.Join(o.profileDir, fmt.Sprintf("cpu-N%d-fakes.pprof", n)))
		if err != nil {
			return nil, err
		}
		time.Sleep(o.window)
		stop()
	} else {
		time.Sleep(o.window)
	}
	s1, f1 := take()
	el := time.Since(t0).Seconds()
	res.fakesCPU = (f1 - f0) / el
	total := map[float64]float64{}
	for i, m := range mons {
		res.cpu = append(res.cpu, (s1[i].cpu-s0[i].cpu)/el)
		res.gossip = append(res.gossip, (s1[i].gossip-s0[i].gossip)/el/1024)
		res.raftPerHour = max(res.raftPerHour, (s1[i].raft-s0[i].raft)/el*3600)
		rss, _ := procMem(m.cmd.Process.Pid)
		res.rss = append(res.rss, rss)
		res.socks = append(res.socks, float64(sockets(m.cmd.Process.Pid)))
		res.gor = append(res.gor, metricsOf(apis[i]).scalar["go_goroutines"])
		for le, c := range s1[i].buckets {
			total[le] += c - s0[i].buckets[le]
		}
	}
	res.p50, res.p99 = quantile(total, 0.5), quantile(total, 0.99)
	res.rounds = total[math.Inf(1)] / el / float64(len(mons))
	for k := 0; k < 5; k++ {
		d, err := timeGet(apis[0] + "/api/clusters")
		if err != nil {
			return nil, fmt.Errorf("GET /api/clusters: %w", err)
		}
		res.api = append(res.api, float64(d.Microseconds())/1000)
	}
	slices.Sort(res.api)
	// Detection: one cluster at a time, its primary dies and its
	// replicas lose it; the leader's verdict and the fake failover's
	// read_only=0 are timed.
	li := leaderIndex(apis)
	if li < 0 {
		return nil, fmt.Errorf("no leader before the kill")
	}
	for k := 0; k < kills; k++ {
		v := clusters[k]
		kill := time.Now()
		v.servers[0].Kill()
		for j := 1; j < 3; j++ {
			v.servers[j].SetState(scaleState(3*k+j+1, 3*k+1, v.servers[0].Addr(), "Connecting"))
		}
		if at, ok := waitFor(mons[li].dead, v.name, 20*time.Second); ok {
			res.dead = append(res.dead, at.Sub(kill))
		}
		if at, ok := waitFor(&wroteAt, v.name, 15*time.Second); ok {
			res.writable = append(res.writable, at.Sub(kill))
		}
	}
	return res, nil
}

// waitFor polls m for key's time until the deadline.
func waitFor(m *sync.Map, key string, within time.Duration) (time.Time, bool) {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if v, ok := m.Load(key); ok {
			return v.(time.Time), true
		}
	}
	return time.Time{}, false
}

// scanLog copies a monitor's JSON log to a file and records when it first
// judged each cluster's primary dead.
func scanLog(r io.Reader, w io.Writer, dead *sync.Map) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		at := time.Now()
		w.Write(append(line, '\n'))
		if !strings.Contains(string(line), `"primary state"`) {
			continue
		}
		var e struct{ Cluster, State string }
		if json.Unmarshal(line, &e) == nil && e.State == "dead_primary" {
			dead.LoadOrStore(e.Cluster, at)
		}
	}
	io.Copy(w, r)
}

func healthyClusters(api string) int {
	var v struct {
		Clusters []struct{ State string } `json:"clusters"`
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(api + "/api/clusters")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(&v) != nil {
		return -1
	}
	h := 0
	for _, c := range v.Clusters {
		if c.State == "healthy" {
			h++
		}
	}
	return h
}

// timeGet is the time from sending a GET to its answer's last byte (the
// body is read, not decoded).
func timeGet(url string) (time.Duration, error) {
	c := http.Client{Timeout: 10 * time.Second}
	t := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return time.Since(t), nil
}

func leaderIndex(apis []string) int {
	for i, a := range apis {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(a + "/leader")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return i
		}
	}
	return -1
}

type metricSet struct {
	scalar  map[string]float64
	buckets map[float64]float64 // myha_probe_round_seconds le → cumulative count
}

// metricsOf reads the few unlabelled series a sizing run needs from a
// monitor's /metrics.
func metricsOf(api string) metricSet {
	out := metricSet{scalar: map[string]float64{}, buckets: map[float64]float64{}}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(api + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch {
		case f[0] == "go_goroutines" || f[0] == "myha_gossip_sent_bytes_total" || f[0] == "myha_raft_last_index":
			out.scalar[f[0]] = v
		case strings.HasPrefix(f[0], `myha_probe_round_seconds_bucket{le="`):
			le := strings.TrimSuffix(strings.TrimPrefix(f[0], `myha_probe_round_seconds_bucket{le="`), `"}`)
			if x, err := strconv.ParseFloat(le, 64); err == nil {
				out.buckets[x] = v
			} else if le == "+Inf" {
				out.buckets[math.Inf(1)] = v
			}
		}
	}
	return out
}

// quantile interpolates linearly inside the histogram bucket holding q.
func quantile(cum map[float64]float64, q float64) float64 {
	var les []float64
	for le := range cum {
		les = append(les, le)
	}
	slices.Sort(les)
	if len(les) == 0 || cum[les[len(les)-1]] == 0 {
		return 0
	}
	want := q * cum[les[len(les)-1]]
	prevLE, prevC := 0.0, 0.0
	for _, le := range les {
		if cum[le] >= want {
			if math.IsInf(le, 1) {
				return prevLE
			}
			if cum[le] == prevC {
				return le
			}
			return prevLE + (le-prevLE)*(want-prevC)/(cum[le]-prevC)
		}
		prevLE, prevC = le, cum[le]
	}
	return prevLE
}

// procCPU is a process's user+system CPU seconds so far.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

// sockets counts a process's open sockets (TCP and UDP, listening included).
func sockets(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// profileSelf profiles this process (the fakes) until stop.
func profileSelf(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
