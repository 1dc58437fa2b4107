// Publisher (fake WebRTC and fetch), EventsClient and ApiClient.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Publisher } from '../src/publisher.js';
import { EventsClient } from '../src/events.js';
import { ApiClient, ApiError } from '../src/api.js';

// A data channel: an EventTarget with send() recording what was sent.
class FakeDC extends EventTarget {
  constructor(label, readyState = 'open') { super(); this.label = label; this.readyState = readyState; this.sent = []; }
  send(x) { if (this.readyState !== 'open') throw new Error('InvalidStateError'); this.sent.push(x); }
  deliver(text) { const e = new Event('message'); e.data = text; this.dispatchEvent(e); if (this.onmessage) this.onmessage(e); }
  open() { this.readyState = 'open'; this.dispatchEvent(new Event('open')); }
  close() { this.readyState = 'closed'; this.dispatchEvent(new Event('close')); }
}

class FakePC {
  constructor() { this.transceivers = []; this.closed = false; this.iceGatheringState = 'complete'; FakePC.last = this; }
  addTransceiver(track, init) { const t = { track, init }; this.transceivers.push(t); return t; }
  createDataChannel(label) { this.dcLabel = label; this.dc = new FakeDC(label); return this.dc; }
  async createOffer() { return { type: 'offer', sdp: 'v=0 offer' }; }
  async setLocalDescription(d) { this.localDescription = d; }
  async setRemoteDescription(d) { this.remoteDescription = d; }
  getSenders() { return []; }
  addEventListener() {}
  removeEventListener() {}
  close() { this.closed = true; }
}

function fakeTrack(kind) { return { kind, enabled: true, stopped: false, stop() { this.stopped = true; } }; }
function fakeStream() { const ts = [fakeTrack('audio'), fakeTrack('video')]; return { getTracks: () => ts, getAudioTracks: () => [ts[0]] }; }

function fakeFetch(answers) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, method: init.method, headers: init.headers, body: init.body });
    const a = answers.shift() || { status: 200 };
    return { status: a.status, headers: new Map(Object.entries(a.headers || {})), text: async () => a.body || '', json: async () => JSON.parse(a.body) };
  };
  f.calls = calls;
  return f;
}

test('publish: WHIP POST with the credentials and Bearer, answer applied, mute, unpublish DELETEs', async () => {
  const fetch0 = fakeFetch([{ status: 201, body: 'v=0 answer', headers: { Location: '/live/whip/resource/abc' } }, { status: 200 }]);
  const closedAtDelete = [];
  const fetch = (url, init) => { if (init.method === 'DELETE') closedAtDelete.push(FakePC.last.closed); return fetch0(url, init); };
  fetch.calls = fetch0.calls;
  const stream = fakeStream();
  const media = { getUserMedia: async (c) => { media.asked = c; return stream; } };
  const pub = new Publisher({ host: 'h', streamName: 's1', connectionParams: { username: 'u', password: 'p' }, bearer: 'jwt',
    video: { width: 1280, height: 720 }, record: true, deps: { RTCPeerConnection: FakePC, fetch, mediaDevices: media } });
  const ev = [];
  pub.on('*', (e) => ev.push(e.type));
  await pub.publish();
  assert.deepEqual(media.asked.video.width, { ideal: 1280 });
  assert.equal(fetch.calls[0].url, 'http://h:5080/live/whip/endpoint/s1?username=u&password=p&record=1');
  assert.equal(fetch.calls[0].headers.Authorization, 'Bearer jwt');
  assert.equal(fetch.calls[0].headers['Content-Type'], 'application/sdp');
  assert.equal(fetch.calls[0].body, 'v=0 offer');
  assert.equal(FakePC.last.remoteDescription.sdp, 'v=0 answer');
  assert.equal(FakePC.last.dcLabel, 'red5pro');
  assert.deepEqual(FakePC.last.transceivers.map((t) => t.init.direction), ['sendonly', 'sendonly']);
  assert.equal(pub.resource, 'http://h:5080/live/whip/resource/abc');
  assert.deepEqual(ev, ['Connect.Success', 'Publish.Start']);
  pub.muteVideo();
  assert.equal(stream.getTracks()[1].enabled, false);
  assert.equal(stream.getTracks()[0].enabled, true);
  pub.unmuteVideo();
  assert.equal(stream.getTracks()[1].enabled, true);
  assert.equal(pub.send({ a: 1 }), true);
  await pub.unpublish();
  assert.deepEqual(fetch.calls[1], { url: 'http://h:5080/live/whip/resource/abc', method: 'DELETE', headers: undefined, body: undefined });
  assert.deepEqual(closedAtDelete, [false], 'the DELETE goes out before the connection closes');
  assert.equal(FakePC.last.closed, true);
  assert.ok(stream.getTracks().every((t) => t.stopped), 'the tracks it opened are stopped');
});

test('publish refused: Publish.Fail with the status, nothing left open', async () => {
  const fetch = fakeFetch([{ status: 401, body: 'bad credentials' }]);
  const pub = new Publisher({ host: 'h', streamName: 's1', deps: { RTCPeerConnection: FakePC, fetch } });
  const fails = [];
  pub.on('Publish.Fail', (e) => fails.push(e.data));
  await assert.rejects(pub.publish(fakeStream()), (e) => e.status === 401);
  assert.equal(fails[0].status, 401);
  assert.equal(FakePC.last.closed, true);
  assert.equal(pub.state, 'idle');
});

test('a failed connection reconnects with backoff and DELETEs the old resource', async () => {
  const q = [];
  const fetch = fakeFetch([{ status: 201, body: 'a', headers: { Location: '/r/1' } }, { status: 200 },
    { status: 201, body: 'a', headers: { Location: '/r/2' } }]);
  const pub = new Publisher({ host: 'h', streamName: 's1', reconnect: { initial: 250, setTimeout: (fn, ms) => q.push({ fn, ms }), clearTimeout() {} },
    deps: { RTCPeerConnection: FakePC, fetch } });
  await pub.publish(fakeStream());
  const first = FakePC.last;
  first.connectionState = 'failed';
  first.onconnectionstatechange();
  assert.equal(pub.state, 'reconnecting');
  assert.equal(q[0].ms, 250);
  await new Promise((r) => setImmediate(r));
  assert.equal(fetch.calls[1].method, 'DELETE');
  assert.equal(fetch.calls[1].url, 'http://h:5080/r/1');
  q[0].fn();
  for (let i = 0; i < 20 && pub.state !== 'publishing'; i++) await new Promise((r) => setImmediate(r));
  assert.equal(pub.state, 'publishing');
  assert.notEqual(FakePC.last, first);
  assert.equal(pub.resource, 'http://h:5080/r/2');
});

test('EventsClient emits each event by name', () => {
  const ec = new EventsClient({ host: 'h', accessToken: 'k', filter: { app: 'live' }, deps: { WebSocket: class {} } });
  assert.equal(ec.url, 'ws://h:5080/api/v1/events?app=live&accessToken=k');
  const got = [];
  ec.on('publish', (e) => got.push(e.data.stream));
  ec.on('message', (e) => got.push('*' + e.data.event));
  ec.receive('{"event":"publish","app":"live","stream":"s1"}');
  ec.receive('garbage');
  assert.deepEqual(got, ['*publish', 's1']);
});

test('ApiClient unwraps the envelope, sends the token as Bearer, throws ApiError', async () => {
  const fetch = fakeFetch([{ status: 200, body: '{"status":"success","code":200,"data":["s1","s2"]}' },
    { status: 404, body: '{"status":"error","code":404,"message":"no such app"}' },
    { status: 200, body: '{"status":"success","code":200,"data":42}' }]);
  const api = new ApiClient({ host: 'h', accessToken: 'secret', deps: { fetch } });
  assert.deepEqual(await api.streams('live'), ['s1', 's2']);
  assert.equal(fetch.calls[0].url, 'http://h:5080/api/v1/applications/live/streams');
  assert.equal(fetch.calls[0].headers.Authorization, 'Bearer secret');
  await assert.rejects(api.application('nope'), (e) => e instanceof ApiError && e.status === 404 && /no such app/.test(e.message));
  assert.equal(await api.invoke('live', 'add', [1, 2]), 42);
  assert.equal(fetch.calls[2].method, 'POST');
  assert.deepEqual(JSON.parse(fetch.calls[2].body), { method: 'add', parameters: [1, 2] });
});
