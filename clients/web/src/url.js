// URL building: where the SDK sends each request. Red5's names and shapes
// (RED5-COMPAT §3.3, §6): credentials as query parameters
// (?username=&password=&token=), WHIP at /{app}/whip/endpoint/{stream}, WHEP
// at /{app}/whep/endpoint/{stream}?requestId=, the signalling / shared
// object WebSocket at /{app}/?id=, HLS at /{app}/{stream}.m3u8, HTTP-FLV at
// /{app}/{stream}.flv, the Server API under /api/v1 with ?accessToken=.
// Pure functions: no browser API is touched, so node tests them.

/**
 * @typedef {object} ServerOptions
 * @property {string} [host]      host name (default: the page's)
 * @property {number|string} [port] port (default: the page's, else 5080)
 * @property {string} [protocol]  'http' | 'https' (default: the page's, else http)
 * @property {string} [app]       application, rooms included ('live/room1'); default 'live'
 * @property {{username?: string, password?: string, token?: string, [k: string]: any}} [connectionParams]
 * @property {string} [endpoint]  Red5's SM 2.0 option: the full WHIP/WHEP URL (the stream manager's proxy)
 */

function pageLocation() {
  return typeof location !== 'undefined' && location && location.host ? location : null;
}

/** The http(s) origin of the server: "http://host:port". */
export function origin(opts = {}) {
  const loc = pageLocation();
  let protocol = opts.protocol || (loc ? loc.protocol.replace(':', '') : 'http');
  protocol = protocol.replace(/:$/, '');
  if (protocol === 'ws') protocol = 'http';
  if (protocol === 'wss') protocol = 'https';
  const host = opts.host || (loc ? loc.hostname : 'localhost');
  let port = opts.port;
  if (port === undefined || port === null || port === '') {
    port = loc && !opts.host ? loc.port : (protocol === 'https' ? 443 : 5080);
  }
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const defaultPort = (protocol === 'https' && String(port) === '443') || (protocol === 'http' && String(port) === '80');
  return `${protocol}://${h}${port && !defaultPort ? ':' + port : ''}`;
}

/** The app path without leading or trailing slashes, each segment encoded. */
export function appPath(app) {
  const a = String(app === undefined || app === null ? 'live' : app).replace(/^\/+|\/+$/g, '');
  if (!a) throw new Error('app is empty');
  return a.split('/').map(encodeURIComponent).join('/');
}

/**
 * The query of a request: the connection parameters (username, password,
 * token and any other key, Red5's connectionParams), then extra. Keys with
 * an undefined, null or empty value are left out.
 */
export function query(connectionParams, extra) {
  const q = new URLSearchParams();
  for (const src of [connectionParams, extra]) {
    if (!src) continue;
    for (const [k, v] of Object.entries(src)) {
      if (v === undefined || v === null || v === '') continue;
      q.set(k, String(v));
    }
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

function stream(name) {
  if (!name) throw new Error('streamName is required');
  return encodeURIComponent(name);
}

/**
 * Red5's `endpoint` option (HTML5 SDK, Stream Manager 2.0): the full URL of
 * the WHIP or WHEP endpoint, e.g. https://sm/as/v1/proxy/whip/live/stream1;
 * the query (connectionParams: nodeGroup, credentials...) is appended to it.
 */
function withEndpoint(endpoint, q) {
  if (!q) return endpoint;
  return endpoint + (endpoint.includes('?') ? '&' + q.slice(1) : q);
}

/** WHIP endpoint: POST the offer here. extra: {record: 1|'append', signal, ...}. */
export function whipUrl(opts, extra) {
  if (opts.endpoint) return withEndpoint(opts.endpoint, query(opts.connectionParams, extra));
  return `${origin(opts)}/${appPath(opts.app)}/whip/endpoint/${stream(opts.streamName)}${query(opts.connectionParams, extra)}`;
}

/** WHEP endpoint with Red5's requestId (a fresh random one unless given). */
export function whepUrl(opts, extra) {
  const requestId = (extra && extra.requestId) || randomId();
  const q = query(opts.connectionParams, Object.assign({}, extra, { requestId }));
  if (opts.endpoint) return withEndpoint(opts.endpoint, q);
  return `${origin(opts)}/${appPath(opts.app)}/whep/endpoint/${stream(opts.streamName)}${q}`;
}

/** LL-HLS / HLS playlist. */
export function hlsUrl(opts) {
  return `${origin(opts)}/${appPath(opts.app)}/${stream(opts.streamName)}.m3u8${query(opts.connectionParams)}`;
}

/** HTTP-FLV stream. */
export function flvUrl(opts) {
  return `${origin(opts)}/${appPath(opts.app)}/${stream(opts.streamName)}.flv${query(opts.connectionParams)}`;
}

/** Red5's recordings list of an app: /{app}/mediafiles (credentials as the query). */
export function mediaFilesUrl(opts = {}) {
  return `${origin(opts)}/${appPath(opts.app)}/mediafiles${query(opts.connectionParams)}`;
}

/**
 * A recording over HTTP: /{app}/streams/{name} (name relative to the app's
 * streams folder, e.g. 'stream1.flv' or 'room1/take.mp4'; each segment encoded).
 */
export function recordingUrl(opts, name) {
  if (!name) throw new Error('a recording name is required');
  const rel = String(name).replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  return `${origin(opts)}/${appPath(opts.app)}/streams/${rel}${query(opts.connectionParams)}`;
}

/** ws(s) origin matching origin(). */
export function wsOrigin(opts = {}) {
  return origin(opts).replace(/^http/, 'ws');
}

/** The signalling / shared-object WebSocket of an app: /{app}/?id={id}&params. */
export function socketUrl(opts, id) {
  return `${wsOrigin(opts)}/${appPath(opts.app)}/${query(Object.assign({ id: id || randomId() }, opts.connectionParams))}`;
}

/** The event stream: /api/v1/events?app=&stream=&type=&accessToken=. */
export function eventsUrl(opts = {}, filter = {}) {
  const type = Array.isArray(filter.type) ? filter.type.join(',') : filter.type;
  return `${wsOrigin(opts)}/api/v1/events${query({ app: filter.app, stream: filter.stream, type }, { accessToken: opts.accessToken })}`;
}

/** A Server API URL: path relative to /api/v1. */
export function apiUrl(opts, path, params) {
  const p = String(path).replace(/^\/+/, '');
  return `${origin(opts)}/api/v1/${p}${query(params, { accessToken: opts.accessToken })}`;
}

/** 128 random bits as hex (crypto when there is one). */
export function randomId() {
  const b = new Uint8Array(16);
  if (globalThis.crypto && globalThis.crypto.getRandomValues) globalThis.crypto.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}
