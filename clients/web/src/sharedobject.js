// SharedObject: Red5's remote shared objects in their JSON form (Red5
// HTML5 SDK <= 12, docs/integration/shared-objects.md "JSON wire form"),
// over any carrier that sends and receives JSON text: the app's WebSocket
// (SharedObjectSocket, /{app}/?id=), or the `red5pro` data channel of a
// Publisher or Subscriber (dataChannelTransport). Events (Red5's):
// Connect.Success, Connect.Failure, SharedObject.PropertyUpdate {key: value},
// SharedObject.PropertyRemove {attribute}, SharedObject.MethodUpdate
// {methodName, message}, SharedObject.Connection.Closed, plus
// SharedObject.Error {code, message} (sluice's error messages).

import { Emitter } from './emitter.js';
import { socketUrl } from './url.js';

export const SharedObjectEvents = Object.freeze({
  CONNECT_SUCCESS: 'Connect.Success',
  CONNECT_FAILURE: 'Connect.Failure',
  PROPERTY_UPDATE: 'SharedObject.PropertyUpdate',
  PROPERTY_REMOVE: 'SharedObject.PropertyRemove',
  METHOD_UPDATE: 'SharedObject.MethodUpdate',
  CONNECTION_CLOSED: 'SharedObject.Connection.Closed',
  ERROR: 'SharedObject.Error',
});

/**
 * A carrier: send(text), and onMessage(fn) registering fn(text) for each
 * message received; returns a function that unregisters it.
 * @typedef {{send: (text: string) => void, onMessage: (fn: (text: string) => void) => () => void}} Transport
 */

/**
 * A Transport over an RTCDataChannel (the Publisher's or Subscriber's `dc`):
 * its text messages, then null once it closed.
 */
export function dataChannelTransport(dc) {
  return {
    send: (t) => dc.send(t),
    onMessage(fn) {
      const h = (e) => { if (typeof e.data === 'string') fn(e.data); };
      const c = () => fn(null);
      dc.addEventListener('message', h);
      dc.addEventListener('close', c);
      return () => { dc.removeEventListener('message', h); dc.removeEventListener('close', c); };
    },
  };
}

/** Resolves once dc is open (at once if it is); rejects when it closes first or after ms. */
export function channelOpen(dc, ms = 15000) {
  if (!dc) return Promise.reject(new Error('no data channel (publish or subscribe over WebRTC first)'));
  if (dc.readyState === 'open') return Promise.resolve(dc);
  if (dc.readyState === 'closing' || dc.readyState === 'closed') return Promise.reject(new Error('the data channel is closed'));
  return new Promise((resolve, reject) => {
    const done = (err) => {
      clearTimeout(t);
      dc.removeEventListener('open', ok);
      dc.removeEventListener('close', bad);
      if (err) reject(err); else resolve(dc);
    };
    const ok = () => done(null);
    const bad = () => done(new Error('the data channel closed before it opened'));
    const t = setTimeout(() => done(new Error(`the data channel did not open within ${ms} ms`)), ms);
    dc.addEventListener('open', ok);
    dc.addEventListener('close', bad);
  });
}

/**
 * The app's WebSocket as a Transport (Red5's Red5ProSharedObjectSocket):
 * ws(s)://host/{app}/?id=...&username=&password=&token=. open() resolves once
 * it is open.
 */
export class SharedObjectSocket {
  constructor(options = {}, deps = {}) {
    this.url = socketUrl(options, options.id);
    this._WebSocket = deps.WebSocket || globalThis.WebSocket;
    this.ws = null;
    this.handlers = new Set();
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new this._WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => resolve(this);
      ws.onerror = () => reject(new Error(`WebSocket ${this.url} failed`));
      ws.onmessage = (e) => { for (const h of [...this.handlers]) h(typeof e.data === 'string' ? e.data : ''); };
      ws.onclose = () => { for (const h of [...this.handlers]) h(null); };
    });
  }

  send(text) { this.ws.send(text); }

  onMessage(fn) {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  close() { if (this.ws) this.ws.close(); }
}

/** Red5's SDK: new Red5ProSharedObject(name, connection). */
export class SharedObject extends Emitter {
  /** @param {string} name  @param {Transport} transport */
  constructor(name, transport) {
    super();
    if (!name) throw new Error('a shared object needs a name');
    this.name = name;
    this.transport = transport;
    /** The attributes as this client knows them. */
    this.properties = {};
    this.version = -1;
    this.persistent = false;
    this.connected = false;
    this._pending = new Map(); /* our sets, until the server says they were applied (subtype 5) */
    this._off = transport.onMessage((text) => this.receive(text));
  }

  _post(key, body) {
    this.transport.send(JSON.stringify({ [key]: Object.assign({ name: this.name }, body) }));
  }

  /** Joins the object (GetRemote then Connect, as the SDK does). persistent: sluice's extension. */
  connect({ persistent } = {}) {
    this._post('sharedObjectGetRemote', {});
    this._post('sharedObjectConnect', persistent ? { persistent: true } : {});
  }

  /** Sets a key; value undefined removes it (Red5's way). */
  setProperty(key, value) {
    this._pending.set(key, value);
    if (value === undefined) this._post('sharedObjectSetProperty', { key });
    else this._post('sharedObjectSetProperty', { key, value });
  }

  /** Removes a key. */
  deleteProperty(key) { this.setProperty(key, undefined); }

  getProperty(key) { return this.properties[key]; }

  /** Calls `method` on every client of the object (this one too). */
  send(method, message) { this._post('sharedObjectSend', { method, message }); }

  /** Leaves the object. */
  close() {
    if (this.transport) this._post('sharedObjectClose', {});
    this._detach();
  }

  _detach() {
    if (this._off) this._off();
    this._off = null;
    if (this.connected) { this.connected = false; this.emit(SharedObjectEvents.CONNECTION_CLOSED, { name: this.name }); }
  }

  /**
   * Handles one message of the carrier (text, or null when it closed).
   * Messages of other objects or other kinds are ignored. Returns true when
   * it was this object's.
   */
  receive(text) {
    if (text === null) { this._detach(); return false; }
    let msg;
    try { msg = JSON.parse(text); } catch { return false; }
    const d = msg && msg.data;
    if (!d || typeof d !== 'object' || d.name !== this.name) return false;
    if (d.type === 'sharedobject' && Array.isArray(d.events)) {
      if (typeof d.version === 'number') this.version = d.version;
      for (const ev of d.events) this._event(ev);
      return true;
    }
    if (d.type === 'error') {
      this.emit(SharedObjectEvents.ERROR, { code: d.code, message: d.message });
      return true;
    }
    switch (d.status) {
    case 'SharedObject.Status.GetRemote':
      return true;
    case 'SharedObject.Status.Connect':
      if (d.message === 'Success') {
        this.connected = true;
        if (typeof d.version === 'number') this.version = d.version;
        this.persistent = !!d.persistent;
        this.emit(SharedObjectEvents.CONNECT_SUCCESS, { name: this.name, version: this.version });
      } else {
        this.emit(SharedObjectEvents.CONNECT_FAILURE, { name: this.name, code: d.code, message: d.message });
      }
      return true;
    case 'SharedObject.Status.Disconnect':
      this._detach();
      return true;
    default:
      return false;
    }
  }

  _event(ev) {
    switch (ev.subtype) {
    case 4: /* change (or initial data) */
      this.properties[ev.attribute] = ev.value;
      this.emit(SharedObjectEvents.PROPERTY_UPDATE, { [ev.attribute]: ev.value });
      break;
    case 5: /* our own set was applied: the SDK is silent, properties follow it */
      if (this._pending.has(ev.attribute)) {
        const v = this._pending.get(ev.attribute);
        this._pending.delete(ev.attribute);
        if (v === undefined) delete this.properties[ev.attribute];
        else this.properties[ev.attribute] = v;
      }
      break;
    case 9:
      delete this.properties[ev.attribute];
      this.emit(SharedObjectEvents.PROPERTY_REMOVE, { attribute: ev.attribute });
      break;
    case 8:
      for (const k of Object.keys(this.properties)) {
        delete this.properties[k];
        this.emit(SharedObjectEvents.PROPERTY_REMOVE, { attribute: k });
      }
      break;
    case 6: {
      const args = Array.isArray(ev.value) ? ev.value : [ev.value];
      this.emit(SharedObjectEvents.METHOD_UPDATE, { methodName: ev.method, message: args.length === 1 ? args[0] : args, args });
      break;
    }
    case 7:
      this.emit(SharedObjectEvents.ERROR, { code: ev.code, level: ev.level });
      break;
    default:
      break;
    }
  }
}
