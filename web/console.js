/*
 * The sluice console (web/index.html): reads the Server API (/api/v1, Red5 Pro
 * compatible) with the access token, and follows the event stream
 * (/api/v1/events, a WebSocket) to refresh at once when something happens;
 * a slow poll keeps it right if the WebSocket is down.
 *
 * The token is asked once and kept in localStorage; ?token=... in the page URL
 * is accepted too (and removed from the address bar). API calls send it as
 * "Authorization: Bearer" so it stays out of URLs and logs; only the WebSocket
 * carries it as ?accessToken=, as browsers cannot set headers there.
 *
 * Everything is drawn with DOM calls and textContent: no server value is ever
 * parsed as HTML.
 */
'use strict';

(() => {
  const API = '/api/v1';
  const TOKEN_KEY = 'sluice.console.token';
  const POLL_MS = 10000;           /* fallback refresh, WebSocket or not */
  const EVENT_REFRESH_MS = 150;    /* coalesce a burst of events into one refresh */
  const WS_RETRY_MAX_MS = 15000;
  const MAX_CLIENT_DETAILS = 200;  /* per app; more clients are listed without details */
  const MAX_EVENTS = 50;
  const ARM_MS = 4000;             /* a kick/close button needs a second click within this */

  const $ = (id) => document.getElementById(id);

  const state = {
    token: '',
    apps: [],
    server: null,
    serverAt: 0,         /* performance.now() when `server` was read */
    rtmpPort: 1935,
    rtmpOn: true,
    rtmpsPort: null,
    streams: [],
    clients: [],
    events: [],
    armed: new Map(),    /* button key -> performance.now() deadline */
    ws: null,
    wsRetryMs: 1000,
    wsTimer: 0,
    pollTimer: 0,
    refreshTimer: 0,
    refreshing: false,
    refreshAgain: false,
    lastOk: 0,
    stopped: true,
  };

  /* ------------------------------------------------------------------ */
  /* API                                                                 */

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
    get auth() { return this.status === 401 || this.status === 403 || this.status === 429; }
  }

  /** Calls /api/v1{path}; resolves to the envelope's data, rejects with ApiError. */
  async function api(path, { method = 'GET', params = {} } = {}) {
    const url = new URL(API + path, location.origin);
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
    }
    let resp;
    try {
      resp = await fetch(url, {
        method,
        headers: { Authorization: 'Bearer ' + state.token },
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'The server cannot be reached.');
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON: handled below */ }
    if (!resp.ok || !body || body.status !== 'success') {
      throw new ApiError(resp.status, (body && body.message) || resp.statusText || 'Request failed.');
    }
    return body.data;
  }

  /** "live/room1" -> {app: "live", scope: "room1"} (rooms are scopes inside an app). */
  function splitScope(path) {
    const i = path.indexOf('/');
    return i < 0 ? { app: path, scope: '' } : { app: path.slice(0, i), scope: path.slice(i + 1) };
  }

  const enc = encodeURIComponent;

  async function loadStreams(app) {
    const names = await api(`/applications/${enc(app)}/streams`);
    const details = await Promise.all(names.map(async (rel) => {
      const cut = rel.lastIndexOf('/');
      const scope = cut < 0 ? '' : rel.slice(0, cut);
      const name = rel.slice(cut + 1);
      try {
        const d = await api(`/applications/${enc(app)}/streams/${enc(name)}`, { params: { scope } });
        return Object.assign(d, { app, scope, path: app + '/' + rel });
      } catch (e) {
        if (e.status === 404) return null; /* ended between the two calls */
        throw e;
      }
    }));
    return details.filter(Boolean);
  }

  async function loadClients(app) {
    const list = await api(`/applications/${enc(app)}/clients`);
    const details = await Promise.all(list.map(async (c, i) => {
      if (i >= MAX_CLIENT_DETAILS) return Object.assign({ app }, c);
      try {
        return await api(`/applications/${enc(app)}/clients/${enc(c.id)}`);
      } catch (e) {
        if (e.status === 404) return null; /* left between the two calls */
        throw e;
      }
    }));
    return details.filter(Boolean);
  }

  /** Reads everything the page shows. Concurrent calls coalesce into one more run. */
  async function refresh() {
    if (state.stopped) return;
    if (state.refreshing) {
      state.refreshAgain = true;
      return;
    }
    state.refreshing = true;
    try {
      const [server, stats, apps] = await Promise.all([
        api('/server'), api('/server/statistics'), api('/applications'),
      ]);
      const perApp = await Promise.all(apps.map((a) => Promise.all([loadStreams(a), loadClients(a)])));
      state.server = Object.assign({}, stats, server);
      state.serverAt = performance.now();
      state.apps = apps;
      state.rtmpOn = server.rtmp_port !== null;
      state.rtmpPort = typeof server.rtmp_port === 'number' ? server.rtmp_port : 1935;
      state.rtmpsPort = typeof server.rtmps_port === 'number' ? server.rtmps_port : null;
      state.streams = perApp.flatMap(([s]) => s);
      state.clients = perApp.flatMap(([, c]) => c);
      state.lastOk = Date.now();
      showNotice('');
      render();
    } catch (e) {
      if (e instanceof ApiError && e.auth) {
        signOut(e.status === 401 ? 'The access token was not accepted.' : e.message);
        return;
      }
      showNotice('Cannot refresh: ' + e.message + ' Retrying…', true);
    } finally {
      state.refreshing = false;
    }
    if (state.refreshAgain) {
      state.refreshAgain = false;
      refresh();
    }
  }

  function scheduleRefresh(delay = EVENT_REFRESH_MS) {
    if (state.refreshTimer) return;
    state.refreshTimer = setTimeout(() => {
      state.refreshTimer = 0;
      refresh();
    }, delay);
  }

  /* ------------------------------------------------------------------ */
  /* event stream                                                        */

  function setLive(mode, text) {
    const pill = $('live');
    pill.dataset.state = mode;
    pill.textContent = text;
  }

  function connectEvents() {
    clearTimeout(state.wsTimer);
    if (state.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${API}/events?accessToken=${enc(state.token)}`);
    state.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      state.wsRetryMs = 1000;
      setLive('live', 'live');
      scheduleRefresh(0); /* catch up on what happened while disconnected */
    };
    ws.onmessage = (msg) => {
      let ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      addEvent(ev);
      scheduleRefresh();
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      if (state.stopped) return;
      setLive('polling', 'polling');
      /* A refused upgrade (bad token) closes before opening: the poll's
       * refresh then reports the token problem. */
      state.wsTimer = setTimeout(connectEvents, state.wsRetryMs);
      state.wsRetryMs = Math.min(WS_RETRY_MAX_MS, state.wsRetryMs * 2);
      if (!opened) scheduleRefresh(0);
    };
  }

  function addEvent(ev) {
    state.events.unshift(ev);
    state.events.length = Math.min(state.events.length, MAX_EVENTS);
    renderEvents();
  }

  /* ------------------------------------------------------------------ */
  /* formatting                                                          */

  function fmtBytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '–';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + units[i];
  }

  function fmtDuration(ms) {
    if (typeof ms !== 'number' || !isFinite(ms) || ms < 0) return '–';
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const p = (x) => String(x).padStart(2, '0');
    if (d) return `${d}d ${h}h ${p(m)}m`;
    if (h) return `${h}h ${p(m)}m ${p(s)}s`;
    if (m) return `${m}m ${p(s)}s`;
    return `${s}s`;
  }

  function fmtKbps(k) {
    if (typeof k !== 'number' || !isFinite(k)) return '–';
    return k >= 10000 ? (k / 1000).toFixed(1) + ' Mb/s' : Math.round(k) + ' kb/s';
  }

  function hostForUrl() {
    const h = location.hostname || 'localhost';
    return h.includes(':') ? `[${h}]` : h;
  }

  /* ------------------------------------------------------------------ */
  /* rendering                                                           */

  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') e.className = v;
      else if (k === 'data') Object.assign(e.dataset, v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  function cell(label, content, cls) {
    const td = el('td', { 'data-label': label });
    if (cls) td.className = cls;
    if (content instanceof Node) td.append(content);
    else td.textContent = content === undefined || content === null || content === '' ? '–' : String(content);
    return td;
  }

  /* Counts that tick between refreshes: elements with data-base-ms grow with time. */
  function ticking(ms, at) {
    return el('span', { class: 'tick', data: { baseMs: String(ms), at: String(at) }, text: fmtDuration(ms) });
  }

  function tick() {
    const now = performance.now();
    for (const e of document.querySelectorAll('[data-base-ms]')) {
      e.textContent = fmtDuration(Number(e.dataset.baseMs) + now - Number(e.dataset.at));
    }
    for (const [key, until] of state.armed) {
      if (until < now) { state.armed.delete(key); renderArmed(key); }
    }
  }

  /** A button that acts on the second click (the first one arms it for ARM_MS). */
  function actionButton(key, label, title, action) {
    const b = el('button', { class: 'danger', type: 'button', title, data: { key, label } });
    paintButton(b);
    b.addEventListener('click', async () => {
      const now = performance.now();
      if (!(state.armed.get(key) > now)) {
        state.armed.set(key, now + ARM_MS);
        paintButton(b);
        return;
      }
      state.armed.delete(key);
      b.disabled = true;
      b.textContent = '…';
      try {
        await action();
      } catch (e) {
        showNotice(`${label} failed: ${e.message}`, true);
        b.disabled = false;
        paintButton(b);
      }
      scheduleRefresh(0);
    });
    return b;
  }

  function paintButton(b) {
    const armed = state.armed.get(b.dataset.key) > performance.now();
    b.classList.toggle('armed', armed);
    b.textContent = armed ? 'Confirm' : b.dataset.label;
  }

  function renderArmed(key) {
    for (const b of document.querySelectorAll('button[data-key]')) {
      if (b.dataset.key === key) paintButton(b);
    }
  }

  function renderStatus() {
    const s = state.server;
    $('s-version').textContent = s.red5_pro_version || '–';
    const up = $('s-uptime');
    up.dataset.baseMs = String(s.uptime);
    up.dataset.at = String(state.serverAt);
    up.textContent = fmtDuration(s.uptime);
    /* Red5's connection counts include HTTP connections (this page's own
     * among them); the card shows the media clients listed below. */
    $('s-clients').textContent = String(state.clients.length);
    $('s-connections').textContent =
      `${s.active_connections} connections incl. HTTP · ${s.total_connections} since start`;
    $('s-streams').textContent = String(state.streams.length);
    $('s-bytes-in').textContent = fmtBytes(s.bytes_in);
    $('s-bytes-out').textContent = fmtBytes(s.bytes_out);
    $('server-name').textContent = `${location.host} · sluice ${s.red5_pro_version}`;
    $('updated').textContent = 'Updated ' + new Date(state.lastOk).toLocaleTimeString();
  }

  function renderStreams() {
    const body = $('streams').tBodies[0];
    const rows = state.streams
      .slice()
      .sort((a, b) => a.path.localeCompare(b.path))
      .map((st) => {
        const codecs = [st.video_codec, st.audio_codec].filter(Boolean).join(' / ');
        const res = st.width && st.height ? `${st.width}×${st.height}` : '';
        const pub = st.publisher ? `${st.publisher.remote_address}:${st.publisher.remote_port}` : '';
        const proto = st.publisher ? st.publisher.protocol : '';
        const close = actionButton('close:' + st.path, 'Close', 'Unpublish: disconnect the publisher', () =>
          api(`/applications/${enc(st.app)}/streams/${enc(st.publish_name)}/action/unpublish`,
            { params: { scope: st.scope } }));
        return el('tr', { data: { stream: st.path } },
          cell('Stream', el('span', { class: 'name', text: st.path })),
          cell('Codecs', codecs),
          cell('Resolution', res, 'num'),
          cell('FPS', typeof st.fps === 'number' ? st.fps.toFixed(1) : '', 'num'),
          cell('Bitrate', fmtKbps(st.bitrate_in_kbps), 'num'),
          cell('Publisher', [proto, pub].filter(Boolean).join(' ')),
          cell('Uptime', ticking(st.uptime_ms, state.serverAt), 'num'),
          cell('Players', String(st.active_subscribers), 'num players'),
          cell('', close, 'act'));
      });
    body.replaceChildren(...rows);
    $('streams-empty').hidden = rows.length > 0;
    $('streams-count').textContent = String(rows.length);
  }

  function renderClients() {
    const body = $('clients').tBodies[0];
    const now = Date.now();
    const rows = state.clients
      .slice()
      .sort((a, b) => (a.creation_time - b.creation_time) || a.id.localeCompare(b.id))
      .map((c) => {
        const where = c.app ? c.app + (c.stream ? '/' + c.stream : '') : '';
        const role = c.role && c.role !== 'none' ? el('span', { class: 'tag ' + c.role, text: c.role }) : '';
        const { app, scope } = splitScope(c.app || '');
        const kick = actionButton('kick:' + c.id, 'Kick', 'Disconnect this client', () =>
          api(`/applications/${enc(app)}/clients/${enc(c.id)}`, { method: 'DELETE', params: { scope } }));
        return el('tr', { data: { clientId: c.id, role: c.role || '' } },
          cell('ID', el('span', { class: 'mono', text: c.id })),
          cell('Protocol', c.connection_protocol),
          cell('Address', c.remote_port ? `${c.remote_address}:${c.remote_port}` : c.remote_address),
          cell('App / stream', where),
          cell('Role', role),
          cell('In', fmtBytes(c.bytes_in), 'num'),
          cell('Out', fmtBytes(c.bytes_out), 'num'),
          cell('Connected', ticking(Math.max(0, now - c.creation_time), performance.now()), 'num'),
          cell('', app ? kick : '', 'act'));
      });
    body.replaceChildren(...rows);
    $('clients-empty').hidden = rows.length > 0;
    $('clients-count').textContent = String(rows.length);
  }

  function renderEvents() {
    const items = state.events.map((ev) => {
      const t = new Date(ev.time || Date.now());
      const what = [
        ev.app ? ev.app + (ev.stream ? '/' + ev.stream : '') : '',
        ev.protocol || '',
        ev.remote_address || '',
        ev.session ? '#' + ev.session : '',
        ev.reason ? '(' + ev.reason + ')' : '',
      ].filter(Boolean).join('  ');
      return el('li', { data: { event: ev.event || '' } },
        el('time', { datetime: t.toISOString(), text: t.toLocaleTimeString() }),
        el('span', { class: 'ev ev-' + (ev.event || ''), text: ev.event || '?' }),
        el('span', { class: 'what', title: what, text: what }));
    });
    $('events').replaceChildren(...items);
    $('events-empty').hidden = items.length > 0;
  }

  function renderPublish() {
    const sel = $('pub-app');
    const current = sel.value || 'live';
    if (sel.options.length !== state.apps.length ||
        [...sel.options].some((o, i) => o.value !== state.apps[i])) {
      sel.replaceChildren(...state.apps.map((a) => el('option', { value: a, text: a })));
      sel.value = state.apps.includes(current) ? current : (state.apps[0] || '');
    }
    const app = sel.value || 'live';
    const name = $('pub-name').value.trim() || 'stream1';
    const base = `rtmp://${hostForUrl()}:${state.rtmpPort}/${app}`;
    $('pub-url').textContent = `${base}/${name}`;
    $('pub-obs-server').textContent = base;
    $('pub-obs-key').textContent = name;
    $('pub-ffmpeg').textContent = `ffmpeg -re -i input.mp4 -c:v libx264 -c:a aac -f flv ${base}/${name}`;
    $('pub-off').hidden = state.rtmpOn;
    const tls = state.rtmpsPort !== null;
    $('pub-rtmps-label').hidden = !tls;
    $('pub-rtmps-row').hidden = !tls;
    $('pub-rtmps').textContent = tls ? `rtmps://${hostForUrl()}:${state.rtmpsPort}/${app}/${name}` : '';
  }

  function render() {
    renderStatus();
    renderStreams();
    renderClients();
    renderPublish();
  }

  function showNotice(text, isError) {
    const n = $('notice');
    n.hidden = !text;
    n.textContent = text;
    n.classList.toggle('error', Boolean(isError));
  }

  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      /* not a secure context (plain http to a remote host): select it instead */
      const range = document.createRange();
      range.selectNodeContents($(button.dataset.copy));
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      try { document.execCommand('copy'); } catch (e2) { /* left selected for Ctrl+C */ }
    }
    const was = button.textContent;
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = was; }, 1200);
  }

  /* ------------------------------------------------------------------ */
  /* token and lifecycle                                                 */

  function tokenFromUrl() {
    const url = new URL(location.href);
    const t = url.searchParams.get('token');
    if (t === null) return '';
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
    return t.trim();
  }

  function start() {
    state.stopped = false;
    $('login').hidden = true;
    $('dashboard').hidden = false;
    $('change-token').hidden = false;
    setLive('polling', 'connecting');
    refresh();
    connectEvents();
    clearInterval(state.pollTimer);
    state.pollTimer = setInterval(refresh, POLL_MS);
  }

  function stop() {
    state.stopped = true;
    clearInterval(state.pollTimer);
    clearTimeout(state.wsTimer);
    clearTimeout(state.refreshTimer);
    state.refreshTimer = 0;
    if (state.ws) {
      const ws = state.ws;
      state.ws = null;
      ws.close();
    }
    setLive('off', 'offline');
  }

  function signOut(message) {
    stop();
    localStorage.removeItem(TOKEN_KEY);
    state.token = '';
    $('dashboard').hidden = true;
    $('change-token').hidden = true;
    $('login').hidden = false;
    const err = $('login-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('token-input').value = '';
    $('token-input').focus();
  }

  async function tryToken(token) {
    state.token = token;
    const btn = $('token-submit');
    btn.disabled = true;
    try {
      await api('/server');
    } catch (e) {
      if (e.auth) {
        signOut(e.status === 401 ? 'That token was not accepted.' : e.message);
        return;
      }
      /* The server is unreachable, not the token wrong: keep it and let the
       * poll and the event stream retry. */
    } finally {
      btn.disabled = false;
    }
    localStorage.setItem(TOKEN_KEY, token);
    start();
  }

  function init() {
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token-input').value.trim();
      if (t) tryToken(t);
    });
    $('change-token').addEventListener('click', () => signOut(''));
    $('pub-app').addEventListener('change', renderPublish);
    $('pub-name').addEventListener('input', renderPublish);
    for (const b of document.querySelectorAll('button.copy')) {
      b.addEventListener('click', () => copyText($(b.dataset.copy).textContent, b));
    }
    setInterval(tick, 1000);

    const fromUrl = tokenFromUrl();
    const token = fromUrl || localStorage.getItem(TOKEN_KEY) || '';
    if (token) tryToken(token);
    else signOut('');
  }

  init();
})();
