// What the per-app pages share (broadcast, subscribe, streams, and the
// testbeds): the app taken from the page's own URL (/{app}/broadcast.jsp,
// or ?app= on a testbed), Red5's query parameters (host, protocol, port,
// app, streamName, username/password/token or the testbeds' authUsername/
// authPassword/authToken), a log on the page, and window.sluicePage, the
// state the browser tests read.

export const params = new URLSearchParams(location.search);

/** The app of a page served at /{app}[/{room}]/{page}; testbeds pass ?app=. */
export function pageApp(fallback = 'live') {
  if (params.get('app')) return params.get('app');
  const parts = location.pathname.split('/').filter(Boolean);
  parts.pop();
  if (parts.length && parts[0] !== 'sdk' && parts[0] !== 'testbeds') return parts.map(decodeURIComponent).join('/');
  return fallback;
}

/** SDK options from the query: server, app, stream, credentials. */
export function sdkOptions(extra = {}) {
  const cp = {};
  const u = params.get('username') || params.get('authUsername');
  const p = params.get('password') || params.get('authPassword');
  const t = params.get('token') || params.get('authToken');
  if (u) cp.username = u;
  if (p) cp.password = p;
  if (t) cp.token = t;
  const o = { app: pageApp(), streamName: params.get('streamName') || 'stream1', connectionParams: cp };
  if (params.get('host')) o.host = params.get('host');
  if (params.get('port')) o.port = params.get('port');
  if (params.get('protocol')) o.protocol = params.get('protocol');
  return Object.assign(o, extra);
}

export const state = window.sluicePage = { events: [], errors: [], status: 'idle' };

export function log(line) {
  state.events.push(line);
  const pre = document.getElementById('log');
  if (pre) pre.textContent = state.events.slice(-40).join('\n');
}

export function status(s) {
  state.status = s;
  const el = document.getElementById('status');
  if (el) el.textContent = s;
}

export function showError(msg) {
  state.errors.push(msg);
  const el = document.getElementById('error');
  if (el) { el.textContent = msg; el.hidden = false; }
  log('error: ' + msg);
}

export function clearError() {
  const el = document.getElementById('error');
  if (el) el.hidden = true;
}

/** Logs every SDK event of an emitter. */
export function logEvents(emitter) {
  emitter.on('*', (ev) => log(`${ev.type}${ev.data !== undefined ? ' ' + short(ev.data) : ''}`));
}

function short(d) {
  try { const s = typeof d === 'string' ? d : JSON.stringify(d); return s.length > 160 ? s.slice(0, 160) + '...' : s; } catch { return String(d); }
}
