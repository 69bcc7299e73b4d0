package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/myha/myha/test/lab"
)

// The fault matrix: each test runs real servers in namespaces with an
// agent on every database host and three monitors, injects one fault (a
// zone split, a packet-drop partition both ways or one way, a paused agent,
// a paused raft leader, monitors cut from an idle primary) and runs the
// split-brain sampler throughout. The sampler fails the test on any sample
// with two writable servers, two servers accepting an application write,
// or two VIP holders.

// brainSampler records, every 50 ms, each server's read_only, which hosts
// hold the VIP, and which servers accepted a probe write from the
// application account (lab.AppUser, which read_only stops).
type brainSampler struct {
	v      *vipLab
	writes bool
	apps   map[string]*sql.DB
	stop   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	n        int
	lines    []string
	bad      []int // indexes into lines
	lastOK   time.Time
	outage   time.Duration
	firstAcc map[string]time.Time // server → first sample it accepted a write
	firstVIP map[string]time.Time // server → first sample its host held the VIP
	started  time.Time
	finished bool
}

// splitBrainSampler starts the sampler; writes turns the probe writes on
// (off for an idle primary: they would make it busy).
func (v *vipLab) splitBrainSampler(t testing.TB, writes bool) *brainSampler {
	t.Helper()
	s := &brainSampler{v: v, writes: writes, apps: map[string]*sql.DB{}, stop: make(chan struct{}), firstAcc: map[string]time.Time{}, firstVIP: map[string]time.Time{}}
	if writes {
		must(t, v.Server("db1").Exec(context.Background(), "CREATE TABLE IF NOT EXISTS lab.probe (id BIGINT PRIMARY KEY, srv VARCHAR(8) NOT NULL, at DATETIME(6) NOT NULL) ENGINE=InnoDB"))
		must(t, v.WaitReplicated(context.Background(), 20*time.Second))
		for _, srv := range v.Servers {
			// Over the server's own socket: the sampler sees every server
			// whatever the partition, as a client on its host would.
			db, err := appDB(srv)
			must(t, err)
			s.apps[srv.Name] = db
		}
	}
	s.started, s.lastOK = time.Now(), time.Now()
	s.wg.Add(1)
	go s.loop()
	t.Cleanup(func() { s.finish(t) })
	return s
}

// appDB connects as the application account (lab.AppUser, which
// read_only stops) over srv's own socket, every call bounded by 300 ms.
func appDB(srv *lab.Server) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = lab.AppUser, lab.AppPass, "unix", srv.Socket
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(1)
	return db, nil
}

type serverSample struct {
	writable, accepted, vip bool
}

func (s *brainSampler) loop() {
	defer s.wg.Done()
	var seq int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		seq++
		at := time.Now()
		res := make([]serverSample, len(s.v.Servers))
		var wg sync.WaitGroup
		for i, srv := range s.v.Servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = s.sampleServer(srv, seq*10+int64(i))
			}()
		}
		wg.Wait()
		var ro, vip, acc []string
		writers, holders, accepted := 0, 0, 0
		for i, srv := range s.v.Servers {
			r := res[i]
			mark := "1"
			if r.writable {
				mark = "0"
				writers++
			}
			ro = append(ro, srv.Name+":"+mark)
			if r.vip {
				vip = append(vip, srv.Name)
				holders++
				s.mu.Lock()
				if _, ok := s.firstVIP[srv.Name]; !ok {
					s.firstVIP[srv.Name] = at
				}
				s.mu.Unlock()
			}
			if r.accepted {
				acc = append(acc, srv.Name)
				accepted++
				s.mu.Lock()
				if _, ok := s.firstAcc[srv.Name]; !ok {
					s.firstAcc[srv.Name] = at
				}
				s.mu.Unlock()
			}
		}
		line := fmt.Sprintf("%s read_only=[%s] vip=%v accepted=%v", at.Format("15:04:05.000"), strings.Join(ro, " "), vip, acc)
		s.mu.Lock()
		s.n++
		s.lines = append(s.lines, line)
		if writers > 1 || holders > 1 || accepted > 1 {
			s.bad = append(s.bad, len(s.lines)-1)
		}
		if s.writes && accepted > 0 {
			// The write outage: the longest time between two samples
			// where some server accepted the application's write.
			if gap := at.Sub(s.lastOK); gap > s.outage {
				s.outage = gap
			}
			s.lastOK = at
		}
		s.mu.Unlock()
	}
}

// sampleServer reads one server's state, bounded so one stuck server
// never stretches a sample.
func (s *brainSampler) sampleServer(srv *lab.Server, id int64) serverSample {
	var r serverSample
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "ip", "-n", srv.NS, "-4", "addr", "show", "dev", "eth0").Output(); err == nil && strings.Contains(string(b), " "+s.v.vip+"/") {
		r.vip = true
	}
	if !srv.Running() {
		return r
	}
	if ro, err := srv.QueryString(ctx, "SELECT @@read_only"); err == nil && ro == "0" {
		r.writable = true
	}
	if db := s.apps[srv.Name]; db != nil {
		if _, err := db.ExecContext(ctx, "INSERT INTO lab.probe VALUES (?, ?, NOW(6))", id, srv.Name); err == nil {
			r.accepted = true
		}
	}
	return r
}

// firstAccepted is when the sampler first saw name accept a write.
func (s *brainSampler) firstAccepted(name string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstAcc[name]
}

// firstHeldVIP is when the sampler first saw name's host hold the VIP.
func (s *brainSampler) firstHeldVIP(name string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstVIP[name]
}

// finish stops the sampler and fails the test, with the timeline around
// the first overlaps, if any sample had two writers or two VIP holders.
// It reports samples, overlaps and the longest write outage.
func (s *brainSampler) finish(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	done := s.finished
	s.finished = true
	s.mu.Unlock()
	if done {
		return
	}
	close(s.stop)
	s.wg.Wait()
	for _, db := range s.apps {
		db.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A write outage still running at the end counts too.
	if s.writes {
		if gap := time.Since(s.lastOK); gap > s.outage {
			s.outage = gap
		}
	}
	outage := "n/a (probe writes off)"
	if s.writes {
		outage = s.outage.Round(time.Millisecond).String()
	}
	t.Logf("split-brain sampler [%s]: %d samples over %s, %d overlaps, longest write outage %s", t.Name(), s.n, time.Since(s.started).Round(time.Second), len(s.bad), outage)
	if len(s.bad) == 0 {
		return
	}
	first := s.bad[0]
	lo, hi := max(0, first-20), min(len(s.lines), first+20)
	t.Errorf("%d of %d samples had two writers or two VIP holders; timeline around the first:\n%s", len(s.bad), s.n, strings.Join(s.lines[lo:hi], "\n"))
}

// hostsExcept lists every host of the lab (servers, monitors, client)
// except the given ones.
func (v *vipLab) hostsExcept(skip ...*lab.Host) []*lab.Host {
	var out []*lab.Host
	all := append([]*lab.Host{}, v.Hosts...)
	for _, s := range v.Servers {
		all = append(all, &s.Host)
	}
	for _, h := range all {
		keep := true
		for _, k := range skip {
			keep = keep && k.Name != h.Name
		}
		if keep {
			out = append(out, h)
		}
	}
	return out
}

// signal sends sig to the process the lab started under name.
func (m *monitorsLab) signal(t testing.TB, name string, sig syscall.Signal) {
	t.Helper()
	m.mu.Lock()
	p := m.procs[name]
	m.mu.Unlock()
	if p == nil {
		t.Fatalf("no process %s", name)
	}
	must(t, p.Process.Signal(sig))
}

// pause stops a process (SIGSTOP) and makes sure it is continued when the
// test ends, pass or fail.
func (m *monitorsLab) pause(t testing.TB, name string) {
	t.Helper()
	m.signal(t, name, syscall.SIGSTOP)
	t.Cleanup(func() {
		m.mu.Lock()
		p := m.procs[name]
		m.mu.Unlock()
		if p != nil {
			p.Process.Signal(syscall.SIGCONT)
		}
	})
}

// verdictOf reads a monitor's verdict for the lab cluster.
func (m *monitorsLab) verdictOf(h *lab.Host) Verdict {
	var c struct {
		Clusters []struct {
			Verdict Verdict `json:"verdict"`
		} `json:"clusters"`
	}
	getJSON(m.api(h, "/api/clusters"), &c)
	if len(c.Clusters) == 0 {
		return Verdict{}
	}
	return c.Clusters[0].Verdict
}

// startFaultLab is a VIP lab whose primary db1 holds the VIP, healthy,
// with the sampler running.
func startFaultLab(t testing.TB, writes bool) (*vipLab, *brainSampler) {
	t.Helper()
	return startFaultLabOpts(t, lab.Options{Servers: 3}, writes)
}

// startFaultLabOpts is startFaultLab on a lab built with opts.
func startFaultLabOpts(t testing.TB, opts lab.Options, writes bool) (*vipLab, *brainSampler) {
	t.Helper()
	v := startVIPLab(t, opts)
	v.waitHealthy(t)
	v.waitHolder(t, "db1", 20*time.Second)
	return v, v.splitBrainSampler(t, writes)
}

// newPrimaryOf returns the server a failover report promoted.
func (v *vipLab) newPrimaryOf(t testing.TB, rep ReportJSON) *lab.Server {
	t.Helper()
	for _, s := range v.Servers {
		if s.Addr() == rep.NewPrimary {
			return s
		}
	}
	t.Fatalf("failover report names no lab server: %+v", rep)
	return nil
}

// Zone split {db1 (primary), db2, mon1} | {db3, mon2, mon3}: the monitors'
// side holds a majority of monitors but only one of the three servers, so
// it must not promote db3, while db1's agent keeps db1 writable on the
// failsafe (db2 still follows it). Packets are dropped, links stay up.
func TestSplitBrainZoneSplit(t *testing.T) {
	ctx := context.Background()
	v, smp := startFaultLab(t, true)
	db1, db2, db3 := v.Server("db1"), v.Server("db2"), v.Server("db3")
	mon1, mon2, mon3 := v.Host("mon1"), v.Host("mon2"), v.Host("mon3")
	for _, h := range []*lab.Host{&db1.Host, &db2.Host, mon1} {
		must(t, h.DropFrom(ctx, &db3.Host, mon2, mon3))
	}
	waitFor(t, "mon2 to refuse for lack of a server majority", 30*time.Second, func() bool {
		vd := v.verdictOf(mon2)
		return vd.State == "primary_down_no_server_majority" && has(vd.Reasons, "server-majority rule")
	})
	t.Logf("mon2's verdict: %q", v.verdictOf(mon2).Reasons)
	// Longer than the lease plus the failsafe settle: a promotion would
	// have happened by now.
	v.noFailoverFor(t, 8*time.Second, mon2, mon3)
	if h := v.holders(); len(h) != 1 || h[0] != "db1" {
		t.Fatalf("during the split the VIP is on %v, want db1 (failsafe)", h)
	}
	for _, h := range []*lab.Host{&db1.Host, &db2.Host, mon1} {
		must(t, h.HealDrops(ctx))
	}
	v.waitHealthy(t)
	v.noFailoverFor(t, 2*time.Second)
	smp.finish(t)
}

// partitionPrimary drops db1's packets (both ways, or only what it
// receives) and checks the failover: exactly one, db1 fenced by its agent,
// the VIP on the new primary, never two writers.
func partitionPrimary(t *testing.T, oneWay bool) {
	ctx := context.Background()
	v, smp := startFaultLab(t, true)
	db1 := v.Server("db1")
	start := time.Now()
	if oneWay {
		must(t, db1.DropIncomingFrom(ctx, v.hostsExcept(&db1.Host)...))
	} else {
		must(t, db1.DropFrom(ctx, v.hostsExcept(&db1.Host)...))
	}
	rep := v.oneFailoverEverywhere(t)
	if rep.Result != "success" {
		t.Fatalf("failover after a packet-drop partition: %+v", rep)
	}
	newP := v.newPrimaryOf(t, rep)
	v.waitHolder(t, newP.Name, 20*time.Second)
	waitFor(t, "the partitioned old primary to be fenced by its agent", 15*time.Second, func() bool {
		ro, err := db1.QueryString(ctx, "SELECT @@read_only")
		return err == nil && ro == "1"
	})
	t.Logf("new primary %s takes writes %s and holds the VIP %s after the partition", newP.Name,
		smp.firstAccepted(newP.Name).Sub(start).Round(time.Millisecond), smp.firstHeldVIP(newP.Name).Sub(start).Round(time.Millisecond))
	must(t, db1.HealDrops(ctx))
	time.Sleep(2 * time.Second) // the healed old primary must stay read-only: sampled meanwhile
	smp.finish(t)
}

func TestSplitBrainPartitionBothWays(t *testing.T) { partitionPrimary(t, false) }

func TestSplitBrainPartitionOneWay(t *testing.T) { partitionPrimary(t, true) }

// The primary's agent is paused (SIGSTOP) for longer than the lease: its
// watchdog releases the VIP and fences db1 (nobody could if its host were
// cut off now), the leader does not re-open db1 while its agent is silent,
// and nothing fails over. Resumed, the agent reports again, the leader
// makes db1 writable, and db1 takes the VIP back.
func TestSplitBrainAgentPaused(t *testing.T) {
	ctx := context.Background()
	v, smp := startFaultLab(t, true)
	db1 := v.Server("db1")
	v.pause(t, "db1")
	waitFor(t, "the paused agent's watchdog to fence db1 and release the VIP", 10*time.Second, func() bool {
		ro, err := db1.QueryString(ctx, "SELECT @@read_only")
		return err == nil && ro == "1" && len(v.holders()) == 0
	})
	v.noFailoverFor(t, 3*time.Second) // lease 3 s: well past it
	if ro, err := db1.QueryString(ctx, "SELECT @@read_only"); err != nil || ro != "1" {
		t.Fatalf("db1 was re-opened while its agent was paused: read_only=%q (%v)", ro, err)
	}
	v.signal(t, "db1", syscall.SIGCONT)
	v.waitHolder(t, "db1", 15*time.Second)
	waitFor(t, "db1 writable again", 10*time.Second, func() bool {
		ro, err := db1.QueryString(ctx, "SELECT @@read_only")
		return err == nil && ro == "0"
	})
	v.noFailoverFor(t, time.Second)
	smp.finish(t)
}

// The raft leader is paused (SIGSTOP) for longer than the lease and the
// primary is killed meanwhile: the other two monitors elect a leader and
// fail over once; the old leader, resumed, must not renew a lease, fence
// the new primary or fail over again.
func TestSplitBrainLeaderPaused(t *testing.T) {
	v, smp := startFaultLab(t, true)
	leader := v.leader(t)
	var rest []*lab.Host
	for _, h := range v.mons {
		if h != leader {
			rest = append(rest, h)
		}
	}
	v.pause(t, leader.Name)
	pausedAt := time.Now()
	newLeader := v.leader(t, rest...)
	must(t, v.Server("db1").Kill())
	rep := v.oneFailoverEverywhere(t, rest...)
	if rep.Result != "success" {
		t.Fatalf("failover under %s while %s was paused: %+v", newLeader.Name, leader.Name, rep)
	}
	newP := v.newPrimaryOf(t, rep)
	v.waitHolder(t, newP.Name, 20*time.Second)
	// The pause lasts longer than the 3 s lease, whatever the failover took.
	time.Sleep(time.Until(pausedAt.Add(5 * time.Second)))
	t.Logf("%s paused for %s", leader.Name, time.Since(pausedAt).Round(time.Millisecond))
	v.signal(t, leader.Name, syscall.SIGCONT)
	v.oneFailoverEverywhere(t)  // the resumed monitor learns the same single failover
	time.Sleep(2 * time.Second) // sampled: the resumed leader changes nothing
	if h := v.holders(); len(h) != 1 || h[0] != newP.Name {
		t.Fatalf("after the old leader resumed the VIP is on %v, want %s", h, newP.Name)
	}
	smp.finish(t)
}

// Monitors cut from an idle primary only, with replicas on the default
// heartbeat (30 s): the replicas still follow it, so no failover; its
// agent keeps it on the failsafe (both replicas follow).
func TestSplitBrainIdlePrimaryMonitorsCut(t *testing.T) {
	ctx := context.Background()
	v := startVIPLab(t, lab.Options{Servers: 3})
	db1 := v.Server("db1")
	for _, s := range v.Servers[1:] {
		must(t, s.Exec(ctx, "STOP SLAVE", "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=30", "START SLAVE"))
	}
	v.waitHealthy(t)
	v.waitHolder(t, "db1", 20*time.Second)
	// The agent counts a replica toward the failsafe only once it has
	// seen it receive something: one event, then the primary stays idle.
	must(t, db1.Exec(ctx, "CREATE DATABASE IF NOT EXISTS idle_probe"))
	waitFor(t, "db1's agent to count both replicas as following", 15*time.Second, func() bool {
		var st struct {
			Followers []string `json:"followers"`
		}
		getJSON("http://"+db1.IP+":8008/health", &st)
		return len(st.Followers) == 2
	})
	smp := v.splitBrainSampler(t, false)
	must(t, db1.DropFrom(ctx, v.mons...))
	waitFor(t, "the monitors to see an unreachable primary still replicated", 30*time.Second, func() bool {
		return v.state(v.mons[0]) == "unreachable_primary"
	})
	v.noFailoverFor(t, 8*time.Second)
	if h := v.holders(); len(h) != 1 || h[0] != "db1" {
		t.Fatalf("the VIP is on %v, want db1", h)
	}
	must(t, db1.HealDrops(ctx))
	v.waitHealthy(t)
	smp.finish(t)
}

// The leader exits (as if killed) right after it made the new primary
// writable and before it recorded anything else (MYHA_CRASH_AT=
// promote:writable, set on every monitor): the next leader resumes the same
// decision, completes it without a second promotion, and exactly one
// record exists for the epoch; at no sample are there two writers.
func TestSplitBrainLeaderCrashAfterPromotion(t *testing.T) {
	// Set before the agents join: monitors restarted under running agents
	// are only rediscovered by the agents' next push/pull.
	v := startVIPLabEnv(t, lab.Options{Servers: 3}, []string{"MYHA_CRASH_AT=promote:writable"})
	v.waitHealthy(t)
	v.waitHolder(t, "db1", 20*time.Second)
	smp := v.splitBrainSampler(t, true)
	leader := v.leader(t)
	var rest []*lab.Host
	for _, h := range v.mons {
		if h != leader {
			rest = append(rest, h)
		}
	}
	must(t, v.Server("db1").Kill())
	waitFor(t, leader.Name+" to exit at promote:writable", 30*time.Second, func() bool {
		b, _ := readFile(filepath.Join(v.dir, leader.Name+".log"))
		return strings.Contains(b, "MYHA_CRASH_AT: exiting at promote:writable")
	})
	rep := v.oneFailoverEverywhere(t, rest...)
	if rep.Result != "success" || !rep.Promoted {
		t.Fatalf("the next leader did not complete the decision: %+v", rep)
	}
	for _, h := range rest {
		f, _ := v.failovers(h)
		epochs := map[int64]int{}
		for _, r := range f {
			epochs[r.Epoch]++
		}
		for e, n := range epochs {
			if n != 1 {
				t.Fatalf("%s records %d results for epoch %d", h.Name, n, e)
			}
		}
	}
	newP := v.newPrimaryOf(t, rep)
	v.waitHolder(t, newP.Name, 20*time.Second)
	waitFor(t, "writes accepted on the new primary", 10*time.Second, func() bool {
		ro, err := newP.QueryString(context.Background(), "SELECT @@read_only")
		return err == nil && ro == "0"
	})
	smp.finish(t)
}
