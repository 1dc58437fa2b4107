// RPC both ways over a JSON text carrier (the `red5pro` data channel of a
// Publisher or Subscriber, or any Transport as SharedObject takes it):
//
// - client -> server: Red5's HTML5 SDK `callServer(method, args)`, the
//   JSON message {"callAdapter":{"method","arguments"},"id","async":true}
//   that sluice's rpc module routes to a handler or the app's business
//   server (docs/integration/rpc.md "Browsers"); the answer carries the same
//   id: {"id","async":true,"data"} resolves the promise, {"id","async":true,
//   "error"} rejects it; no answer within the timeout rejects it too.
// - server -> client (and a publisher's send() relayed to its subscribers):
//   Red5's `send` message {"send":{"method","data"}}; the handler
//   registered for the method gets data, and the owner emits Red5's
//   Publish.Send.Invoke / Subscribe.Send.Invoke event {methodName, data}.
//   The server has no reply path for these (Red5's SDK has none), so a
//   handler's return value is not sent anywhere.
//
// Budgets: at most maxPending calls wait at once (more are refused at
// once), each waits at most its timeout, and a message over maxMessageBytes
// is ignored before it is parsed.

import { Emitter } from './emitter.js';

export const RpcEvents = Object.freeze({
  /** A server -> client call or a relayed send(): {methodName, data}. */
  INVOKE: 'Send.Invoke',
});

/** Why a call failed: code 'error' (the server's answer), 'timeout', 'closed', 'busy', 'invalid'. */
export class RpcError extends Error {
  constructor(code, message, method) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.method = method;
  }
}

let nextSeq = 1;

/**
 * Options: timeout (ms per call, default 15000: longer than the server's
 * default rpc_timeout of 10 s, so the server's own "No answer within" error
 * wins), maxPending (default 64), maxMessageBytes (default 1 MB, the
 * server's JSON cap), setTimeout/clearTimeout (tests).
 */
export class RpcClient extends Emitter {
  constructor(transport = null, options = {}) {
    super();
    this.options = Object.assign({ timeout: 15000, maxPending: 64, maxMessageBytes: 1 << 20 }, options);
    this._setTimeout = this.options.setTimeout || ((fn, ms) => setTimeout(fn, ms));
    this._clearTimeout = this.options.clearTimeout || ((t) => clearTimeout(t));
    this._prefix = 'r' + (nextSeq++).toString(36) + Math.random().toString(36).slice(2, 6) + '-';
    this._n = 0;
    /** id -> {resolve, reject, timer, method} */
    this.pending = new Map();
    this.handlers = new Map();
    this.transport = null;
    this._off = null;
    if (transport) this.attach(transport);
  }

  /**
   * Uses transport from now on (a Subscriber's new data channel after a
   * reconnect). Calls waiting on the previous one can no longer be answered:
   * they are rejected ('closed').
   */
  attach(transport) {
    this.detach();
    this.transport = transport;
    this._off = transport.onMessage((text) => this.receive(text));
  }

  /** Stops listening; waiting calls are rejected ('closed'). */
  detach() {
    if (this._off) this._off();
    this._off = null;
    this.transport = null;
    this._failAll('closed', 'the connection closed before the answer');
  }

  /**
   * Calls method(...args) on the server (Red5's callServer(methodName,
   * args): args is the array of arguments; any other value is sent as the
   * one argument, as the server does). Resolves with the result (any JSON
   * value, null included); rejects with an RpcError.
   */
  call(method, args = [], { timeout } = {}) {
    if (typeof method !== 'string' || !method) return Promise.reject(new RpcError('invalid', 'a call needs a method name', method));
    if (!this.transport) return Promise.reject(new RpcError('closed', 'no connection to call on', method));
    if (this.pending.size >= this.options.maxPending) {
      return Promise.reject(new RpcError('busy', `too many calls waiting (${this.options.maxPending})`, method));
    }
    const list = args === undefined ? [] : Array.isArray(args) ? args : [args];
    const id = this._prefix + (++this._n);
    const ms = timeout ?? this.options.timeout;
    return new Promise((resolve, reject) => {
      const timer = this._setTimeout(() => {
        if (!this.pending.delete(id)) return;
        reject(new RpcError('timeout', `no answer to ${method} within ${ms} ms`, method));
      }, ms);
      this.pending.set(id, { resolve, reject, timer, method });
      try {
        this.transport.send(JSON.stringify({ callAdapter: { method, arguments: list }, id, async: true }));
      } catch (e) {
        this._settle(id);
        reject(new RpcError('closed', `cannot send: ${e.message}`, method));
      }
    });
  }

  /**
   * Registers fn(data, methodName) for the server's (or a publisher's)
   * calls of method; replaces an earlier one. Returns a function that
   * unregisters it.
   */
  register(method, fn) {
    if (typeof fn !== 'function') throw new TypeError('a handler is a function');
    this.handlers.set(method, fn);
    return () => { if (this.handlers.get(method) === fn) this.handlers.delete(method); };
  }

  unregister(method) { this.handlers.delete(method); }

  /**
   * Handles one message of the carrier (text, or null when it closed).
   * Returns true when it was an RPC message (an answer to one of our calls,
   * or a send); anything else is left to the other listeners.
   */
  receive(text) {
    if (text === null) { this._failAll('closed', 'the connection closed before the answer'); return false; }
    if (typeof text !== 'string' || text.length > this.options.maxMessageBytes || text[0] !== '{') return false;
    let msg;
    try { msg = JSON.parse(text); } catch { return false; }
    if (!msg || typeof msg !== 'object') return false;
    if (typeof msg.id === 'string' && this.pending.has(msg.id) && ('data' in msg || 'error' in msg)) {
      const p = this._settle(msg.id);
      if ('error' in msg) p.reject(new RpcError('error', String(msg.error), p.method));
      else p.resolve(msg.data);
      return true;
    }
    const s = msg.send;
    if (s && typeof s === 'object' && typeof s.method === 'string') {
      const data = 'data' in s ? s.data : null;
      this.emit(RpcEvents.INVOKE, { methodName: s.method, data });
      const fn = this.handlers.get(s.method);
      if (fn) {
        try { fn(data, s.method); } catch (e) { this.emit('error', { methodName: s.method, message: e.message }); }
      }
      return true;
    }
    return false;
  }

  _settle(id) {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (p) this._clearTimeout(p.timer);
    return p;
  }

  _failAll(code, message) {
    for (const id of [...this.pending.keys()]) {
      const p = this._settle(id);
      p.reject(new RpcError(code, message, p.method));
    }
  }
}

/** The Red5 `send` message a publisher relays to its subscribers: {"send":{"method","data"}}. */
export function sendMessage(method, data) {
  return JSON.stringify({ send: { method, data: data === undefined ? null : data } });
}
