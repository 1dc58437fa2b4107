// RPC both ways (src/rpc.js) against a fake transport and a fake data
// channel: the callAdapter messages sent, answers matched by id, errors,
// timeouts, the pending budget, the carrier closing, server -> client
// `send` calls reaching the handler registered for their method, and the
// Publisher's and Subscriber's callServer / send(method, data) /
// registerHandler on their data channel (docs/integration/rpc.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RpcClient, RpcError, sendMessage } from '../src/rpc.js';
import { Publisher } from '../src/publisher.js';
import { Subscriber } from '../src/subscriber.js';
import { dataChannelTransport } from '../src/sharedobject.js';

function fakeTransport() {
  const t = { sent: [], handlers: new Set() };
  t.send = (text) => t.sent.push(JSON.parse(text));
  t.onMessage = (fn) => { t.handlers.add(fn); return () => t.handlers.delete(fn); };
  t.deliver = (obj) => { for (const h of [...t.handlers]) h(obj === null ? null : typeof obj === 'string' ? obj : JSON.stringify(obj)); };
  return t;
}

// Timers under the test's control: fire() runs the ones due.
function fakeTimers() {
  const timers = new Map();
  let n = 0;
  return {
    setTimeout: (fn, ms) => { timers.set(++n, { fn, ms }); return n; },
    clearTimeout: (id) => timers.delete(id),
    fire() { for (const [id, t] of [...timers]) { timers.delete(id); t.fn(); } },
    get size() { return timers.size; },
  };
}

class FakeDC extends EventTarget {
  constructor(readyState = 'open') { super(); this.label = 'red5pro'; this.readyState = readyState; this.sent = []; }
  send(x) { if (this.readyState !== 'open') throw new Error('InvalidStateError'); this.sent.push(x[0] === '{' ? JSON.parse(x) : x); }
  deliver(obj) { const e = new Event('message'); e.data = JSON.stringify(obj); this.dispatchEvent(e); if (this.onmessage) this.onmessage(e); }
  open() { this.readyState = 'open'; this.dispatchEvent(new Event('open')); }
  close() { this.readyState = 'closed'; this.dispatchEvent(new Event('close')); }
}

test('callServer: the callAdapter message, answers by id in any order, data of any value', async () => {
  const t = fakeTransport();
  const timers = fakeTimers();
  const rpc = new RpcClient(t, timers);
  const a = rpc.call('sum', [1, 2, 3]);
  const b = rpc.call('room.join', 'alice');
  const c = rpc.call('noargs');
  assert.equal(t.sent.length, 3);
  assert.deepEqual(t.sent[0].callAdapter, { method: 'sum', arguments: [1, 2, 3] });
  assert.equal(t.sent[0].async, true);
  assert.deepEqual(t.sent[1].callAdapter.arguments, ['alice'], 'a non-array is the one argument');
  assert.deepEqual(t.sent[2].callAdapter.arguments, []);
  const ids = t.sent.map((m) => m.id);
  assert.equal(new Set(ids).size, 3, 'ids are unique');
  t.deliver({ id: ids[1], async: true, data: false });
  t.deliver({ id: ids[0], async: true, data: { sum: 6 } });
  t.deliver({ id: ids[2], async: true, data: null });
  assert.deepEqual(await a, { sum: 6 });
  assert.equal(await b, false, 'a falsy result resolves (Red5 SDK would hang)');
  assert.equal(await c, null);
  assert.equal(rpc.pending.size, 0);
  assert.equal(timers.size, 0, 'the timeouts are cleared');
});

test('an error answer, a timeout, an unknown id, the budget, the carrier closing', async () => {
  const t = fakeTransport();
  const timers = fakeTimers();
  const rpc = new RpcClient(t, Object.assign({ maxPending: 2, timeout: 500 }, timers));
  const bad = rpc.call('nosuch.method');
  t.deliver({ id: 'someone-else', async: true, data: 1 });
  t.deliver({ id: t.sent[0].id, async: true, error: 'The business server answered HTTP 404.' });
  await assert.rejects(bad, (e) => e instanceof RpcError && e.code === 'error' && /HTTP 404/.test(e.message) && e.method === 'nosuch.method');
  const slow = rpc.call('slow');
  const slow2 = rpc.call('slow2', [], { timeout: 50 });
  await assert.rejects(rpc.call('third'), (e) => e.code === 'busy', 'over maxPending: refused at once');
  assert.equal(t.sent.length, 3, 'the refused call was not sent');
  timers.fire();
  await assert.rejects(slow, (e) => e.code === 'timeout' && /500 ms/.test(e.message));
  await assert.rejects(slow2, (e) => e.code === 'timeout' && /50 ms/.test(e.message));
  t.deliver({ id: t.sent[1].id, async: true, data: 'late' }); // a late answer is dropped
  const c = rpc.call('c');
  t.deliver(null);
  await assert.rejects(c, (e) => e.code === 'closed');
  rpc.detach();
  assert.equal(t.handlers.size, 0, 'detach stops listening');
  await assert.rejects(rpc.call('x'), (e) => e.code === 'closed');
  await assert.rejects(rpc.call(''), (e) => e.code === 'invalid');
});

test('server -> client: send reaches the handler of its method, and the event; other messages are left alone', () => {
  const t = fakeTransport();
  const rpc = new RpcClient(t);
  const got = [];
  const events = [];
  rpc.on('Send.Invoke', (e) => events.push(e.data));
  const off = rpc.register('showMessage', (data, m) => got.push([m, data]));
  rpc.register('boom', () => { throw new Error('handler bug'); });
  const errors = [];
  rpc.on('error', (e) => errors.push(e.data));
  t.deliver({ send: { method: 'showMessage', data: { text: 'hello' } } });
  t.deliver({ send: { method: 'other', data: 1 } });
  t.deliver({ send: { method: 'boom' } });
  assert.equal(rpc.receive(JSON.stringify({ data: { type: 'sharedobject', name: 'x' } })), false, 'a shared object message');
  assert.equal(rpc.receive('not json'), false);
  assert.equal(rpc.receive('x'.repeat(10)), false);
  assert.deepEqual(got, [['showMessage', { text: 'hello' }]]);
  assert.deepEqual(events, [{ methodName: 'showMessage', data: { text: 'hello' } }, { methodName: 'other', data: 1 },
    { methodName: 'boom', data: null }]);
  assert.deepEqual(errors, [{ methodName: 'boom', message: 'handler bug' }]);
  off();
  t.deliver({ send: { method: 'showMessage', data: 2 } });
  assert.equal(got.length, 1, 'unregistered');
  const big = new RpcClient(t, { maxMessageBytes: 64 });
  assert.equal(big.receive(sendMessage('m', 'y'.repeat(100))), false, 'over maxMessageBytes: not parsed');
  assert.deepEqual(JSON.parse(sendMessage('m')), { send: { method: 'm', data: null } });
});

test('a data channel carrier: closing it rejects the calls waiting', async () => {
  const dc = new FakeDC();
  const rpc = new RpcClient(dataChannelTransport(dc));
  const p = rpc.call('sum', [1]);
  assert.deepEqual(dc.sent[0].callAdapter, { method: 'sum', arguments: [1] });
  dc.close();
  await assert.rejects(p, (e) => e.code === 'closed');
});

class FakePC {
  constructor() { this.iceGatheringState = 'complete'; FakePC.last = this; }
  addTransceiver(track, init) { return { track, init }; }
  createDataChannel() { this.dc = new FakeDC('connecting'); return this.dc; }
  async createOffer() { return { type: 'offer', sdp: 'v=0 offer' }; }
  async setLocalDescription(d) { this.localDescription = d; }
  async setRemoteDescription(d) { this.remoteDescription = d; }
  getSenders() { return []; }
  addEventListener() {}
  removeEventListener() {}
  close() { if (this.dc) this.dc.close(); }
}

const okFetch = async () => ({ status: 201, headers: new Map([['Location', '/live/whip/resource/r1']]), text: async () => 'v=0 answer' });
function fakeStream() { const ts = [{ kind: 'video', stop() {} }]; return { getTracks: () => ts }; }

test('Publisher: callServer waits for the channel, send(method, data) is Red5\'s send, handlers get server calls', async () => {
  const pub = new Publisher({ host: 'h', streamName: 's1', reconnect: { enabled: false }, deps: { RTCPeerConnection: FakePC, fetch: okFetch } });
  await assert.rejects(pub.callServer('early'), /no data channel/, 'before publish: no channel');
  await pub.publish(fakeStream());
  const dc = FakePC.last.dc;
  const call = pub.callServer('sum', [2, 3]);
  await Promise.resolve();
  assert.equal(dc.sent.length, 0, 'nothing sent before the channel opened');
  assert.equal(pub.send('whateverFunctionName', { message: 'x' }), false, 'send: false until open');
  dc.open();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(dc.sent[0].callAdapter, { method: 'sum', arguments: [2, 3] });
  dc.deliver({ id: dc.sent[0].id, async: true, data: { sum: 5 } });
  assert.deepEqual(await call, { sum: 5 });
  assert.equal(pub.send('whateverFunctionName', { message: 'x', touchX: 0.5 }), true);
  assert.deepEqual(dc.sent[1], { send: { method: 'whateverFunctionName', data: { message: 'x', touchX: 0.5 } } });
  assert.equal(pub.send('plain text'), true);
  assert.equal(dc.sent[2], 'plain text', 'one argument: sent as it is');
  const calls = [];
  const events = [];
  pub.registerHandler('showMessage', (d) => calls.push(d));
  pub.on('Publish.Send.Invoke', (e) => events.push(e.data));
  dc.deliver({ send: { method: 'showMessage', data: { text: 'hi' } } });
  assert.deepEqual(calls, [{ text: 'hi' }]);
  assert.deepEqual(events, [{ methodName: 'showMessage', data: { text: 'hi' } }]);
  const waiting = pub.callServer('never');
  await new Promise((r) => setImmediate(r));
  await pub.unpublish();
  await assert.rejects(waiting, (e) => e.code === 'closed', 'unpublish rejects the calls waiting');
});

test('Subscriber: callServer and handlers on the WHEP channel of the current playback, none without one', async () => {
  const dc = new FakeDC();
  const techs = {
    whep: async () => ({ dc, stop() {} }),
    hls: async () => ({ stop() {} }),
  };
  // The built-in WHEP player attaches its channel; a test tech does it the same way.
  const sub = new Subscriber({ streamName: 's1', caps: { webrtc: true, mse: true }, reconnect: { enabled: false },
    techs: { whep: async (s) => { s.rpc.attach(dataChannelTransport(dc)); return techs.whep(); }, hls: techs.hls } });
  const invokes = [];
  sub.on('Subscribe.Send.Invoke', (e) => invokes.push(e.data));
  const got = [];
  sub.registerHandler('whateverFunctionName', (d) => got.push(d));
  await sub.subscribe();
  const call = sub.callServer('getLiveStreams', []);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(dc.sent[0].callAdapter, { method: 'getLiveStreams', arguments: [] });
  dc.deliver({ id: dc.sent[0].id, async: true, data: ['s1'] });
  assert.deepEqual(await call, ['s1']);
  dc.deliver({ send: { method: 'whateverFunctionName', data: { message: 'from the publisher' } } });
  assert.deepEqual(got, [{ message: 'from the publisher' }]);
  assert.deepEqual(invokes, [{ methodName: 'whateverFunctionName', data: { message: 'from the publisher' } }]);
  await sub.unsubscribe();
  await assert.rejects(sub.callServer('x'), /no data channel/);
  const hls = new Subscriber({ streamName: 's1', force: 'hls', caps: { mse: true }, reconnect: { enabled: false }, techs });
  await hls.subscribe();
  await assert.rejects(hls.callServer('x'), /no data channel/, 'HLS playback has no channel');
});
