// A small event emitter shared by every SDK class (works in browsers and in
// node, where the unit tests run). Listeners get one event object
// {type, data, ...}; a listener that throws does not stop the others.

/** @typedef {{type: string, data?: any, [k: string]: any}} SluiceEvent */

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /** Adds a listener for one event type, or '*' for every event. */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return this;
  }

  /** Removes a listener added with on(). */
  off(type, fn) {
    const s = this._listeners.get(type);
    if (s) s.delete(fn);
    return this;
  }

  /** Resolves with the next event of this type. */
  once(type) {
    return new Promise((resolve) => {
      const fn = (ev) => { this.off(type, fn); resolve(ev); };
      this.on(type, fn);
    });
  }

  /** Calls the listeners of type, then those of '*'. */
  emit(type, data, extra) {
    const ev = Object.assign({ type, data }, extra || {});
    for (const key of [type, '*']) {
      const s = this._listeners.get(key);
      if (!s) continue;
      for (const fn of [...s]) {
        try { fn(ev); } catch (e) { if (typeof console !== 'undefined') console.error(e); }
      }
    }
    return ev;
  }
}
