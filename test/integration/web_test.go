package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/myha/myha/test/lab"
)

// chromiumPath finds Debian's chromium. Without it the browser tests skip,
// except under CI (CI=true), where they fail: test/install-deps.sh test
// installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium missing: test/install-deps.sh test installs the chromium package")
	}
	t.Skip("chromium missing (apt-get install chromium): skipping the browser test")
	return ""
}

// browser is one headless Chromium tab driven over the DevTools protocol.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // tests run as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU, chromedp.WindowSize(width, height),
		chromedp.Flag("no-proxy-server", true)) // the lab's addresses are never behind a proxy
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// do runs actions, each run bounded.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// script runs a statement in the page.
func script(stmt string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool]("(() => { "+stmt+"; return true })()")(ctx, t)
		return chromedp.Void{}, err
	}
}

// js evaluates an expression (awaiting a promise) and decodes its JSON.
func (b *browser) js(expr string, v any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("(async () => JSON.stringify(await ("+expr+")))()", chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		b.t.Fatalf("evaluating %s: %v (%q)", expr, err, s)
	}
}

func (b *browser) text(expr string) string {
	b.t.Helper()
	var s string
	b.js("(() => { const e = "+expr+"; return e ? e.textContent.trim() : '' })()", &s)
	return s
}

// waitFor polls a condition in the page; it is the page's state that is
// waited for, with a deadline.
func (b *browser) waitFor(what string, timeout time.Duration, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			var body string
			b.js("document.body.innerText", &body)
			b.t.Fatalf("timed out after %s waiting for the page to show %s; it shows:\n%s", timeout, what, tail(body, 4000))
		}
		time.Sleep(50 * time.Millisecond) // polling the page
	}
}

func (b *browser) shot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	// From the top: the header is sticky, and a full-page shot of a
	// scrolled page draws it mid-page.
	if err := chromedp.Do(ctx, script(`window.scrollTo(0, 0)`)); err != nil {
		b.t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", p, len(png))
}

type pageNode struct {
	Addr   string `json:"addr"`
	Role   string `json:"role"`
	Parent string `json:"parent"`
}

// tree is the replication tree as the page draws it.
func (b *browser) tree() map[string]pageNode {
	var nodes []pageNode
	b.js(`[...document.querySelectorAll('[data-tree=main] li[data-addr]')].map((li) => ({addr: li.dataset.addr, role: li.dataset.role, parent: li.dataset.parent || ''}))`, &nodes)
	out := map[string]pageNode{}
	for _, n := range nodes {
		out[n.Addr] = n
	}
	return out
}

// treeIs reports whether the page draws primary at the root with every
// replica directly below it.
func (b *browser) treeIs(primary *lab.Server, replicas ...*lab.Server) bool {
	tr := b.tree()
	if n, ok := tr[primary.Addr()]; !ok || n.Parent != "" || n.Role != "primary" {
		return false
	}
	for _, r := range replicas {
		if n, ok := tr[r.Addr()]; !ok || n.Parent != primary.Addr() || n.Role != "replica" {
			return false
		}
	}
	return len(tr) == 1+len(replicas)
}

// TestWebPage drives the monitors' page in a real headless Chromium against
// three monitors watching a real lab: the page shows the right primary and
// tree; without a token it offers no action and the API refuses the POST;
// with the write token a switchover started from the page (by keyboard)
// completes and the tree follows; after kill -9 of the primary it shows
// "suspect", then the new primary within 2 s of the failover, without
// reloading; a block is acknowledged from the page. Screenshots go to
// MYHA_WEB_SCREENSHOTS when set (make docs-screenshots), else to the test's
// temporary directory.
func TestWebPage(t *testing.T) {
	chromiumPath(t)
	m := startMonitorsLab(t, lab.Options{Servers: 3}, "")
	m.waitHealthy(t)
	leader := m.leader(t)
	var page *lab.Host // a follower: its actions are forwarded to the leader
	for _, h := range m.mons {
		if h != leader {
			page = h
			break
		}
	}
	shots := os.Getenv("MYHA_WEB_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	db1, db2, db3 := m.Server("db1"), m.Server("db2"), m.Server("db3")
	base := m.api(page, "/")
	b := newBrowser(t, 1280, 900)

	// Read-only (no token): the overview names the primary.
	b.do("opening the page", chromedp.Navigate(base))
	b.waitFor("the primary on the overview", 15*time.Second, func() bool {
		return b.text(`document.querySelector('[data-cluster="lab"] [data-field="primary"]')`) == db1.Addr()
	})
	var perf struct {
		FCP    float64 `json:"fcp"`
		Weight int     `json:"weight"`
		Files  int     `json:"files"`
	}
	b.js(`(() => {
		const fcp = performance.getEntriesByName('first-contentful-paint')[0];
		const files = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].filter((e) => !e.name.includes('/api/'));
		return {fcp: fcp ? fcp.startTime : -1, weight: files.reduce((a, e) => a + e.decodedBodySize, 0), files: files.length};
	})()`, &perf)
	t.Logf("page weight %d bytes uncompressed in %d files; first contentful paint %.0f ms after navigation (measured, not asserted)", perf.Weight, perf.Files, perf.FCP)
	b.shot(shots, "web-overview.png")

	b.do("opening the cluster view", script(`location.hash = '#/cluster/lab'`))
	b.waitFor("db1 primary over db2 and db3", 15*time.Second, func() bool { return b.treeIs(db1, db2, db3) })
	var actions int
	b.js(`document.querySelectorAll('[data-action]').length`, &actions)
	if actions != 0 {
		t.Fatalf("without a token the page shows %d action buttons", actions)
	}
	var status int
	b.js(`fetch('/api/clusters/lab/switchover?new_primary=`+db2.Addr()+`', {method: 'POST'}).then((r) => r.status)`, &status)
	if status != 401 {
		t.Fatalf("a POST from the page without a token: %d, want 401", status)
	}
	b.waitFor("the checks", 15*time.Second, func() bool {
		var n int
		b.js(`document.querySelectorAll('[data-check]').length`, &n)
		return n > 10
	})
	b.shot(shots, "web-cluster-readonly.png")
	// Anything below must happen without a reload: this mark would be lost.
	b.do("marking the page", script(`window.__sameDocument = 'yes'`))

	// Sign in with the write token; reach the action by keyboard.
	b.do("signing in", chromedp.Click(chromedp.CSS(`#signin`)), chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), apiToken), chromedp.KeyEvent(kb.Enter))
	b.waitFor("the actions", 10*time.Second, func() bool {
		var n int
		b.js(`document.querySelectorAll('[data-action=switchover]').length`, &n)
		return n == 1
	})
	b.do("choosing db2", script(`(() => { const s = document.getElementById('so-target'); s.value = '`+db2.Addr()+`'; s.dispatchEvent(new Event('change')); })()`))
	b.do("focusing the page", script(`document.getElementById('main').focus()`))
	for i := 0; ; i++ {
		var on string
		b.js(`document.activeElement ? (document.activeElement.dataset.action || '') : ''`, &on)
		if on == "switchover" {
			break
		}
		if i == 40 {
			t.Fatal("Tab never reached the switchover button")
		}
		b.do("pressing Tab", chromedp.KeyEvent(kb.Tab))
	}
	b.do("opening the plan", chromedp.KeyEvent(kb.Enter))
	b.waitFor("the switchover plan", 15*time.Second, func() bool {
		return strings.Contains(b.text(`document.querySelector('pre[data-plan]')`), "new primary: "+db2.Addr())
	})
	plan := b.text(`document.querySelector('pre[data-plan]')`)
	if !strings.Contains(plan, "Switchover plan for cluster lab") {
		t.Fatalf("the plan shown is not the CLI's:\n%s", plan)
	}
	b.shot(shots, "web-switchover-plan.png")
	// The dialog focuses its confirm button: Enter runs the switchover.
	b.do("confirming", chromedp.KeyEvent(kb.Enter))
	b.waitFor("the switchover's outcome", 90*time.Second, func() bool {
		o := b.text(`document.querySelector('#actbody [data-outcome]:not([data-outcome=running])')`)
		return o != ""
	})
	if o := b.text(`document.querySelector('#actbody [data-outcome]')`); !strings.HasPrefix(o, "SUCCESS") {
		t.Fatalf("switchover from the page: %s", o)
	}
	b.do("closing the dialog", chromedp.KeyEvent(kb.Escape))
	b.waitFor("db2 primary over db1 and db3", 15*time.Second, func() bool { return b.treeIs(db2, db1, db3) })

	// kill -9 of the primary: the page, still open, shows suspect, then the
	// failover and the new tree.
	type seen struct {
		at      time.Time
		state   string
		primary string
	}
	var trail []seen
	sample := func() seen {
		var v struct{ State, Primary string }
		b.js(`({state: (document.querySelector('[data-sec=head] [data-state]') || {dataset: {}}).dataset.state || '',
			primary: (document.querySelector('[data-sec=head] [data-field=primary]') || {textContent: ''}).textContent})`, &v)
		s := seen{time.Now(), v.State, v.Primary}
		if len(trail) == 0 || trail[len(trail)-1].state != s.state || trail[len(trail)-1].primary != s.primary {
			trail = append(trail, s)
		}
		return s
	}
	killed := time.Now()
	must(t, db2.Kill())
	var newP *lab.Server
	b.waitFor("a new primary", 30*time.Second, func() bool {
		s := sample()
		for _, c := range []*lab.Server{db1, db3} {
			if s.primary == c.Addr() {
				newP = c
				return true
			}
		}
		return false
	})
	shownAt := trail[len(trail)-1].at
	var trailText []string
	sawSuspect := false
	for _, s := range trail {
		trailText = append(trailText, fmt.Sprintf("+%dms %s %q", s.at.Sub(killed).Milliseconds(), s.state, s.primary))
		sawSuspect = sawSuspect || s.state == "suspect"
	}
	t.Logf("the page after kill -9 of %s: %s", db2.Name, strings.Join(trailText, ", "))
	if !sawSuspect {
		t.Errorf("the page never showed the cluster suspect: %s", strings.Join(trailText, ", "))
	}
	var reps []struct {
		ReportJSON
		Kind       string    `json:"kind"`
		Started    time.Time `json:"started"`
		DurationMS float64   `json:"duration_ms"`
	}
	waitFor(t, "the failover in the history", 30*time.Second, func() bool {
		var f struct {
			Failovers json.RawMessage `json:"failovers"`
		}
		if _, err := getJSON(m.api(page, "/api/failovers"), &f); err != nil {
			return false
		}
		return json.Unmarshal(f.Failovers, &reps) == nil && len(reps) == 2
	})
	fo := reps[1]
	if fo.Kind != "failover" || fo.Result != "success" || fo.NewPrimary != newP.Addr() {
		t.Fatalf("the failover: %+v (the page shows %s)", fo, newP.Addr())
	}
	ended := fo.Started.Add(time.Duration(fo.DurationMS * float64(time.Millisecond)))
	writable := fo.Started.Add(time.Duration(*fo.WritableAfterMS * float64(time.Millisecond)))
	t.Logf("failover: new primary writable %s after the kill, failover done %s after it; the page showed it %s after the failover was done (%s after the new primary took writes)",
		writable.Sub(killed).Round(time.Millisecond), ended.Sub(killed).Round(time.Millisecond), shownAt.Sub(ended).Round(time.Millisecond), shownAt.Sub(writable).Round(time.Millisecond))
	if lag := shownAt.Sub(ended); lag > 2*time.Second {
		t.Errorf("the page showed the new primary %s after the failover, want within 2 s", lag)
	}
	var others []*lab.Server
	for _, s := range []*lab.Server{db1, db3} {
		if s != newP {
			others = append(others, s)
		}
	}
	b.waitFor("the new tree", 15*time.Second, func() bool {
		tr := b.tree()
		return tr[newP.Addr()].Role == "primary" && tr[newP.Addr()].Parent == "" && tr[others[0].Addr()].Parent == newP.Addr()
	})
	b.waitFor("the failover in the timeline", 10*time.Second, func() bool {
		var n int
		b.js(`document.querySelectorAll('article.run[data-result=success] .step').length`, &n)
		return strings.HasPrefix(b.text(`document.querySelector('article.run h3')`), "Failover") && n > 5
	})
	var same string
	b.js(`window.__sameDocument || ''`, &same)
	if same != "yes" {
		t.Fatal("the page was reloaded")
	}
	b.shot(shots, "web-cluster.png")

	// The failover blocks automatic ones for block_period: acknowledged
	// from the page.
	b.waitFor("the block", 10*time.Second, func() bool {
		return b.text(`document.querySelector('[data-sec=head] [data-armed=blocked]')`) != ""
	})
	b.do("acknowledging", chromedp.Click(chromedp.CSS(`[data-action=ack]`)), chromedp.WaitEnabled(chromedp.CSS(`#actgo`)), chromedp.Click(chromedp.CSS(`#actgo`)))
	b.waitFor("the acknowledgement", 15*time.Second, func() bool {
		return b.text(`document.querySelector('#actbody [data-outcome=acknowledged]')`) != ""
	})
	b.do("closing the dialog", chromedp.KeyEvent(kb.Escape))
	b.waitFor("automatic failover armed again", 10*time.Second, func() bool {
		return b.text(`document.querySelector('[data-sec=head] [data-armed=armed]')`) != ""
	})

	// The overview and a phone-sized screen: nothing wider than the screen.
	b.do("back to the overview", script(`location.hash = '#/'`))
	b.waitFor("the new primary on the overview", 10*time.Second, func() bool {
		return b.text(`document.querySelector('[data-cluster="lab"] [data-field="primary"]')`) == newP.Addr()
	})
	b.shot(shots, "web-overview-after.png")
	b.do("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		script(`location.hash = '#/cluster/lab'`))
	b.waitFor("the tree on a phone", 10*time.Second, func() bool { return len(b.tree()) == 2 })
	var widths struct{ Page, Screen int }
	b.js(`({page: document.documentElement.scrollWidth, screen: window.innerWidth})`, &widths)
	if widths.Page > widths.Screen {
		t.Errorf("on a 390 px screen the page is %d px wide", widths.Page)
	}
	b.shot(shots, "web-phone.png")
}

// TestWebPageTreeShapes loads the page's files (daemon/web, the files the
// binary embeds) in Chromium against a FAKE API: scripted answers, so the
// shapes a three-server lab does not have are drawn too. A co-primary pair
// with an intermediate below: the co-primary beside the primary, each
// replica under its source; a server outside the tree, an unreachable one
// and an unlisted replica set apart; errant GTIDs shown; markup a server
// sends shown as text. A paused cluster shows "paused" with its reason on
// the overview and its page, a server in maintenance is marked in the tree
// with its reason (both as text). Without a token no action is offered;
// with the write token a pause confirmed in the dialog sends the API's
// POST with the duration and reason, and a refused maintenance shows the
// API's error message. Then the stream
// breaks and the page says the connection is lost, until it is back.
func TestWebPageTreeShapes(t *testing.T) {
	chromiumPath(t)
	fake := fakePageAPI(t)
	srv, cut := fake.srv, fake.cut
	b := newBrowser(t, 1100, 900)
	b.do("opening the page", chromedp.Navigate(srv.URL+"/#/cluster/shapes"))
	b.waitFor("the tree", 10*time.Second, func() bool { return len(b.tree()) == 5 })
	want := map[string]pageNode{
		"10.0.0.1:3306": {"10.0.0.1:3306", "primary", ""},
		"10.0.0.2:3306": {"10.0.0.2:3306", "co-primary", ""},
		"10.0.0.3:3306": {"10.0.0.3:3306", "intermediate", "10.0.0.1:3306"},
		"10.0.0.4:3306": {"10.0.0.4:3306", "replica", "10.0.0.3:3306"},
		"10.0.0.5:3306": {"10.0.0.5:3306", "replica", "10.0.0.2:3306"},
	}
	if got := b.tree(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tree drawn:\n%v\nwant:\n%v", got, want)
	}
	var apart struct{ Outside, Down []string }
	b.js(`({outside: [...document.querySelectorAll('[data-tree=outside] li[data-addr]')].map((e) => e.dataset.addr),
		down: [...document.querySelectorAll('[data-tree=unreachable] li[data-addr]')].map((e) => e.dataset.addr)})`, &apart)
	if fmt.Sprint(apart.Outside) != "[10.0.0.6:3306]" || fmt.Sprint(apart.Down) != "[10.0.0.7:3306]" {
		t.Fatalf("set apart: %+v", apart)
	}
	body := b.text(`document.getElementById('main')`)
	for _, s := range []string{"10.0.0.8:3306 (server_id 8) replicates from 10.0.0.1:3306, but is not in the config", "0-9-5", "co-primary of 10.0.0.2:3306"} {
		if !strings.Contains(body, s) {
			t.Errorf("the page does not show %q", s)
		}
	}
	// What a server says is text, never markup.
	var injected bool
	b.js(`document.getElementById('injected') !== null`, &injected)
	if injected || !strings.Contains(body, `10.11<img id="injected" src="x">`) {
		t.Errorf("a server's version was put in the page as markup")
	}
	if b.text(`document.querySelector('li[data-addr="10.0.0.4:3306"] dd.bad')`) != "0-9-5" {
		t.Error("the errant GTIDs are not on 10.0.0.4's card")
	}

	// Pause and maintenance, shown as text.
	if got := b.text(`document.querySelector('[data-sec=head] [data-paused]')`); got != "paused" {
		t.Errorf("the cluster's page shows no paused badge (got %q)", got)
	}
	if got := b.text(`document.querySelector('[data-sec=head] [data-field=paused]')`); !strings.Contains(got, `until`) || !strings.HasSuffix(got, `— upgrade <b id="pinj">1</b>`) {
		t.Errorf("the pause on the cluster's page: %q", got)
	}
	if got := b.text(`document.querySelector('[data-sec=head] [data-armed]')`); !strings.Contains(got, "paused") {
		t.Errorf("a paused cluster's failover line: %q", got)
	}
	if got := b.text(`document.querySelector('[data-tree=main] li[data-addr="10.0.0.3:3306"] > .node [data-field=maintenance]')`); got != `disk swap <b id="minj">1</b>` {
		t.Errorf("10.0.0.3's maintenance in the tree: %q", got)
	}
	if b.text(`document.querySelector('li[data-addr="10.0.0.3:3306"] > .node [data-maint]')`) != "in maintenance" {
		t.Error("10.0.0.3 is not marked in maintenance in the tree")
	}
	var marks int
	b.js(`document.querySelectorAll('[data-maint]').length`, &marks)
	if marks != 1 {
		t.Errorf("%d servers marked in maintenance, want 1", marks)
	}
	b.do("the overview", script(`location.hash = '#/'`))
	b.waitFor("the pause on the overview", 10*time.Second, func() bool {
		return b.text(`document.querySelector('[data-cluster=shapes] [data-paused]')`) == "paused" &&
			strings.HasSuffix(b.text(`document.querySelector('[data-cluster=shapes] [data-field=paused]')`), `— upgrade <b id="pinj">1</b>`)
	})
	b.js(`document.getElementById('pinj') !== null || document.getElementById('minj') !== null`, &injected)
	if injected {
		t.Error("a pause or maintenance reason was put in the page as markup")
	}

	// Actions: none without a token; with the write token the pause
	// sends its POST.
	b.do("the cluster's page", script(`location.hash = '#/cluster/shapes'`))
	b.waitFor("the tree again", 10*time.Second, func() bool { return len(b.tree()) == 5 })
	var actions int
	b.js(`document.querySelectorAll('[data-action]').length`, &actions)
	if actions != 0 {
		t.Fatalf("without a token the page shows %d action buttons", actions)
	}
	b.do("signing in", chromedp.Click(chromedp.CSS(`#signin`)), chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), fakeWriteToken), chromedp.KeyEvent(kb.Enter))
	b.waitFor("the pause, resume and maintenance buttons", 10*time.Second, func() bool {
		var n struct{ Pause, Resume, Maint int }
		b.js(`({pause: document.querySelectorAll('[data-action=pause]').length, resume: document.querySelectorAll('[data-action=resume]').length,
			maint: document.querySelectorAll('[data-action=maintenance]').length})`, &n)
		return n.Pause == 1 && n.Resume == 1 && n.Maint == 7
	})
	b.do("opening the pause", chromedp.Click(chromedp.CSS(`[data-action=pause]`)), chromedp.WaitVisible(chromedp.CSS(`#act-for`)))
	if got := b.text(`document.getElementById('actbody')`); !strings.Contains(got, "no automatic failover, fencing or correction") {
		t.Errorf("the pause's confirmation does not say what it does: %q", got)
	}
	if n := len(fake.posts()); n != 0 {
		t.Fatalf("opening the dialog sent %d POSTs before confirming", n)
	}
	b.do("filling in the pause", chromedp.SendKeys(chromedp.CSS(`#act-for`), "2h"), chromedp.SendKeys(chromedp.CSS(`#act-reason`), "kernel & reboot"),
		chromedp.Click(chromedp.CSS(`#actgo`)))
	b.waitFor("the pause's outcome", 10*time.Second, func() bool {
		return b.text(`document.querySelector('#actbody [data-outcome=paused]')`) != ""
	})
	wantPosts := []string{"POST /api/clusters/shapes/pause for=2h reason=kernel & reboot auth=ok"}
	if got := fake.posts(); fmt.Sprint(got) != fmt.Sprint(wantPosts) {
		t.Errorf("the page sent:\n%q\nwant:\n%q", got, wantPosts)
	}
	b.do("closing the dialog", chromedp.KeyEvent(kb.Escape))
	// The fake refuses maintenance: the page shows the API's message.
	b.do("maintenance of 10.0.0.5", chromedp.Click(chromedp.CSS(`[data-action=maintenance][data-server="10.0.0.5:3306"]`)),
		chromedp.WaitEnabled(chromedp.CSS(`#actgo`)), chromedp.Click(chromedp.CSS(`#actgo`)))
	b.waitFor("the refusal", 10*time.Second, func() bool {
		return b.text(`document.querySelector('#actbody [data-outcome=error]')`) == "no raft leader: try again — fake blocker"
	})
	if got := fake.posts(); len(got) != 2 || got[1] != "POST /api/clusters/shapes/maintenance server=10.0.0.5:3306 state=on auth=ok" {
		t.Errorf("the page sent: %q", got)
	}
	b.do("closing the dialog", chromedp.KeyEvent(kb.Escape))
	close(cut)
	b.waitFor("the connection lost", 10*time.Second, func() bool {
		return strings.Contains(b.text(`document.querySelector('#stale:not([hidden])')`), "lost")
	})
}

// fakeWriteToken is the FAKE API's write token.
const fakeWriteToken = "fake-write-token"

// fakeAPI is a FAKE API for the page: scripted answers, the POSTs it got.
type fakeAPI struct {
	srv *httptest.Server
	cut chan struct{} // closing it ends the live stream and refuses new ones
	mu  sync.Mutex
	got []string // "POST path k=v ... auth=ok|no"
}

func (f *fakeAPI) posts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.got...)
}

// fakePageAPI serves daemon/web and a FAKE API: one cluster of every
// shape, paused, with a server in maintenance; open reads; writes with
// fakeWriteToken, recorded: a pause is accepted, maintenance refused.
func fakePageAPI(t *testing.T) *fakeAPI {
	t.Helper()
	cut := make(chan struct{})
	fake := &fakeAPI{cut: cut}
	srv := func(addr, role, source string, extra map[string]any) map[string]any {
		s := map[string]any{"address": addr, "role": role, "reachable": true, "version": "10.11.19-MariaDB", "read_only": true,
			"gtid_position": "0-1-100", "errant_gtids": []string{}, "errors": []string{}, "io_running": true, "sql_running": true, "lag_seconds": 0}
		if source != "" {
			s["source"] = source
		}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	cluster := map[string]any{"name": "shapes", "primary": "10.0.0.1:3306", "agreed_primary": "10.0.0.1:3306", "state": "healthy",
		"paused":      map[string]any{"since": "2026-01-02T03:04:05Z", "until": "2026-01-02T05:04:05Z", "reason": `upgrade <b id="pinj">1</b>`},
		"maintenance": map[string]any{"10.0.0.3:3306": map[string]any{"since": "2026-01-02T03:00:00Z", "reason": `disk swap <b id="minj">1</b>`}},
		"verdict":     map[string]any{"state": "healthy"}, "auto_failover": true, "epoch": 3, "problems": []string{},
		"vip":               map[string]any{"agents": 0, "holders": []string{}},
		"unlisted_replicas": []map[string]any{{"source": "10.0.0.1:3306", "host": "10.0.0.8", "port": 3306, "server_id": 8}},
		"servers": []map[string]any{
			srv("10.0.0.1:3306", "primary", "10.0.0.2:3306", map[string]any{"read_only": false, "co_primary_of": "10.0.0.2:3306"}),
			srv("10.0.0.2:3306", "co-primary", "10.0.0.1:3306", map[string]any{"co_primary_of": "10.0.0.1:3306"}),
			srv("10.0.0.3:3306", "intermediate", "10.0.0.1:3306", map[string]any{"maintenance": `disk swap <b id="minj">1</b>`}),
			srv("10.0.0.4:3306", "replica", "10.0.0.3:3306", map[string]any{"errant_gtids": []string{"0-9-5"}}),
			srv("10.0.0.5:3306", "replica", "10.0.0.2:3306", map[string]any{"version": `10.11<img id="injected" src="x">`}),
			srv("10.0.0.6:3306", "replica", "10.9.9.9:3306", nil),
			{"address": "10.0.0.7:3306", "role": "unknown", "reachable": false, "read_only": false, "errant_gtids": []string{}, "errors": []string{"unreachable: connect: connection refused"}},
		}}
	overview, _ := json.Marshal(map[string]any{"monitor": "mon1", "leader": "mon1", "clusters": []any{cluster},
		"monitors": []map[string]any{{"name": "mon1", "address": "10.0.0.100", "self": true, "leader": true}}})
	mux := http.NewServeMux()
	files := os.DirFS("../../daemon/web")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.ServeFileFS(w, r, files, "index.html") })
	mux.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) { http.ServeFileFS(w, r, files, r.PathValue("file")) })
	mux.HandleFunc("GET /api/access", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		write := r.Header.Get("Authorization") == "Bearer "+fakeWriteToken
		fmt.Fprintf(w, `{"monitor":"mon1","read":true,"write":%t,"read_token_required":false,"writes_enabled":true}`, write)
	})
	mux.HandleFunc("POST /api/clusters/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		line := "POST " + r.URL.Path
		for _, k := range slices.Sorted(maps.Keys(q)) {
			line += " " + k + "=" + q.Get(k)
		}
		auth := "no"
		if r.Header.Get("Authorization") == "Bearer "+fakeWriteToken {
			auth = "ok"
		}
		fake.mu.Lock()
		fake.got = append(fake.got, line+" auth="+auth)
		fake.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.PathValue("action") == "pause" && auth == "ok" {
			w.Write([]byte(`{"cluster":"shapes","paused":true}`))
			return
		}
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":{"code":"conflict","message":"no raft leader: try again","blockers":["fake blocker"]}}`))
	})
	mux.HandleFunc("GET /api/clusters/{name}/check", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok","checks":[{"name":"topology","status":"ok","message":"fake"}]}`))
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-cut:
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		default:
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: overview\ndata: %s\n\nevent: failovers\ndata: {\"failovers\":[],\"in_progress\":{}}\n\n", overview)
		w.(http.Flusher).Flush()
		select {
		case <-cut:
		case <-r.Context().Done():
		}
	})
	fake.srv = httptest.NewServer(mux)
	t.Cleanup(fake.srv.Close)
	return fake
}
