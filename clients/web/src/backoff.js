// Reconnect with exponential backoff: delay = initial * factor^attempt,
// capped at max, with optional jitter; gives up after maxAttempts (0 =
// never). Timers are injectable so node tests drive it without waiting.

/**
 * @typedef {object} BackoffOptions
 * @property {boolean} [enabled]      default true
 * @property {number} [initial]       first delay, ms (default 500)
 * @property {number} [max]           cap, ms (default 10000)
 * @property {number} [factor]        growth (default 2)
 * @property {number} [jitter]        0..1: the delay is reduced by up to this share at random (default 0)
 * @property {number} [maxAttempts]   0 = keep trying (default 0)
 */

/** The delay before attempt n (0-based). */
export function backoffDelay(attempt, o = {}) {
  const initial = o.initial ?? 500;
  const max = o.max ?? 10000;
  const factor = o.factor ?? 2;
  let d = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  if (o.jitter) d -= d * Math.min(1, o.jitter) * (o.random ? o.random() : Math.random());
  return Math.round(d);
}

/**
 * Schedules retries: schedule(fn) runs fn after the next delay; reset()
 * after a success starts over from `initial`; cancel() stops.
 */
export class Reconnector {
  /** @param {BackoffOptions & {setTimeout?: Function, clearTimeout?: Function}} o */
  constructor(o = {}) {
    this.o = o;
    this.attempt = 0;
    this.timer = null;
    this._set = o.setTimeout || ((f, ms) => setTimeout(f, ms));
    this._clear = o.clearTimeout || ((t) => clearTimeout(t));
  }

  get enabled() { return this.o.enabled !== false; }

  /** Returns the delay scheduled, or -1 when disabled or out of attempts. */
  schedule(fn) {
    if (!this.enabled) return -1;
    if (this.o.maxAttempts && this.attempt >= this.o.maxAttempts) return -1;
    this.cancel();
    const d = backoffDelay(this.attempt++, this.o);
    this.timer = this._set(() => { this.timer = null; fn(); }, d);
    return d;
  }

  reset() { this.attempt = 0; }

  cancel() {
    if (this.timer !== null) this._clear(this.timer);
    this.timer = null;
  }
}
