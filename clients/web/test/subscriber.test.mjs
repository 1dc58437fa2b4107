// The Subscriber's choice of playback and its fallback / reconnect logic,
// with fake playback technologies and fake timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subscriber, playbackOrder } from '../src/subscriber.js';

const ALL = { webrtc: true, mse: true, nativeHls: false };

test('order: whep, hls, flv; forced alone; what the browser cannot do left out', () => {
  assert.deepEqual(playbackOrder({}, ALL), ['whep', 'hls', 'flv']);
  assert.deepEqual(playbackOrder({ force: 'flv' }, ALL), ['flv']);
  assert.deepEqual(playbackOrder({ force: 'hls' }, {}), ['hls'], 'forced even when caps say no: the user asked');
  assert.deepEqual(playbackOrder({}, { webrtc: false, mse: false, nativeHls: true }), ['hls'], 'Safari without WebRTC: native HLS');
  assert.deepEqual(playbackOrder({}, { webrtc: true, mse: false }), ['whep']);
  assert.deepEqual(playbackOrder({ order: ['flv', 'whep', 'bogus'] }, ALL), ['flv', 'whep']);
  assert.throws(() => playbackOrder({ force: 'rtmp' }, ALL), /unknown playback/);
});

function fakeTimers() {
  const q = [];
  return { q, setTimeout: (fn, ms) => { const t = { fn, ms }; q.push(t); return t; },
    clearTimeout: (t) => { const i = q.indexOf(t); if (i >= 0) q.splice(i, 1); } };
}

const fail = (status) => async () => { const e = new Error('HTTP ' + status); e.status = status; throw e; };
const flush = () => new Promise((r) => setImmediate(r));

test('falls back in order and reports each failure', async () => {
  const calls = [];
  const sub = new Subscriber({ streamName: 's', caps: ALL, reconnect: { enabled: false },
    techs: {
      whep: async () => { calls.push('whep'); throw Object.assign(new Error('ICE'), { status: 406 }); },
      hls: async () => { calls.push('hls'); return { stop() {} }; },
      flv: async () => { calls.push('flv'); return { stop() {} }; },
    } });
  const events = [];
  sub.on('*', (e) => events.push(e.type));
  assert.equal(await sub.subscribe(), 'hls');
  assert.deepEqual(calls, ['whep', 'hls']);
  assert.deepEqual(events, ['Subscribe.Fail', 'Subscribe.Start', 'NetStream.Play.Start']);
  assert.equal(sub.tech, 'hls');
  assert.deepEqual(sub.tried.map((t) => [t.tech, t.ok]), [['whep', false], ['hls', true]]);
});

test('not live: StreamNotFound, then retries with backoff until it is, and again after an unpublish', async () => {
  const ft = fakeTimers();
  let live = false;
  let handle = null;
  let stops = 0;
  const sub = new Subscriber({ streamName: 's', caps: ALL, force: 'whep', reconnect: { initial: 100, ...ft },
    techs: { whep: async () => { if (!live) await fail(404)(); handle = { stop() { stops++; } }; return handle; } } });
  const events = [];
  sub.on('*', (e) => events.push(e.type + (e.data && e.data.delay ? ':' + e.data.delay : '')));
  await assert.rejects(sub.subscribe(), /404/);
  assert.deepEqual(events, ['Subscribe.Fail', 'NetStream.Play.StreamNotFound', 'Subscribe.Reconnect:100']);
  assert.equal(sub.state, 'reconnecting');
  // second try: still not there, the delay doubles
  ft.q.shift().fn();
  await flush();
  assert.equal(ft.q[0].ms, 200);
  live = true;
  ft.q.shift().fn();
  await flush();
  assert.equal(sub.state, 'playing');
  assert.equal(ft.q.length, 0);
  // the publisher leaves: the technology reports it, the subscriber waits and plays again from 100 ms
  events.length = 0;
  sub.lost('stalled');
  assert.equal(stops, 1);
  assert.deepEqual(events, ['Subscribe.Play.Unpublish', 'NetStream.Play.UnpublishNotify', 'Subscribe.Reconnect:100']);
  ft.q.shift().fn();
  await flush();
  assert.equal(sub.state, 'playing');
  await sub.unsubscribe();
  assert.equal(stops, 2);
  assert.equal(sub.state, 'stopped');
  sub.lost('late'); // after unsubscribe: nothing happens
  assert.equal(ft.q.length, 0);
});

test('unsubscribe while a retry is pending cancels it', async () => {
  const ft = fakeTimers();
  const sub = new Subscriber({ streamName: 's', caps: ALL, reconnect: { ...ft }, techs: { whep: fail(503), hls: fail(404), flv: fail(404) } });
  await assert.rejects(sub.subscribe());
  assert.equal(ft.q.length, 1);
  await sub.unsubscribe();
  assert.equal(ft.q.length, 0);
});

test('no playback possible: fails at once without retrying', async () => {
  const ft = fakeTimers();
  const sub = new Subscriber({ streamName: 's', caps: {}, reconnect: { ...ft } });
  await assert.rejects(sub.subscribe(), /none of/);
  assert.equal(ft.q.length, 0);
});
