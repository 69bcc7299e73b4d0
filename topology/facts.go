package topology

import (
	"slices"
	"strconv"
	"sync"
	"time"
)

// FactsMaxAge bounds how long a monitor's routine probe reuses what an
// earlier probe of the same server read about things that change rarely
// (version, own grants, privileged accounts, connected replicas). Every
// fact that detection and failover safety use is read on every probe.
const FactsMaxAge = 30 * time.Second

// FactsCache keeps, per server address, the slow-changing facts of its
// last full probe, so that a monitor's routine probe reads only what
// detection needs: at a thousand clusters the grant, account and replica
// listings were most of a monitor's CPU. Only the daemon's routine probe
// uses one; anything that plans or runs a failover discovers without it.
//
// An entry is reused only while it is younger than the bound, the probe's
// session is a reused one (a new connection re-reads everything), and the
// server still has the same server_id, server_uuid and read_only and has
// not restarted since (its Uptime covers the entry's age). A server that
// cannot be reached loses its entry.
type FactsCache struct {
	maxAge time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[string]slowFacts
}

// NewFactsCache makes an empty cache whose entries live at most maxAge
// (FactsMaxAge when zero); now is the clock (time.Now when nil).
func NewFactsCache(maxAge time.Duration, now func() time.Time) *FactsCache {
	if maxAge <= 0 {
		maxAge = FactsMaxAge
	}
	if now == nil {
		now = time.Now
	}
	return &FactsCache{maxAge: maxAge, now: now, m: map[string]slowFacts{}}
}

// ReusedSession is implemented by a Querier that knows whether its session
// was opened for this probe or kept from an earlier one. A FactsCache
// entry is reused only on a session that says it is reused: a new session
// (a reconnect, a server that was unreachable) re-reads everything.
type ReusedSession interface {
	Reused() bool
}

// slowFacts is what a routine probe may take from an earlier one, with
// the identity it was read under.
type slowFacts struct {
	at time.Time
	// Identity: the raw values a reuse must see again.
	serverID, serverUUID, readOnly string
	uptime                         int64

	dialect    Dialect
	versionRaw string
	privileges []string
	grantsRead bool
	privileged []string
	connected  []ConnectedReplica
	warnings   []string
}

// Forget drops a server's entry (it was unreachable).
func (c *FactsCache) Forget(addr string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, addr)
	c.mu.Unlock()
}

// Len is how many servers have an entry.
func (c *FactsCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// lookup returns the entry for addr if it is young enough and the session
// is a reused one; the identity check comes later, once the probe has
// read the variables.
func (c *FactsCache) lookup(addr string, q Querier) (slowFacts, bool) {
	if c == nil {
		return slowFacts{}, false
	}
	if r, ok := q.(ReusedSession); !ok || !r.Reused() {
		return slowFacts{}, false
	}
	c.mu.Lock()
	f, ok := c.m[addr]
	c.mu.Unlock()
	if !ok || c.now().Sub(f.at) >= c.maxAge {
		return slowFacts{}, false
	}
	return f, true
}

// sameServer says whether the variables and status just read show the
// server the entry was read from, not restarted since.
func (f slowFacts) sameServer(vars, status map[string]string, now time.Time) bool {
	if vars["server_id"] != f.serverID || vars["server_uuid"] != f.serverUUID || vars["read_only"] != f.readOnly {
		return false
	}
	up, err := strconv.ParseInt(status["uptime"], 10, 64)
	if err != nil {
		return false
	}
	// A server that restarted after the entry was taken has been up for
	// less than the entry's age (one second of slack for Uptime's
	// resolution); one that did not has been up for at least as long.
	age := now.Sub(f.at)
	return time.Duration(up)*time.Second >= age+time.Second && up >= f.uptime
}

// store records what a full probe read.
func (c *FactsCache) store(addr string, st *ServerState, status map[string]string, slowWarnings []string) {
	if c == nil {
		return
	}
	up, err := strconv.ParseInt(status["uptime"], 10, 64)
	if err != nil {
		c.Forget(addr)
		return
	}
	f := slowFacts{at: c.now(), serverID: st.Vars["server_id"], serverUUID: st.Vars["server_uuid"], readOnly: st.Vars["read_only"], uptime: up,
		dialect: st.Dialect, versionRaw: st.VersionRaw, privileges: st.Privileges, grantsRead: st.GrantsRead,
		privileged: st.PrivilegedAccounts, connected: st.ConnectedReplicas, warnings: slowWarnings}
	c.mu.Lock()
	c.m[addr] = f
	c.mu.Unlock()
}

// apply fills a state with the entry's facts (copies: the entry outlives
// the snapshot).
func (f slowFacts) apply(st *ServerState) {
	st.Dialect, st.VersionRaw = f.dialect, f.versionRaw
	st.Privileges, st.GrantsRead = slices.Clone(f.privileges), f.grantsRead
	st.PrivilegedAccounts = slices.Clone(f.privileged)
	st.ConnectedReplicas = slices.Clone(f.connected)
	st.Warnings = append(st.Warnings, f.warnings...)
	st.FactsFrom = f.at
}
