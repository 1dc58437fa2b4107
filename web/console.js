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
 *
 * Media: a live stream's Play button opens the player panel with the browser
 * SDK's Subscriber (/lib/sluice/index.js, imported on first use: WHEP, then
 * LL-HLS, then HTTP-FLV, or the one the selector forces); a recording plays
 * from GET /{app}/streams/{name} (Range requests), MP4 in the <video> itself,
 * FLV through mpegts.js. The publish panel goes live from the camera with the
 * SDK's WHIP Publisher. These requests are the app's own (WHIP, WHEP, HLS,
 * recordings): they pass its admission chain like any viewer's, and the API
 * token is never sent with them. window.sluiceConsole exposes what the player
 * and the publisher show, for the browser tests.
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
  const MAX_RECORDINGS = 500;      /* rows shown; the count says how many there are */
  const STATS_MS = 1000;           /* player / publisher statistics refresh */
  const SDK_URL = '/lib/sluice/index.js';
  const FLV_LIB = '/test/lib/mpegts.js';

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
    recordings: [],      /* [{app, name, last_modified, file_size}] */
    mediaDirty: true,    /* re-read the recordings on the next refresh */
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

  /** The app's recordings (Red5's OnDemandMedia list: names relative to its streams folder). */
  async function loadRecordings(app) {
    try {
      const list = await api(`/applications/${enc(app)}/media`);
      return list.map((m) => Object.assign({ app }, m));
    } catch (e) {
      /* A server built without the recorder has no media list: the rest of the page still works. */
      if (e.auth || e.status === 0) throw e;
      return [];
    }
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
      const withMedia = state.mediaDirty;
      state.mediaDirty = false;
      const perApp = await Promise.all(apps.map((a) => Promise.all([loadStreams(a), loadClients(a),
        withMedia ? loadRecordings(a) : null])));
      state.server = Object.assign({}, stats, server);
      state.serverAt = performance.now();
      state.apps = apps;
      state.rtmpOn = server.rtmp_port !== null;
      state.rtmpPort = typeof server.rtmp_port === 'number' ? server.rtmp_port : 1935;
      state.rtmpsPort = typeof server.rtmps_port === 'number' ? server.rtmps_port : null;
      state.streams = perApp.flatMap(([s]) => s);
      state.clients = perApp.flatMap(([, c]) => c);
      if (withMedia) state.recordings = perApp.flatMap(([, , r]) => r);
      state.lastOk = Date.now();
      showNotice('');
      render();
    } catch (e) {
      state.mediaDirty = true;
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
      if (/^(record_|unpublish$)/.test(ev.event || '')) state.mediaDirty = true;
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
    if (Array.isArray(content)) td.append(...content.filter(Boolean));
    else if (content instanceof Node) td.append(content);
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
        const playing = player.kind === 'live' && player.path === st.path;
        return el('tr', { data: { stream: st.path }, class: playing ? 'playing' : '' },
          cell('Stream', el('span', { class: 'name', text: st.path })),
          cell('Codecs', codecs),
          cell('Resolution', res, 'num'),
          cell('FPS', typeof st.fps === 'number' ? st.fps.toFixed(1) : '', 'num'),
          cell('Bitrate', fmtKbps(st.bitrate_in_kbps), 'num'),
          cell('Publisher', [proto, pub].filter(Boolean).join(' ')),
          cell('Uptime', ticking(st.uptime_ms, state.serverAt), 'num'),
          cell('Players', String(st.active_subscribers), 'num players'),
          cell('', [playButton(st.path, () => openLive(st.path)), close], 'act'));
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

  function renderRecordings() {
    const body = $('recordings').tBodies[0];
    const all = state.recordings
      .slice()
      .sort((a, b) => (b.last_modified - a.last_modified) || (a.app + a.name).localeCompare(b.app + b.name));
    const rows = all.slice(0, MAX_RECORDINGS).map((r) => {
      const path = r.app + '/' + r.name;
      const dot = r.name.lastIndexOf('.');
      const ext = dot < 0 ? '' : r.name.slice(dot + 1).toLowerCase();
      const playable = ext === 'flv' || ext === 'mp4';
      const url = recordingUrl(r.app, r.name);
      const download = el('a', { class: 'button ghost', href: url, download: r.name.split('/').pop(),
        title: 'Download (the app\'s play admission applies)', text: 'Download' });
      const del = actionButton('delete:' + path, 'Delete', 'Delete the file', async () => {
        await api(`/applications/${enc(r.app)}/media`, { method: 'DELETE',
          params: { filename: dot < 0 ? r.name : r.name.slice(0, dot), extension: ext } });
        state.mediaDirty = true; /* the refresh after the click re-reads the list (else: the next poll) */
      });
      const playing = player.kind === 'file' && player.path === path;
      return el('tr', { data: { recording: path }, class: playing ? 'playing' : '' },
        cell('Recording', el('span', { class: 'name', text: path })),
        cell('Format', ext.toUpperCase()),
        cell('Size', fmtBytes(r.file_size), 'num'),
        cell('Modified', r.last_modified ? new Date(r.last_modified).toLocaleString() : '', 'num'),
        cell('', [playable ? playButton(path, () => openFile(r.app, r.name)) : null, download, del], 'act'));
    });
    body.replaceChildren(...rows);
    $('recordings-empty').hidden = rows.length > 0;
    $('recordings-count').textContent = String(all.length);
  }

  function render() {
    renderStatus();
    renderStreams();
    renderRecordings();
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
  /* the SDK and the player                                              */

  let sdkLoading = null;

  /** The browser SDK, imported on first use (the console works without it). */
  function loadSdk() {
    if (!sdkLoading) {
      sdkLoading = import(SDK_URL).catch(() => {
        sdkLoading = null;
        throw new Error(`the browser SDK (${SDK_URL}) is not installed in the web root: ` +
          'run make build (scripts/web-players.sh puts it there)');
      });
    }
    return sdkLoading;
  }

  /** Loads mpegts.js (a classic script in the web root) once. */
  let flvLoading = null;
  function loadFlvLib() {
    if (window.mpegts) return Promise.resolve(window.mpegts);
    if (!flvLoading) {
      flvLoading = new Promise((resolve, reject) => {
        const s = document.createElement('script');
        s.src = FLV_LIB;
        s.onload = () => resolve(window.mpegts);
        s.onerror = () => {
          flvLoading = null;
          reject(new Error(`mpegts.js (${FLV_LIB}) is not installed: run make build (scripts/web-players.sh)`));
        };
        document.head.append(s);
      });
    }
    return flvLoading;
  }

  /** /{app}/streams/{name}: the recorder's download route, one encoded segment at a time. */
  function recordingUrl(app, name) {
    return '/' + enc(app) + '/streams/' + name.split('/').map(enc).join('/');
  }

  const TECH_NAMES = {
    whep: 'WebRTC (WHEP)', hls: 'LL-HLS', flv: 'HTTP-FLV', mp4: 'MP4 file', 'flv-file': 'FLV file (mpegts.js)',
  };

  /* What the player panel plays. `gen` grows on every open and close, so a
   * callback of a player that was replaced finds a different number and
   * does nothing. */
  const player = {
    gen: 0,
    kind: null,          /* 'live' | 'file' | null */
    path: '',            /* "live/stream1" or "live/rec1.flv" */
    sub: null,           /* the SDK Subscriber (live) */
    flv: null,           /* the mpegts.js player (an FLV recording) */
    fileTech: '',        /* 'mp4' | 'flv-file' */
    timer: 0,
    last: null,          /* {t, frames, bytes} of the previous sample, for the rates */
    notes: [],           /* fallbacks tried ("WebRTC (WHEP): HTTP 404 ...") */
    view: {},            /* what the panel shows, for window.sluiceConsole */
  };

  function playButton(path, open) {
    const b = el('button', { class: 'ghost play', type: 'button', title: 'Play in the console', text: 'Play',
      data: { play: path } });
    b.addEventListener('click', open);
    return b;
  }

  function playerError(text) {
    const e = $('player-error');
    e.hidden = !text;
    e.textContent = text;
    player.view.error = text;
  }

  function showPlayer(path, live) {
    $('player').hidden = false;
    $('player-title').textContent = path;
    $('player-tech-label').hidden = !live;
    playerError('');
    for (const id of ['pl-tech', 'pl-state', 'pl-size', 'pl-frames', 'pl-fps', 'pl-bitrate', 'pl-time', 'pl-dropped']) {
      $(id).textContent = '–';
    }
    player.view = { kind: player.kind, path, tech: null, state: 'connecting', framesDecoded: 0, error: '' };
    renderStreams();
    renderRecordings();
  }

  /** Stops whatever plays and hides nothing: the caller decides. */
  async function stopPlayer() {
    player.gen++;
    clearInterval(player.timer);
    player.timer = 0;
    const { sub, flv } = player;
    player.sub = null;
    player.flv = null;
    player.last = null;
    player.notes = [];
    const video = $('player-video');
    video.onerror = null;
    if (sub) await sub.unsubscribe().catch(() => {});
    if (flv) {
      try { flv.pause(); flv.unload(); flv.detachMediaElement(); flv.destroy(); } catch (e) { /* already gone */ }
    }
    video.srcObject = null;
    video.removeAttribute('src');
    video.load();
  }

  async function closePlayer() {
    await stopPlayer();
    player.kind = null;
    player.path = '';
    player.view = {};
    $('player').hidden = true;
    renderStreams();
    renderRecordings();
  }

  /** Plays a live stream ("app[/room]/name") with the SDK's Subscriber. */
  async function openLive(path) {
    await stopPlayer();
    const gen = player.gen;
    player.kind = 'live';
    player.path = path;
    showPlayer(path, true);
    $('player').scrollIntoView({ block: 'nearest' });
    let sdk;
    try {
      sdk = await loadSdk();
    } catch (e) {
      playerError(e.message);
      return;
    }
    if (gen !== player.gen) return;
    const cut = path.lastIndexOf('/');
    const force = $('player-tech').value || undefined;
    const sub = new sdk.Subscriber({ app: path.slice(0, cut), streamName: path.slice(cut + 1),
      element: $('player-video'), force });
    player.sub = sub;
    const mine = (f) => (e) => { if (gen === player.gen) f(e.data || {}); };
    sub.on('Subscribe.Start', mine(() => { playerError(''); }));
    sub.on('Subscribe.Fail', mine((d) => {
      player.notes.push(`${TECH_NAMES[d.tech] || d.tech}: ${d.message || 'failed'}`);
      player.notes = player.notes.slice(-3);
    }));
    sub.on('NetStream.Play.StreamNotFound', mine(() => playerError(`${path} is not live; retrying.`)));
    sub.on('NetStream.Play.Failed', mine(() => playerError(`Cannot play ${path}: ${player.notes.join('; ')}. Retrying.`)));
    sub.on('NetStream.Play.UnpublishNotify', mine(() => playerError(`${path} stopped; waiting for it to come back.`)));
    sub.subscribe().catch(() => { /* reported by the events above; the Subscriber retries */ });
    startStats(gen);
  }

  /** Plays a recording: MP4 in the <video> itself, FLV through mpegts.js. */
  async function openFile(app, name) {
    await stopPlayer();
    const gen = player.gen;
    const path = app + '/' + name;
    const url = recordingUrl(app, name);
    const mp4 = /\.mp4$/i.test(name);
    player.kind = 'file';
    player.path = path;
    player.fileTech = mp4 ? 'mp4' : 'flv-file';
    showPlayer(path, false);
    $('player').scrollIntoView({ block: 'nearest' });
    const video = $('player-video');
    try {
      /* A HEAD first, so a refusal (401/403: the app's play admission) or a
       * file deleted meanwhile is said in words, not as a media error. */
      const r = await fetch(url, { method: 'HEAD', cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}${r.status === 401 || r.status === 403 ? ' (the app asks players for credentials)' : ''}`);
      if (mp4) {
        if (gen !== player.gen) return;
        video.onerror = () => { if (gen === player.gen) playerError(`Cannot play ${path}: media error ${video.error ? video.error.code : ''}`); };
        video.src = url;
      } else {
        const mpegts = await loadFlvLib();
        if (gen !== player.gen) return;
        if (!mpegts.isSupported()) throw new Error('this browser has no Media Source Extensions');
        const p = mpegts.createPlayer({ type: 'flv', isLive: false, url });
        p.on(mpegts.Events.ERROR, (type, detail) => { if (gen === player.gen) playerError(`Cannot play ${path}: ${type} ${detail}`); });
        p.attachMediaElement(video);
        p.load();
        player.flv = p;
      }
      video.play().catch(() => { /* autoplay refused: the controls are there */ });
    } catch (e) {
      if (gen === player.gen) playerError(`Cannot play ${path}: ${e.message}`);
      return;
    }
    startStats(gen);
  }

  function startStats(gen) {
    clearInterval(player.timer);
    const run = () => sampleStats(gen).catch(() => { /* the player went away mid-sample */ });
    player.timer = setInterval(run, STATS_MS);
    run();
  }

  /** One sample of the player's statistics, drawn in the panel. */
  async function sampleStats(gen) {
    const video = $('player-video');
    let tech = player.kind === 'file' ? player.fileTech : null;
    let st = '';
    let frames = null;
    let dropped = null;
    let bytes = null;
    if (player.sub) {
      const s = await player.sub.getStats();
      if (gen !== player.gen) return;
      tech = s.tech;
      st = s.state;
      if (s.video) {
        frames = s.video.framesDecoded || 0;
        dropped = s.video.framesDropped ?? null;
        bytes = (s.video.bytesReceived || 0) + (s.audio ? s.audio.bytesReceived || 0 : 0);
      }
      const h = player.sub.handle;
      if (h && h.mpegts && h.mpegts.statisticsInfo) bytes = null; /* rate below, from mpegts.js */
    } else {
      st = video.error ? 'error' : video.ended ? 'ended' : video.paused ? 'paused' :
        video.readyState < 3 ? 'buffering' : 'playing';
    }
    if (frames === null && video.getVideoPlaybackQuality) {
      const q = video.getVideoPlaybackQuality();
      frames = q.totalVideoFrames;
      dropped = q.droppedVideoFrames;
    }
    const now = performance.now();
    const last = player.last;
    let fps = null;
    let kbps = null;
    if (last && now > last.t) {
      if (frames !== null && last.frames !== null && frames >= last.frames) fps = (frames - last.frames) * 1000 / (now - last.t);
      if (bytes !== null && last.bytes !== null && bytes >= last.bytes) kbps = (bytes - last.bytes) * 8 / (now - last.t);
    }
    const flv = player.flv || (player.sub && player.sub.handle && player.sub.handle.mpegts);
    if (kbps === null && flv && flv.statisticsInfo && typeof flv.statisticsInfo.speed === 'number') {
      kbps = flv.statisticsInfo.speed * 8; /* KB/s of the download */
    }
    player.last = { t: now, frames, bytes };
    const w = video.videoWidth;
    const h = video.videoHeight;
    const dur = isFinite(video.duration) ? video.duration : null;
    player.view = Object.assign(player.view, {
      tech, state: st, framesDecoded: frames || 0, droppedFrames: dropped, fps, bitrateKbps: kbps,
      currentTime: video.currentTime, duration: dur, width: w, height: h,
    });
    $('pl-tech').textContent = tech ? TECH_NAMES[tech] || tech : '–';
    $('pl-state').textContent = st || '–';
    $('pl-size').textContent = w && h ? `${w}×${h}` : '–';
    $('pl-frames').textContent = frames === null ? '–' : String(frames);
    $('pl-fps').textContent = fps === null ? '–' : fps.toFixed(1);
    $('pl-bitrate').textContent = kbps === null ? '–' : fmtKbps(kbps);
    $('pl-time').textContent = fmtDuration(video.currentTime * 1000) + (dur ? ' / ' + fmtDuration(dur * 1000) : '');
    $('pl-dropped').textContent = dropped === null || dropped === undefined ? '–' : String(dropped);
    $('player-stats').title = player.notes.length ? 'Tried: ' + player.notes.join('; ') : '';
  }

  /* ------------------------------------------------------------------ */
  /* publishing from this browser                                        */

  const pub = {
    p: null,             /* the SDK Publisher while live */
    media: null,         /* the camera's MediaStream (ours: stopped on Stop) */
    timer: 0,
    view: { state: 'idle' },
  };

  function pubStatus(text, error) {
    $('pub-status').textContent = text;
    const e = $('pub-error');
    e.hidden = !error;
    e.textContent = error || '';
    pub.view.error = error || '';
  }

  function pubControls(live) {
    $('pub-start').hidden = live;
    $('pub-start').disabled = false;
    $('pub-stop').hidden = !live;
    $('pub-app').disabled = live;
    $('pub-name').disabled = live;
    $('pub-record').disabled = live;
  }

  async function goLive() {
    const app = $('pub-app').value || 'live';
    const name = $('pub-name').value.trim();
    if (!name) {
      pubStatus('', 'Give the stream a name.');
      return;
    }
    if (!window.isSecureContext || !navigator.mediaDevices || !window.RTCPeerConnection) {
      pubStatus('', 'The camera needs a secure page: open the console over HTTPS, or on localhost.');
      return;
    }
    $('pub-start').disabled = true;
    pub.view = { state: 'starting', path: app + '/' + name };
    pubStatus('Opening the camera…');
    let p = null;
    try {
      const sdk = await loadSdk();
      p = new sdk.Publisher({ app, streamName: name, record: $('pub-record').checked });
      pub.media = await p.getMedia();
      const preview = $('pub-preview');
      preview.srcObject = pub.media;
      preview.hidden = false;
      preview.play().catch(() => {});
      pubStatus('Connecting…');
      p.on('Publish.Reconnect', (e) => { pub.view.state = 'reconnecting'; pubStatus(`Connection lost; reconnecting in ${e.data.delay} ms…`); });
      p.on('Publish.Fail', (e) => { if (pub.p === p) pubStatus('', `Publishing failed: ${e.data.message}`); });
      p.on('Publish.Start', () => { if (pub.p === p) { pub.view.state = 'publishing'; pubStatus(`Live as ${app}/${name}.`); } });
      pub.p = p;
      await p.publish(pub.media);
    } catch (e) {
      const why = e.status === 409 ? `${app}/${name} is already being published.` :
        e.status === 401 || e.status === 403 ? `the app refused the publisher (HTTP ${e.status}).` :
          e.name === 'NotAllowedError' ? 'the camera was not allowed.' : e.message;
      pub.p = null;
      releaseCamera();
      pubControls(false);
      pub.view.state = 'failed';
      pubStatus('', `Cannot go live: ${why}`);
      return;
    }
    pubControls(true);
    clearInterval(pub.timer);
    pub.timer = setInterval(pubStats, STATS_MS);
    scheduleRefresh(0);
  }

  function releaseCamera() {
    if (pub.media) for (const t of pub.media.getTracks()) t.stop();
    pub.media = null;
    const preview = $('pub-preview');
    preview.srcObject = null;
    preview.hidden = true;
  }

  async function stopLive() {
    clearInterval(pub.timer);
    pub.timer = 0;
    const p = pub.p;
    pub.p = null;
    if (p) await p.unpublish().catch(() => { /* the server drops it anyway once the connection goes */ });
    releaseCamera();
    pubControls(false);
    pub.view = { state: 'idle' };
    pubStatus('Stopped.');
    scheduleRefresh(0);
  }

  async function pubStats() {
    const p = pub.p;
    if (!p || p.state !== 'publishing') return;
    const s = await p.getStats().catch(() => null);
    if (!s || pub.p !== p) return;
    const v = s.video || {};
    Object.assign(pub.view, { framesEncoded: s.framesEncoded, fps: s.fps, bitrateKbps: s.bitrateKbps,
      width: v.frameWidth, height: v.frameHeight });
    const parts = [`Live as ${pub.view.path}`];
    if (v.frameWidth) parts.push(`${v.frameWidth}×${v.frameHeight}`);
    if (typeof s.fps === 'number') parts.push(`${Math.round(s.fps)} fps`);
    if (typeof s.bitrateKbps === 'number') parts.push(fmtKbps(s.bitrateKbps));
    pubStatus(parts.join(' · '));
  }

  window.sluiceConsole = {
    get player() { return Object.assign({}, player.view); },
    get publisher() { return Object.assign({}, pub.view); },
  };

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
    state.pollTimer = setInterval(() => { state.mediaDirty = true; refresh(); }, POLL_MS);
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
    closePlayer();
    if (pub.p) stopLive();
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
    $('pub-start').addEventListener('click', goLive);
    $('pub-stop').addEventListener('click', stopLive);
    $('player-close').addEventListener('click', closePlayer);
    $('player-tech').addEventListener('change', () => { if (player.kind === 'live') openLive(player.path); });
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
