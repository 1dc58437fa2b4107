// EventsClient: the server's event stream (ws://host/api/v1/events, JSON
// messages, filtered by app, stream and type; the API access token is
// needed). Each message is emitted under its `event` name and under
// 'message'; the client reconnects with backoff when the socket drops.

import { Emitter } from './emitter.js';
import { Reconnector } from './backoff.js';
import { eventsUrl } from './url.js';

export class EventsClient extends Emitter {
  /**
   * options: host, port, protocol, accessToken, filter {app, stream, type},
   * reconnect (BackoffOptions), deps {WebSocket}.
   */
  constructor(options = {}) {
    super();
    this.options = options;
    this.url = eventsUrl(options, options.filter || {});
    this._WebSocket = (options.deps && options.deps.WebSocket) || globalThis.WebSocket;
    this.reconnector = new Reconnector(options.reconnect);
    this.ws = null;
    this.closed = false;
  }

  /** Opens the socket; resolves when open. */
  open() {
    this.closed = false;
    return new Promise((resolve, reject) => {
      const ws = new this._WebSocket(this.url);
      this.ws = ws;
      let opened = false;
      ws.onopen = () => { opened = true; this.reconnector.reset(); this.emit('open'); resolve(this); };
      ws.onerror = () => { if (!opened) reject(new Error(`cannot open ${this.url.replace(/accessToken=[^&]*/, 'accessToken=...')}`)); };
      ws.onmessage = (e) => this.receive(e.data);
      ws.onclose = () => {
        this.emit('close');
        if (!this.closed && opened) this.reconnector.schedule(() => this.open().catch(() => {}));
      };
    });
  }

  /** Handles one message text (public for tests). */
  receive(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    if (!m || typeof m !== 'object') return;
    this.emit('message', m);
    if (typeof m.event === 'string') this.emit(m.event, m);
  }

  close() {
    this.closed = true;
    this.reconnector.cancel();
    if (this.ws) this.ws.close();
  }
}
