// Reconnect delays and the Reconnector's schedule (fake timers: no waiting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, Reconnector } from '../src/backoff.js';

test('delays double from initial up to max', () => {
  const o = { initial: 500, max: 4000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, o)), [500, 1000, 2000, 4000, 4000, 4000]);
});

test('jitter only shortens the delay, by at most its share', () => {
  assert.equal(backoffDelay(2, { initial: 100, jitter: 0.5, random: () => 1 }), 200);
  assert.equal(backoffDelay(2, { initial: 100, jitter: 0.5, random: () => 0 }), 400);
});

function fakeTimers() {
  const q = [];
  return {
    q,
    setTimeout: (fn, ms) => { const t = { fn, ms }; q.push(t); return t; },
    clearTimeout: (t) => { const i = q.indexOf(t); if (i >= 0) q.splice(i, 1); },
    fire() { const t = q.shift(); t.fn(); return t.ms; },
  };
}

test('schedule grows, reset starts over, maxAttempts stops, disabled never runs', () => {
  const ft = fakeTimers();
  const r = new Reconnector({ initial: 100, max: 1000, maxAttempts: 3, ...ft });
  let runs = 0;
  assert.equal(r.schedule(() => runs++), 100);
  assert.equal(ft.fire(), 100);
  assert.equal(r.schedule(() => runs++), 200);
  r.reset();
  assert.equal(r.schedule(() => runs++), 100, 'reset: from initial again (and the pending one replaced)');
  assert.equal(ft.q.length, 1);
  ft.fire();
  assert.equal(r.schedule(() => runs++), 200);
  ft.fire();
  assert.equal(r.schedule(() => runs++), 400);
  ft.fire();
  assert.equal(r.schedule(() => runs++), -1, 'the third attempt after reset was the last');
  assert.equal(runs, 4);
  const off = new Reconnector({ enabled: false, ...ft });
  assert.equal(off.schedule(() => runs++), -1);
  const c = new Reconnector({ ...ft });
  c.schedule(() => runs++);
  c.cancel();
  assert.equal(ft.q.length, 0);
});
