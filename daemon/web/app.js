// myha's live page. Plain JavaScript, no dependencies, served by the
// monitor itself. Everything shown comes from the monitor's API; every
// value from a server or the config is put in the page as text (never as
// markup). The token, when given, goes in the Authorization header only.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'myha.token';
  const S = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    access: null,       // GET /api/access: {read, write, ...}
    needToken: false,
    overview: null,     // the "overview" event
    failovers: null,    // the "failovers" event
    checks: {},         // cluster -> {at, data, error}
    live: false,
    lastData: 0,        // when the last payload arrived (page clock)
    lostAt: 0,
    changes: [],        // what this page saw change, newest first
    prev: null,         // cluster -> {state, primary}
    seenFailovers: null,
    target: {},         // cluster -> chosen switchover target
    streamCtl: null,
  };

  // ---------- helpers ----------

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;

  function fmtMS(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
    return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
  }
  function fmtTime(t) {
    const d = t instanceof Date ? t : new Date(t);
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour12: false });
  }
  function fmtDateTime(t) {
    const d = new Date(t);
    return isNaN(d) ? '' : `${d.toLocaleDateString()} ${fmtTime(d)}`;
  }
  function authHeaders() {
    return S.token ? { Authorization: `Bearer ${S.token}` } : {};
  }
  // errText is an API error answer in words: {"error": {"code", "message",
  // "blockers"}} gives the message and each blocker; anything else its
  // HTTP status.
  function errText(body, status) {
    const e = body && body.error;
    if (e && typeof e === 'object') return [e.message || e.code, ...(e.blockers || [])].join(' — ');
    return (typeof e === 'string' && e) || `HTTP ${status}`;
  }

  async function api(path, opts = {}) {
    const res = await fetch(path, { method: opts.method || 'GET', headers: authHeaders(), cache: 'no-store', signal: opts.signal });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    return { status: res.status, ok: res.ok, body };
  }
  function announce(text) { $('announce').textContent = text; }

  // ---------- cluster facts ----------

  function blockedWhy(c) {
    if (c.automatic_failover_blocked) return c.automatic_failover_blocked;
    if (c.automatic_failover_blocked_until) return `until ${fmtDateTime(c.automatic_failover_blocked_until)} (block_period after a failover)`;
    return '';
  }
  // The state an operator reads first: healthy, suspect, failing over, blocked.
  function clusterState(c) {
    const st = c.state || 'unknown';
    const reasons = (c.verdict && c.verdict.reasons) || [];
    if (c.failover_in_progress) return { key: 'failing-over', label: 'failing over' };
    if (st === 'healthy') return { key: 'healthy', label: 'healthy' };
    if (st === 'dead_primary') {
      if (!c.auto_failover || blockedWhy(c) || reasons.some((r) => r.startsWith('failover refused'))) return { key: 'blocked', label: 'blocked' };
      return { key: 'failing-over', label: 'failing over' };
    }
    if (st === 'no_primary') return { key: 'blocked', label: 'no primary' };
    if (st === 'suspect') return { key: 'suspect', label: 'suspect' };
    return { key: 'suspect', label: st.replace(/_/g, ' ') };
  }
  function armed(c) {
    if (!c.auto_failover) return { key: 'off', label: 'automatic failover off' };
    if (c.paused) return { key: 'paused', label: 'automatic actions paused', why: 'manual failover and switchover still run' };
    const why = blockedWhy(c);
    if (why) return { key: 'blocked', label: 'automatic failover blocked', why };
    return { key: 'armed', label: 'automatic failover armed' };
  }
  // An operator's pause (myha pause), in words: since, until, why.
  function pauseText(c) {
    const p = c.paused;
    if (!p) return '';
    return `since ${fmtDateTime(p.since)}, until ${p.until ? fmtDateTime(p.until) : 'resumed'}${p.reason ? ` — ${p.reason}` : ''}`;
  }
  function pauseFacts(c) {
    return c.paused ? [h('dt', {}, 'Paused'), h('dd', { 'data-field': 'paused' }, pauseText(c))] : null;
  }
  function pausedBadge(c) {
    return c.paused ? h('span', { class: 'badge st-paused', 'data-paused': 'yes', title: pauseText(c) }, 'paused') : null;
  }
  function shownPrimary(c) { return c.primary || ''; }
  function vipText(c) {
    const v = c.vip || {};
    if (!v.agents) return 'unknown (no agent reports)';
    if (!v.holders.length) return 'nobody';
    return v.holders.join(', ');
  }
  function cluster(name) {
    return ((S.overview && S.overview.clusters) || []).find((c) => c.name === name);
  }

  // ---------- what the page saw change ----------

  function noteChanges(ov) {
    const next = {};
    for (const c of ov.clusters || []) next[c.name] = { state: clusterState(c), primary: shownPrimary(c) };
    if (S.prev) {
      for (const [name, n] of Object.entries(next)) {
        const p = S.prev[name];
        if (!p) continue;
        if (p.state.key !== n.state.key) log(name, n.state.key, `${p.state.label} → ${n.state.label}`);
        if (p.primary !== n.primary) log(name, n.state.key, `primary ${p.primary || 'none'} → ${n.primary || 'none'}`);
      }
    }
    S.prev = next;
  }
  function noteFailovers(f) {
    const list = f.failovers || [];
    if (S.seenFailovers !== null) {
      for (const r of list.slice(S.seenFailovers)) log(r.cluster, 'history', `${r.kind} ${r.old_primary} → ${r.new_primary || 'none'}: ${r.result}`);
    }
    S.seenFailovers = list.length;
  }
  function log(clusterName, key, text) {
    S.changes.unshift({ at: new Date(), cluster: clusterName, key, text });
    S.changes.length = Math.min(S.changes.length, 40);
    announce(`${clusterName}: ${text}`);
  }

  // ---------- live stream ----------

  // GET /api/events is Server-Sent Events read with fetch(), so the token
  // travels in the Authorization header like on every other request.
  async function stream() {
    let backoff = 500;
    for (;;) {
      if (S.needToken) { await sleep(500); continue; }
      const ctl = new AbortController();
      S.streamCtl = ctl;
      let watchdog = 0;
      // The monitor sends a comment every 10 s: silence for 25 s means the
      // connection is dead even if TCP has not noticed.
      const kick = () => { clearTimeout(watchdog); watchdog = setTimeout(() => ctl.abort(), 25000); };
      try {
        kick();
        const res = await fetch('/api/events', { headers: authHeaders(), cache: 'no-store', signal: ctl.signal });
        if (res.status === 401) { S.needToken = true; S.access = null; render(); throw new Error('token'); }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        setLive(true);
        backoff = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          kick();
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            onBlock(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (e) { /* reconnect below */ }
      clearTimeout(watchdog);
      if (S.restarting) {
        // A new token: reconnect at once, this is no loss of connection.
        S.restarting = false;
        continue;
      }
      setLive(false);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }
  function restartStream() {
    if (S.streamCtl) {
      S.restarting = true;
      S.streamCtl.abort();
    }
  }

  function onBlock(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'event') name = v;
      else if (field === 'data') data.push(v);
    }
    if (!data.length) return;
    let obj;
    try { obj = JSON.parse(data.join('\n')); } catch (e) { return; }
    S.lastData = Date.now();
    if (name === 'overview') {
      noteChanges(obj);
      S.overview = obj;
    } else if (name === 'failovers') {
      noteFailovers(obj);
      S.failovers = obj;
    }
    schedule();
  }

  function setLive(on) {
    if (S.live === on) return;
    S.live = on;
    if (!on) S.lostAt = Date.now();
    updateHeader();
  }

  // ---------- header ----------

  function updateHeader() {
    const ov = S.overview;
    $('where').textContent = ov ? `monitor ${ov.monitor} · leader ${ov.leader || 'none'}` : '';
    const live = $('live');
    live.className = `live ${S.live ? 'on' : 'off'}`;
    live.textContent = S.live ? 'live' : (S.needToken ? 'token needed' : 'reconnecting…');
    const stale = $('stale');
    // A reconnect that succeeds within a second and a half is not news.
    const lost = !S.live && S.lastData && Date.now() - S.lostAt > 1500;
    if (lost) {
      stale.hidden = false;
      stale.textContent = `Connection to ${ov ? ov.monitor : 'the monitor'} lost at ${fmtTime(new Date(S.lostAt))}: ` +
        `showing what it said at ${fmtTime(new Date(S.lastData))}. Reconnecting…`;
    } else {
      stale.hidden = true;
    }
    const mode = $('mode');
    if (S.access) {
      mode.textContent = S.access.write ? 'operator: actions enabled' : 'read-only';
      mode.className = `mode ${S.access.write ? 'write' : 'read'}`;
    } else {
      mode.textContent = '';
    }
    $('signin').textContent = S.token ? 'Sign out' : 'Sign in';
    document.body.classList.toggle('stale', !!lost);
  }

  // ---------- rendering ----------

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }

  // Each section is replaced only when its markup changed, and focus moves
  // to the element with the same data-key: a keyboard user's place (and an
  // open drop-down) survives the updates that arrive every second.
  function render() {
    updateHeader();
    const main = $('main');
    const sections = view();
    const active = document.activeElement;
    const focusKey = active && main.contains(active) ? active.getAttribute('data-key') : null;
    const old = new Map([...main.children].map((e) => [e.getAttribute('data-sec'), e]));
    const wanted = sections.map((s) => s.getAttribute('data-sec'));
    if (old.size !== sections.length || wanted.some((k, i) => main.children[i] && main.children[i].getAttribute('data-sec') !== k)) {
      main.replaceChildren(...sections);
    } else {
      sections.forEach((s, i) => {
        const cur = main.children[i];
        if (cur.outerHTML !== s.outerHTML) cur.replaceWith(s);
      });
    }
    if (focusKey && !main.contains(active)) {
      const again = main.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (again) again.focus();
    }
  }

  function view() {
    if (S.needToken) return [needTokenView()];
    if (!S.overview) return [h('section', { 'data-sec': 'loading' }, h('p', { class: 'muted' }, 'Waiting for the monitor…'))];
    const m = /^#\/cluster\/(.+)$/.exec(location.hash);
    if (m) {
      const name = decodeURIComponent(m[1]);
      const c = cluster(name);
      if (!c) return [h('section', { 'data-sec': 'missing' }, h('p', {}, `No cluster named ${name} on this monitor. `, h('a', { href: '#/' }, 'All clusters')))];
      return clusterView(c);
    }
    return overviewView();
  }

  function needTokenView() {
    return h('section', { 'data-sec': 'token' },
      h('h1', {}, 'A token is needed'),
      h('p', {}, 'This monitor requires a token to read (security.api_read_token_file). The read token or the write token works.'),
      h('button', { type: 'button', class: 'primary', 'data-key': 'enter-token', onclick: openTokenDialog }, 'Enter a token'));
  }

  function badge(st, extra) {
    return h('span', { class: `badge st-${st.key}`, 'data-state': st.key, title: extra || null }, st.label);
  }

  // ----- overview -----

  function overviewView() {
    const ov = S.overview;
    const cards = (ov.clusters || []).map((c) => {
      const st = clusterState(c);
      const arm = armed(c);
      const up = (c.servers || []).filter((s) => s.reachable).length;
      const reasons = st.key === 'healthy' ? [] : ((c.verdict && c.verdict.reasons) || []);
      return h('li', { class: `card st-${st.key}`, 'data-cluster': c.name },
        h('div', { class: 'card-head' },
          h('h2', {}, h('a', { href: `#/cluster/${encodeURIComponent(c.name)}`, 'data-key': `open-${c.name}` }, c.name)),
          badge(st), pausedBadge(c)),
        h('dl', { class: 'facts' },
          pauseFacts(c),
          h('dt', {}, 'Primary'), h('dd', { 'data-field': 'primary' }, shownPrimary(c) || 'none', c.agreed_primary && c.agreed_primary !== c.primary ? h('span', { class: 'muted' }, ` (agreed: ${c.agreed_primary})`) : null),
          h('dt', {}, 'VIP holder'), h('dd', { 'data-field': 'vip' }, vipText(c)),
          h('dt', {}, 'Failover'), h('dd', { 'data-field': 'armed', 'data-armed': arm.key }, arm.label, arm.why ? h('span', { class: 'muted' }, `: ${arm.why}`) : null),
          h('dt', {}, 'Servers'), h('dd', {}, `${up} of ${plural((c.servers || []).length, 'server')} reachable`),
          h('dt', {}, 'Epoch'), h('dd', {}, String(c.epoch || 0)),
          lastRun(c.name)),
        reasons.length ? h('ul', { class: 'reasons' }, reasons.map((r) => h('li', {}, r))) : null);
    });
    return [
      h('section', { 'data-sec': 'clusters', 'aria-labelledby': 'h-clusters' },
        h('h1', { id: 'h-clusters' }, 'Clusters'),
        cards.length ? h('ul', { class: 'cards' }, cards) : h('p', { class: 'muted' }, 'No cluster configured.')),
      monitorsSection(ov),
      changesSection(null),
    ];
  }

  // The cluster's latest failover or switchover, for the overview.
  function lastRun(name) {
    const r = ((S.failovers && S.failovers.failovers) || []).filter((x) => x.cluster === name).pop();
    if (!r) return null;
    return [h('dt', {}, 'Last change'), h('dd', { 'data-field': 'last-run' }, `${r.kind} ${r.old_primary} → ${r.new_primary || 'none'}: ${r.result}, ${fmtDateTime(r.started)}`)];
  }

  function monitorsSection(ov) {
    const rows = (ov.monitors || []).map((m) => h('tr', { 'data-monitor': m.name },
      h('td', {}, m.name, m.self ? h('span', { class: 'muted' }, ' (this page)') : null),
      h('td', {}, m.address),
      h('td', {}, m.leader ? h('strong', {}, 'leader') : 'follower'),
      h('td', {}, m.self ? '—' : (m.last_heard_ms === undefined ? 'never' : `${fmtMS(m.last_heard_ms)} ago`))));
    return h('section', { 'data-sec': 'monitors', 'aria-labelledby': 'h-monitors' },
      h('h2', { id: 'h-monitors' }, 'Monitors'),
      ov.insecure ? h('p', { class: 'warn' }, 'security.insecure is set: gossip may be unencrypted and raft unauthenticated.') : null,
      h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Address'), h('th', { scope: 'col' }, 'Raft'), h('th', { scope: 'col' }, 'Last gossip'))),
        h('tbody', {}, rows)));
  }

  function changesSection(clusterName) {
    const list = S.changes.filter((c) => !clusterName || c.cluster === clusterName);
    return h('section', { 'data-sec': 'changes', 'aria-labelledby': 'h-changes' },
      h('h2', { id: 'h-changes' }, 'Seen by this page'),
      list.length ? h('ol', { class: 'changes' }, list.map((c) => h('li', { 'data-change': c.key },
        h('time', {}, fmtTime(c.at)), ' ', clusterName ? '' : h('strong', {}, `${c.cluster}: `), c.text)))
        : h('p', { class: 'muted' }, 'No change since this page opened.'));
  }

  // ----- cluster view -----

  function clusterView(c) {
    const st = clusterState(c);
    const arm = armed(c);
    const v = c.verdict || {};
    return [
      h('section', { 'data-sec': 'head', 'aria-labelledby': 'h-cluster' },
        h('p', { class: 'crumbs' }, h('a', { href: '#/', 'data-key': 'back' }, '← All clusters')),
        h('div', { class: 'card-head' }, h('h1', { id: 'h-cluster' }, c.name), badge(st), pausedBadge(c)),
        h('dl', { class: 'facts' },
          pauseFacts(c),
          h('dt', {}, 'Primary'), h('dd', { 'data-field': 'primary' }, shownPrimary(c) || 'none'),
          h('dt', {}, 'Agreed primary'), h('dd', {}, c.agreed_primary || 'none', ` (epoch ${c.epoch || 0})`),
          h('dt', {}, 'VIP holder'), h('dd', {}, vipText(c)),
          h('dt', {}, 'Failover'), h('dd', { 'data-field': 'armed', 'data-armed': arm.key }, arm.label, arm.why ? h('span', { class: 'muted' }, `: ${arm.why}`) : null)),
        (v.reasons || []).length && st.key !== 'healthy' ? h('ul', { class: 'reasons' }, v.reasons.map((r) => h('li', {}, r))) : null,
        (v.warnings || []).length ? h('ul', { class: 'reasons warn' }, v.warnings.map((r) => h('li', {}, r))) : null),
      actionsSection(c, arm),
      treeSection(c),
      checksSection(c),
      historySection(c),
      changesSection(c.name),
    ];
  }

  function actionsSection(c, arm) {
    if (!S.access || !S.access.write) {
      return h('section', { 'data-sec': 'actions' },
        h('p', { class: 'muted' }, S.access && S.access.writes_enabled
          ? 'Read-only: sign in with the write token to switch over, pause or acknowledge a block.'
          : 'Read-only: changes over the API are off on this monitor (no security.api_token_file).'));
    }
    const options = (c.servers || []).filter((s) => s.reachable && s.address !== c.primary).map((s) => s.address);
    let target = S.target[c.name] || '';
    if (target && !options.includes(target)) target = '';
    const sel = h('select', { id: 'so-target', 'data-key': 'so-target', onchange: (e) => { S.target[c.name] = e.target.value; } },
      h('option', { value: '' }, 'the planner’s choice'),
      options.map((a) => h('option', { value: a, selected: a === target }, a)));
    return h('section', { 'data-sec': 'actions', 'aria-labelledby': 'h-actions' },
      h('h2', { id: 'h-actions' }, 'Actions'),
      h('div', { class: 'actions' },
        h('label', { for: 'so-target' }, 'Switch over to '), sel,
        h('button', { type: 'button', 'data-action': 'switchover', 'data-key': 'switchover', onclick: () => reviewSwitchover(c.name) }, 'Review switchover…'),
        c.auto_failover && blockedWhy(c)
          ? h('button', { type: 'button', 'data-action': 'ack', 'data-key': 'ack', onclick: () => reviewAck(c.name) }, 'Acknowledge block…')
          : null,
        h('button', { type: 'button', 'data-action': 'pause', 'data-key': 'pause', onclick: () => reviewPause(c.name) }, c.paused ? 'Pause again…' : 'Pause…'),
        c.paused ? h('button', { type: 'button', 'data-action': 'resume', 'data-key': 'resume', onclick: () => reviewResume(c.name) }, 'Resume…') : null));
  }

  // The replication tree: the primary (or, while it is down, the primary
  // the monitors agreed on) with its replicas below, the co-primary beside
  // it; reachable servers outside the tree, unreachable ones and unlisted
  // replicas set apart.
  function treeSection(c) {
    const servers = c.servers || [];
    const by = new Map(servers.map((s) => [s.address, s]));
    const kids = new Map();
    for (const s of servers) {
      if (s.source && s.reachable) {
        if (!kids.has(s.source)) kids.set(s.source, []);
        kids.get(s.source).push(s);
      }
    }
    const placed = new Set();
    const node = (s, parent) => {
      placed.add(s.address);
      const children = (kids.get(s.address) || []).filter((k) => !placed.has(k.address) && k.co_primary_of !== s.address);
      children.forEach((k) => placed.add(k.address));
      return h('li', { 'data-addr': s.address, 'data-role': s.role, 'data-parent': parent || null },
        serverCard(s, c),
        children.length ? h('ul', { class: 'kids' }, children.map((k) => node(k, s.address))) : null);
    };
    const roots = [];
    const rootAddr = c.primary || c.agreed_primary;
    const root = rootAddr && by.get(rootAddr);
    if (root) {
      roots.push(node(root, null));
      const co = root.co_primary_of && by.get(root.co_primary_of);
      if (co && !placed.has(co.address)) roots.push(node(co, null));
    }
    const outsideNodes = [];
    for (const s of servers) {
      if (s.reachable && !placed.has(s.address)) outsideNodes.push(node(s, null));
    }
    const down = servers.filter((s) => !placed.has(s.address) && !s.reachable);
    const unlisted = c.unlisted_replicas || [];
    return h('section', { 'data-sec': 'tree', 'aria-labelledby': 'h-tree' },
      h('h2', { id: 'h-tree' }, 'Replication'),
      roots.length ? h('ul', { class: 'tree', 'data-tree': 'main' }, roots) : h('p', { class: 'muted' }, 'No primary known.'),
      outsideNodes.length ? [h('h3', {}, 'Not in the tree'), h('ul', { class: 'tree', 'data-tree': 'outside' }, outsideNodes)] : null,
      down.length ? [h('h3', {}, 'Unreachable'), h('ul', { class: 'tree', 'data-tree': 'unreachable' },
        down.map((s) => h('li', { 'data-addr': s.address, 'data-role': s.role }, serverCard(s, c))))] : null,
      unlisted.length ? [h('h3', {}, 'Unlisted replicas'), h('ul', { class: 'plain' }, unlisted.map((u) =>
        h('li', {}, `${u.host}${u.port ? `:${u.port}` : ''} (server_id ${u.server_id || '?'}) replicates from ${u.source}, but is not in the config`)))] : null,
      (c.problems || []).length ? [h('h3', {}, 'Problems'), h('ul', { class: 'reasons' }, c.problems.map((p) => h('li', {}, p)))] : null);
  }

  function yesNo(b) { return b === null || b === undefined ? '—' : (b ? 'Yes' : 'No'); }

  function serverCard(s, c) {
    const facts = [];
    const fact = (k, v, cls) => facts.push(h('dt', {}, k), h('dd', { class: cls || null }, v));
    if (s.reachable) {
      fact('Version', s.version || '—');
      if (s.io_running !== null && s.io_running !== undefined) {
        fact('IO / SQL', `${yesNo(s.io_running)} / ${yesNo(s.sql_running)}`, s.io_running && s.sql_running ? null : 'bad');
        if (s.io_state) fact('IO state', s.io_state);
        fact('Lag', s.lag_seconds === null || s.lag_seconds === undefined ? 'unknown' : `${s.lag_seconds} s`, s.lag_seconds > 0 ? 'warn' : null);
      }
      fact('GTID', s.gtid_position || '—', 'mono');
      if ((s.errant_gtids || []).length) fact('Errant', s.errant_gtids.join(', '), 'bad mono');
    }
    const writable = s.reachable && !s.read_only;
    const tags = s.role && s.role !== 'unknown' ? [h('span', { class: `tag role-${s.role}` }, s.role)] : [];
    if (!s.reachable) tags.push(h('span', { class: 'tag bad' }, 'unreachable'));
    else tags.push(h('span', { class: `tag ${writable ? 'rw' : 'ro'}`, 'data-field': 'read_only' }, writable ? 'writable' : 'read_only'));
    if (s.co_primary_of) tags.push(h('span', { class: 'tag' }, `co-primary of ${s.co_primary_of}`));
    if (s.semi_sync_primary || s.semi_sync_replica) tags.push(h('span', { class: 'tag' }, 'semi-sync'));
    if (writable && s.address !== c.primary) tags.push(h('span', { class: 'tag bad' }, 'second writer'));
    if (s.maintenance) {
      tags.push(h('span', { class: 'tag maint', 'data-maint': 'yes' }, 'in maintenance'));
      facts.push(h('dt', {}, 'Maintenance'), h('dd', { class: 'warn', 'data-field': 'maintenance' }, s.maintenance));
    }
    const canWrite = S.access && S.access.write;
    return h('div', { class: `node${s.reachable ? '' : ' down'}` },
      h('div', { class: 'node-head' }, h('strong', { class: 'addr' }, s.address), tags,
        canWrite ? h('button', { type: 'button', class: 'small', 'data-action': 'maintenance', 'data-server': s.address, 'data-key': `maint-${s.address}`,
          onclick: () => reviewMaint(c.name, s.address, !s.maintenance) }, s.maintenance ? 'End maintenance…' : 'Maintenance…') : null),
      facts.length ? h('dl', { class: 'node-facts' }, facts) : null,
      (s.errors || []).length ? h('ul', { class: 'reasons' }, s.errors.map((e) => h('li', {}, e))) : null);
  }

  // ----- checks -----

  async function loadChecks(name) {
    const cur = S.checks[name];
    if (cur && (cur.loading || Date.now() - cur.at < 10000)) return;
    S.checks[name] = { ...(cur || {}), loading: true, at: Date.now() };
    try {
      const r = await api(`/api/clusters/${encodeURIComponent(name)}/check`);
      S.checks[name] = r.ok ? { at: Date.now(), data: r.body } : { at: Date.now(), error: errText(r.body, r.status) };
    } catch (e) {
      S.checks[name] = { at: Date.now(), error: String(e) };
    }
    schedule();
  }

  function checksSection(c) {
    const ck = S.checks[c.name];
    setTimeout(() => loadChecks(c.name), 0);
    let body;
    if (!ck || (!ck.data && !ck.error)) body = h('p', { class: 'muted' }, 'Loading the checks…');
    else if (ck.error) body = h('p', { class: 'err' }, `Checks unavailable: ${ck.error}`);
    else {
      const all = ck.data.checks || [];
      const item = (k) => h('li', { class: `check ck-${k.status}`, 'data-check': k.name },
        h('span', { class: `tag ck-${k.status}` }, k.status), ' ', h('strong', {}, k.name), k.server ? ` (${k.server})` : '', ': ', k.message,
        k.fix ? h('div', { class: 'fix' }, 'Fix: ', h('code', {}, k.fix)) : null);
      const bad = all.filter((k) => k.status !== 'ok').sort((a, b) => rank(a.status) - rank(b.status));
      const ok = all.filter((k) => k.status === 'ok');
      // The passing checks fold away; the fold stays as the user left it.
      const fold = h('details', { class: 'ok-checks', open: !!S.okOpen, ontoggle: (e) => { S.okOpen = e.target.open; } },
        h('summary', { 'data-key': 'ok-checks' }, `${plural(ok.length, 'check')} pass`),
        h('ul', { class: 'checks' }, ok.map(item)));
      body = [
        h('p', { class: 'muted' }, `Summary: ${ck.data.status} (the checks of myha check, from this monitor's view; refreshed every 10 s).`),
        bad.length ? h('ul', { class: 'checks' }, bad.map(item)) : null,
        ok.length ? fold : null,
      ];
    }
    return h('section', { 'data-sec': 'checks', 'aria-labelledby': 'h-checks' }, h('h2', { id: 'h-checks' }, 'Checks'), body);
  }
  function rank(s) { return { fail: 0, warn: 1, ok: 2 }[s] ?? 3; }

  // ----- history -----

  function historySection(c) {
    const f = S.failovers || {};
    const open = (f.in_progress || {})[c.name];
    const reps = (f.failovers || []).filter((r) => r.cluster === c.name).slice().reverse();
    return h('section', { 'data-sec': 'history', 'aria-labelledby': 'h-history' },
      h('h2', { id: 'h-history' }, 'Failovers and switchovers'),
      open ? h('p', { class: 'warn', 'data-open': open.epoch }, `In progress: ${open.kind} ${open.old_primary} → ${open.new_primary} (epoch ${open.epoch}, led by ${open.leader}${open.promoted ? ', promoted' : ''})`) : null,
      reps.length ? reps.slice(0, 20).map(timeline) : h('p', { class: 'muted' }, 'None recorded.'));
  }

  function timeline(r) {
    const total = Math.max(r.duration_ms || 0, ...(r.steps || []).map((s) => (s.start_ms || 0) + (s.duration_ms || 0)), 1);
    const kind = r.kind ? r.kind[0].toUpperCase() + r.kind.slice(1) : 'Run';
    const ok = r.result === 'success';
    return h('article', { class: 'run', 'data-run': r.id, 'data-result': r.result },
      h('h3', {}, `${kind} ${r.old_primary} → ${r.new_primary || 'none'} `, h('span', { class: `tag ${ok ? 'ck-ok' : r.result === 'partial' ? 'ck-warn' : 'ck-fail'}` }, r.result.toUpperCase()),
        h('span', { class: 'muted' }, ` in ${fmtMS(r.duration_ms)}`)),
      h('p', { class: 'muted' }, `Started ${fmtDateTime(r.started)} · epoch ${r.epoch} · ${r.id}`,
        r.writable_after_ms !== null && r.writable_after_ms !== undefined ? ` · new primary writable after ${fmtMS(r.writable_after_ms)}` : '',
        r.write_blocked_ms !== null && r.write_blocked_ms !== undefined ? ` · writes blocked ${fmtMS(r.write_blocked_ms)}` : ''),
      r.error ? h('p', { class: 'err' }, r.error) : null,
      r.safe_stop ? h('p', { class: 'warn' }, `Stopped at: ${r.safe_stop}`) : null,
      h('ol', { class: 'steps' }, (r.steps || []).map((s) => {
        const bar = h('span', { class: `bar s-${s.status}` });
        bar.style.marginLeft = `${(100 * (s.start_ms || 0)) / total}%`;
        bar.style.width = `${Math.max((100 * (s.duration_ms || 0)) / total, 0.5)}%`;
        return h('li', { class: `step s-${s.status}` },
          h('span', { class: 'at' }, `+${fmtMS(s.start_ms)}`),
          h('span', { class: 'kind' }, s.kind),
          h('span', { class: 'srv' }, s.server || ''),
          h('span', { class: 'dur' }, fmtMS(s.duration_ms)),
          h('span', { class: 'track', 'aria-hidden': 'true' }, bar),
          s.status !== 'done' ? h('span', { class: 'status' }, s.status) : null,
          s.note ? h('span', { class: 'note' }, s.note) : null);
      })),
      (r.warnings || []).length ? h('ul', { class: 'reasons warn' }, r.warnings.map((w) => h('li', {}, w))) : null);
  }

  // ---------- actions ----------

  let act = null; // {title, go, run}

  function openAct(title, goLabel) {
    $('acttitle').textContent = title;
    $('actbody').replaceChildren(h('p', { class: 'muted' }, 'Asking the monitor for the plan…'));
    $('acterr').textContent = '';
    const go = $('actgo');
    go.textContent = goLabel;
    go.hidden = false;
    go.disabled = true;
    $('actcancel').textContent = 'Cancel';
    const dlg = $('actdlg');
    if (!dlg.open) dlg.showModal();
    $('actcancel').focus();
  }

  async function reviewSwitchover(name) {
    const target = S.target[name] || '';
    openAct(`Switchover of ${name}`, 'Switch over');
    const q = new URLSearchParams({ kind: 'switchover' });
    if (target) q.set('new_primary', target);
    let r;
    try { r = await api(`/api/clusters/${encodeURIComponent(name)}/plan?${q}`); } catch (e) { r = { ok: false, body: { error: String(e) } }; }
    if (!r.ok) { $('acterr').textContent = errText(r.body, r.status); return; }
    const p = r.body.plan;
    $('actbody').replaceChildren(
      r.body.ok
        ? h('p', {}, `The leader will promote ${p.new_primary}. This is the plan `, h('code', {}, 'myha switchover --dry-run'),
          ` prints now (from this monitor's view ${fmtMS(r.body.snapshot_age_ms)} ago); the leader plans again when it runs and refuses if the cluster changed.`)
        : h('p', { class: 'err' }, 'The switchover would not run:'),
      h('pre', { class: 'plan', 'data-plan': p.new_primary || '', tabindex: '0' }, r.body.text));
    if (!r.body.ok) return;
    const go = $('actgo');
    go.textContent = `Switch over to ${p.new_primary}`;
    go.disabled = false;
    act = {
      run: () => api(`/api/clusters/${encodeURIComponent(name)}/switchover?${new URLSearchParams({ new_primary: p.new_primary })}`, { method: 'POST' }),
      done: (res) => {
        // A change that ran answers its report (beside the error when it
        // failed); one refused before running answers only the error.
        const rep = (res.body && res.body.report) || res.body || {};
        if (rep.result) return [h('p', { 'data-outcome': rep.result }, `${rep.result.toUpperCase()}: ${rep.old_primary} → ${rep.new_primary} in ${fmtMS(rep.duration_ms)}`), timeline(rep)];
        return [h('p', { class: 'err', 'data-outcome': 'error' }, errText(res.body, res.status))];
      },
    };
    go.focus();
  }

  function reviewAck(name) {
    const c = cluster(name);
    openAct(`Acknowledge the block on ${name}`, 'Acknowledge');
    $('actbody').replaceChildren(
      h('p', {}, `Automatic failovers of ${name} are blocked: ${c ? blockedWhy(c) : ''}.`),
      h('p', {}, 'Acknowledging (myha ack) lets the leader fail over automatically again the next time the primary dies. Nothing else changes.'));
    const go = $('actgo');
    go.disabled = false;
    act = {
      run: () => api(`/api/clusters/${encodeURIComponent(name)}/ack`, { method: 'POST' }),
      done: (res) => res.ok ? [h('p', { 'data-outcome': 'acknowledged' }, 'Acknowledged: automatic failover is armed again.')]
        : [h('p', { class: 'err', 'data-outcome': 'error' }, errText(res.body, res.status))],
    };
    go.focus();
  }

  // A change with no plan to show (pause, resume, maintenance): the dialog
  // says what it does, asks for what it needs, and sends the API's POST.
  function reviewOp(name, title, goLabel, body, path, query, outcome, okText) {
    openAct(title, goLabel);
    $('actbody').replaceChildren(...body);
    const go = $('actgo');
    go.disabled = false;
    let q;
    act = {
      prepare: () => { q = new URLSearchParams(query()); }, // before the dialog's fields go
      run: () => api(`/api/clusters/${encodeURIComponent(name)}/${path}?${q}`, { method: 'POST' }),
      done: (res) => res.ok ? [h('p', { 'data-outcome': outcome }, okText)]
        : [h('p', { class: 'err', 'data-outcome': 'error' }, errText(res.body, res.status))],
    };
    go.focus();
  }
  const field = (id, label, hint) => h('p', {}, h('label', { for: id }, label), ' ', h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false' }), hint ? h('span', { class: 'muted' }, ` ${hint}`) : null);
  const val = (id) => ($(id) ? $(id).value.trim() : '');

  function reviewPause(name) {
    reviewOp(name, `Pause ${name}`, 'Pause', [
      h('p', {}, `Pausing (myha pause) stops every automatic action on ${name}: no automatic failover, fencing or correction; the agreed primary keeps the VIP. Manual failover and switchover still run.`),
      field('act-for', 'For', '(2h, 30m; empty: until resumed)'),
      field('act-reason', 'Reason', '(optional)'),
    ], 'pause', () => {
      const q = {};
      if (val('act-for')) q.for = val('act-for');
      if (val('act-reason')) q.reason = val('act-reason');
      return q;
    }, 'paused', `Paused: no automatic action on ${name} until resumed or the time is up.`);
  }

  function reviewResume(name) {
    reviewOp(name, `Resume ${name}`, 'Resume', [
      h('p', {}, `Resuming (myha resume) lets the monitors act on ${name} again at once: automatic failover, fencing and corrections.`),
    ], 'resume', () => ({}), 'resumed', `Resumed: automatic actions on ${name} are allowed again.`);
  }

  function reviewMaint(name, server, on) {
    reviewOp(name, `${on ? 'Maintenance of' : 'End maintenance of'} ${server}`, on ? 'Start maintenance' : 'End maintenance', on ? [
      h('p', {}, `While in maintenance (myha maintenance) ${server} is never chosen as a new primary, leaves the agents' replica routing and its findings are not counted as problems. The server itself is not changed.`),
      field('act-reason', 'Reason', '(optional)'),
    ] : [
      h('p', {}, `${server} can be chosen as a new primary again, rejoins the agents' replica routing and its findings count again.`),
    ], 'maintenance', () => {
      const q = { server, state: on ? 'on' : 'off' };
      if (on && val('act-reason')) q.reason = val('act-reason');
      return q;
    }, 'maintenance', on ? `${server} is in maintenance.` : `${server} is out of maintenance.`);
  }

  async function runAct() {
    if (!act) return;
    const a = act;
    act = null;
    const go = $('actgo');
    go.disabled = true;
    $('actcancel').textContent = 'Close';
    if (a.prepare) a.prepare();
    $('actbody').replaceChildren(h('p', { 'data-outcome': 'running' }, 'Running on the leader… the tree updates as it goes.'));
    let res;
    try { res = await a.run(); } catch (e) { res = { ok: false, status: 0, body: { error: String(e) } }; }
    if (res.status === 401) {
      $('acterr').textContent = 'The monitor refused the token for changes.';
      await checkAccess();
    }
    $('actbody').replaceChildren(...a.done(res));
    go.hidden = true;
    $('actcancel').focus();
  }

  // ---------- token ----------

  function openTokenDialog() {
    $('token').value = '';
    $('tokenerr').textContent = '';
    $('tokendlg').showModal();
    $('token').focus();
  }

  async function checkAccess() {
    for (;;) {
      try {
        const r = await api('/api/access');
        if (r.status === 401) { S.access = null; S.needToken = true; break; }
        if (r.ok) { S.access = r.body; S.needToken = false; break; }
      } catch (e) { /* the monitor is not answering: try again */ }
      await sleep(2000);
    }
    updateHeader();
    schedule();
  }

  async function useToken(ev) {
    ev.preventDefault();
    const tok = $('token').value.trim();
    if (!tok) return;
    const before = S.token;
    S.token = tok;
    const r = await api('/api/access').catch(() => ({ status: 0 }));
    if (r.status === 401 || (r.ok && r.body.read_token_required === false && !r.body.write)) {
      // Not this monitor's read token, nor its write token.
      S.token = before;
      $('tokenerr').textContent = 'This monitor does not accept that token.';
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, tok);
    $('tokendlg').close();
    await checkAccess();
    restartStream();
  }

  async function signInOut() {
    if (!S.token) { openTokenDialog(); return; }
    S.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    await checkAccess();
    restartStream();
  }

  // ---------- start ----------

  function start() {
    $('signin').addEventListener('click', signInOut);
    $('tokenform').addEventListener('submit', useToken);
    $('tokencancel').addEventListener('click', () => $('tokendlg').close());
    $('actcancel').addEventListener('click', () => { act = null; $('actdlg').close(); });
    $('actgo').addEventListener('click', runAct);
    $('actdlg').addEventListener('close', () => { act = null; });
    window.addEventListener('hashchange', () => { render(); $('main').focus({ preventScroll: true }); window.scrollTo(0, 0); });
    setInterval(updateHeader, 1000);
    checkAccess().then(() => { render(); stream(); });
  }
  start();
})();
