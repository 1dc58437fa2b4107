// ApiClient: sluice's Server API (Red5's /api/v1, docs/openapi.yaml). Every
// call sends the access token (Authorization: Bearer), unwraps the
// {status, code, data} envelope and throws ApiError on a failure. Never
// use it in a page a viewer loads: the token is the server's master key.
// RPC: invoke() calls an application's server-side method.

import { apiUrl } from './url.js';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(`API ${status}: ${message}`);
    this.status = status;
    this.body = body;
  }
}

const seg = encodeURIComponent;

export class ApiClient {
  /** options: host, port, protocol, accessToken; deps {fetch}. */
  constructor(options = {}) {
    this.options = Object.assign({}, options);
    this._fetch = (options.deps && options.deps.fetch) || ((...a) => globalThis.fetch(...a));
  }

  /** One call: method, path below /api/v1, JSON body; resolves with `data`. */
  async request(method, path, body, params) {
    const headers = {};
    const o = Object.assign({}, this.options, { accessToken: undefined });
    if (this.options.accessToken) headers.Authorization = 'Bearer ' + this.options.accessToken;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await this._fetch(apiUrl(o, path, params), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let j = null;
    try { j = await r.json(); } catch { /* not JSON */ }
    if (r.status < 200 || r.status >= 300 || (j && j.status && j.status !== 'success')) {
      throw new ApiError(r.status, (j && (j.message || (j.data && j.data.message))) || r.statusText || 'failed', j);
    }
    return j && 'data' in j ? j.data : j;
  }

  server() { return this.request('GET', 'server'); }
  statistics() { return this.request('GET', 'server/statistics'); }
  applications() { return this.request('GET', 'applications'); }
  application(app) { return this.request('GET', `applications/${seg(app)}`); }
  streams(app) { return this.request('GET', `applications/${seg(app)}/streams`); }
  stream(app, name) { return this.request('GET', `applications/${seg(app)}/streams/${seg(name)}`); }
  subscribers(app, name) { return this.request('GET', `applications/${seg(app)}/streams/${seg(name)}/subscribers`); }
  unpublish(app, name) { return this.request('GET', `applications/${seg(app)}/streams/${seg(name)}/action/unpublish`); }
  startRecord(app, name) { return this.request('GET', `applications/${seg(app)}/streams/${seg(name)}/action/startrecord`); }
  stopRecord(app, name) { return this.request('GET', `applications/${seg(app)}/streams/${seg(name)}/action/stoprecord`); }
  clients(app) { return this.request('GET', `applications/${seg(app)}/clients`); }
  sharedObjects(app) { return this.request('GET', `applications/${seg(app)}/sharedobjects`); }
  sharedObjectData(app, so) { return this.request('GET', `applications/${seg(app)}/sharedobjects/${seg(so)}/data`); }
  /** RPC to the app's server side: POST applications/{app}/invoke {method, parameters}. */
  invoke(app, method, parameters = []) { return this.request('POST', `applications/${seg(app)}/invoke`, { method, parameters }); }
}
