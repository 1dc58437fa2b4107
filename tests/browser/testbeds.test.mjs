// The testbeds added for issue 16 in headless Chromium with a fake camera,
// one sluice for the file (its app `live` sends calls no handler takes to a
// business server run here):
// - sharedObject: a chat between a page on the app's WebSocket, a page on
//   a publisher's data channel and an RTMP client (so_chat_peer.py, a
//   Python AMF stack): each one's message reaches the two others;
// - publishRecord -> playbackVOD: a recording made from the browser, listed
//   by /live/mediafiles and played over HTTP with frames decoded;
// - publishRemoteCall -> subscribeRemoteCall: the publisher's
//   send('whateverFunctionName', ...) reaches the subscriber's handler;
//   the server's invoke (Server API) reaches both pages;
// - callServer round trips from both pages through the business server,
//   and an error answer.
// Screenshots of the chat, playbackVOD and subscribeRemoteCall pages go to
// tests/browser/screenshots/ (as sdk.test.mjs's; SDK_SCREENSHOTS overrides).
//
//   node --test testbeds.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST, T, freePort, startWorld, waitFor } from './player_world.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = process.env.SDK_SCREENSHOTS || path.join(HERE, 'screenshots');
let W;
let business;
const bodies = [];
const pages = [];

const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.sluicePage,
  (k, v) => (['publisher', 'subscriber', 'sharedObject'].includes(k) ? undefined : v))));

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

async function open(url) {
  const page = await W.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${W.base}${url}`);
  pages.push(page);
  return { page, errors };
}

// The business server: `sum` adds its arguments; any other method is 404.
function startBusiness(port) {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      let b = '';
      req.on('data', (c) => { b += c; });
      req.on('end', () => {
        const j = JSON.parse(b);
        bodies.push(j);
        if (j.method === 'sum') {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ sum: j.params.reduce((a, x) => a + x, 0) }));
        } else {
          res.writeHead(404);
          res.end('no such method');
        }
      });
    });
    srv.listen(port, HOST, () => resolve(srv));
  });
}

function chatPeer(name, text, want) {
  const p = spawn(process.env.PYTHON3 || '/usr/bin/python3',
    [path.join(HERE, 'so_chat_peer.py'), HOST, String(W.rtmpPort), 'live', name, text, ...want],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  p.lines = [];
  p.stderrText = '';
  let buf = '';
  p.stdout.on('data', (b) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      p.lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  p.stderr.on('data', (b) => { p.stderrText += b.toString(); });
  p.done = new Promise((resolve) => p.on('exit', (code) => resolve(code)));
  W.children.push(p);
  return p;
}

const api = async (method, p, body) => {
  const token = fs.readFileSync(path.join(W.dir, 'data', 'api_token'), 'utf8').trim();
  const r = await fetch(`${W.base}/api/v1/${p}${p.includes('?') ? '&' : '?'}accessToken=${encodeURIComponent(token)}`,
    { method, headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, body: await r.json() };
};

describe('testbeds: chat, publishRecord -> playbackVOD, remote calls, callServer', { timeout: T(300000) }, () => {
  before(async () => {
    const bport = await freePort();
    business = await startBusiness(bport);
    W = await startWorld('testbeds', [`  live: {rpc_url: "http://${HOST}:${bport}/rpc", rpc_timeout: 5s}`,
      '  mp4rec: {record_format: mp4}'], [], {
      chromiumArgs: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
    });
  });

  after(async () => {
    for (const p of pages) await p.close().catch(() => {});
    const code = W ? await W.stop() : 0;
    if (business) business.close();
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('the index lists the new testbeds', async () => {
    const { page, errors } = await open('/testbeds/');
    const names = await page.$$eval('#tests a', (as) => as.map((a) => a.textContent));
    for (const n of ['publishRecord', 'publishAppend', 'playbackVOD', 'publishRemoteCall', 'subscribeRemoteCall',
      'publishCall', 'subscribeCall', 'sharedObject']) {
      assert.ok(names.includes(n), n);
      assert.equal((await fetch(`${W.base}/testbeds/${n}.html`)).status, 200, n);
    }
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('sharedObject chat: a WebSocket page, a data channel page and an RTMP client each reach the two others', async () => {
    const a = await open('/testbeds/sharedObject.html?so=chat');
    const b = await open('/testbeds/sharedObject.html?so=chat&via=datachannel&streamName=chatdc');
    for (const [p, who] of [[a, 'the WebSocket page'], [b, 'the data channel page']]) {
      await waitFor(async () => (await state(p.page)).events.some((e) => e.startsWith('Connect.Success')), T(30000), `${who} to join`);
    }
    const rtmp = chatPeer('chat', 'from rtmp', ['from rtmp', 'from A', 'from B']);
    await waitFor(async () => rtmp.lines.some((l) => l.joined), T(15000), 'the RTMP client to join');
    await a.page.fill('#so-text', 'from A');
    await a.page.click('#so-send');
    await b.page.fill('#so-text', 'from B');
    await b.page.click('#so-send');
    for (const [p, who] of [[a, 'A'], [b, 'B']]) {
      await waitFor(async () => {
        const chat = (await state(p.page)).chat || [];
        return ['from rtmp', 'from A', 'from B'].every((t) => chat.includes(t));
      }, T(15000), `the three messages at ${who}`);
      const s = await state(p.page);
      assert.deepEqual([...s.chat].sort(), ['from A', 'from B', 'from rtmp'], `${who}: ${JSON.stringify(s.chat)}`);
      assert.deepEqual(await p.page.$$eval('#chat li', (lis) => lis.map((l) => l.textContent).sort()), ['from A', 'from B', 'from rtmp']);
    }
    await shot(a.page, 'testbed-sharedObject-chat.png');
    assert.equal(await rtmp.done, 0, 'the RTMP client got both pages\' messages: ' + JSON.stringify(rtmp.lines) + rtmp.stderrText.slice(-2000));
    assert.deepEqual([...a.errors, ...b.errors], []);
    await a.page.close();
    await b.page.close();
  });

  it('recordings made by publishRecord play in playbackVOD (FLV through mpegts.js, MP4 in the video element)', async () => {
    // Two at once: app live records FLV, app mp4rec (record_format: mp4) fragmented MP4.
    // The MP4 one publishes video only: when a WHIP publisher's first (transcoded) AAC frame
    // reaches the recorder before its first keyframe (a loaded machine), the recorder starts
    // the file as audio-only, and MP4 cannot add the video track afterwards (docs/recording.md:
    // a track whose configuration comes after the first frame is not recorded).
    const cases = [{ app: 'live', stream: 'rec1', file: 'rec1.flv', kind: 'flv', q: '' },
      { app: 'mp4rec', stream: 'rec2', file: 'rec2.mp4', kind: 'mp4', q: '&useAudio=false' }];
    for (const c of cases) c.pub = await open(`/testbeds/publishRecord.html?app=${c.app}&streamName=${c.stream}${c.q}`);
    for (const c of cases) {
      await waitFor(async () => (await state(c.pub.page)).framesEncoded > 60, T(45000), `about 2 s published to ${c.app}`);
    }
    for (const c of cases) {
      await c.pub.page.click('#stop');
      await waitFor(async () => (await state(c.pub.page)).stopped, T(10000), 'the publisher to stop');
      c.href = await c.pub.page.getAttribute('#vod-link', 'href');
      assert.match(c.href, new RegExp(`^playbackVOD\\.html\\?.*streamName=${c.stream}`));
    }
    for (const c of cases) {
      // The file is listed once the recorder's writer has it.
      c.row = await waitFor(async () => {
        const j = await (await fetch(`${W.base}/${c.app}/mediafiles`)).json();
        const m = j.mediafiles.find((x) => x.name === c.file);
        return m && m.length > 50000 ? m : null;
      }, T(20000), `${c.file} in /${c.app}/mediafiles`);
      const t0 = Date.now();
      c.vod = await open(`/testbeds/${c.href}`);
      try {
        await waitFor(async () => (await state(c.vod.page)).framesDecoded > 25, T(30000), `playbackVOD to decode 25 frames of ${c.file}`);
      } catch (e) {
        console.log(JSON.stringify(await state(c.vod.page)), c.vod.errors);
        throw e;
      }
      console.log(`playbackVOD ${c.file}: 25 frames decoded ${Date.now() - t0} ms after opening the page (${c.row.length} bytes)`);
      const s = await state(c.vod.page);
      assert.equal(s.file, c.file);
      assert.equal(s.tech, c.kind);
      assert.ok(s.recordings.includes(c.file));
      assert.ok(s.duration > 1.5, `the recording lasts the 2 s or more published: ${s.duration}`);
      assert.ok(await c.vod.page.evaluate(() => document.getElementById('sub-video').videoWidth) > 0);
      await shot(c.vod.page, `testbed-playbackVOD-${c.kind}.png`);
    }
    const missing = await open('/testbeds/playbackVOD.html?streamName=nosuch');
    await waitFor(async () => (await state(missing.page)).errors.some((e) => /no recording nosuch/.test(e)), T(10000), 'a missing recording reported');
    for (const c of cases) {
      assert.deepEqual([...c.pub.errors, ...c.vod.errors], []);
      await c.pub.page.close();
      await c.vod.page.close();
    }
    assert.deepEqual(missing.errors, []);
    await missing.page.close();
  });

  it('publishRemoteCall reaches subscribeRemoteCall; callServer round trips; the server invokes both', async () => {
    const pub = await open('/testbeds/publishRemoteCall.html?streamName=rc1');
    await waitFor(async () => (await state(pub.page)).framesEncoded > 10, T(30000), 'the publisher');
    const sub = await open('/testbeds/subscribeRemoteCall.html?streamName=rc1');
    await waitFor(async () => (await state(sub.page)).framesDecoded > 0, T(30000), 'the subscriber to decode');
    // A message sent before the subscriber's channel opened is not queued for it: send until one arrives.
    await waitFor(async () => {
      await pub.page.click('#rc-send');
      return ((await state(sub.page)).invokes || []).length > 0;
    }, T(15000), 'whateverFunctionName at the subscriber');
    const first = (await state(sub.page)).invokes[0];
    assert.deepEqual(first, { message: 'The publisher wants your attention', touchX: 0.5, touchY: 0.5 });
    assert.equal(await sub.page.textContent('#callout'), 'The publisher wants your attention');
    await shot(sub.page, 'testbed-subscribeRemoteCall.png');
    // A click on the publisher's video: where it clicked, as fractions of the video.
    const n = (await state(sub.page)).invokes.length;
    await pub.page.fill('#rc-text', 'look here');
    await pub.page.click('#pub-video', { position: { x: 105, y: 30 } });
    await waitFor(async () => (await state(sub.page)).invokes.length > n, T(10000), 'the click at the subscriber');
    const click = (await state(sub.page)).invokes.at(-1);
    assert.equal(click.message, 'look here');
    assert.ok(Math.abs(click.touchX - 0.25) < 0.02, JSON.stringify(click));

    // callServer from both pages: the business server's result, then its 404 as an error.
    for (const [p, who] of [[pub, 'publisher'], [sub, 'subscriber']]) {
      await p.page.fill('#call-method', 'sum');
      await p.page.fill('#call-args', '[1, 2, 3]');
      await p.page.click('#call');
      await waitFor(async () => ((await state(p.page)).calls || []).length === 1, T(15000), `the ${who}'s call`);
      await p.page.fill('#call-method', 'nosuch.method');
      await p.page.click('#call');
      await waitFor(async () => (await state(p.page)).calls.length === 2, T(15000), `the ${who}'s second call`);
      const [ok, bad] = (await state(p.page)).calls;
      assert.equal(ok.ok, true, JSON.stringify(ok));
      assert.deepEqual(ok.result, { sum: 6 });
      assert.equal(bad.ok, false);
      assert.equal(bad.code, 'error');
      assert.match(bad.error, /HTTP 404/);
      console.log(`callServer round trip from the ${who} page through the business server: ${ok.ms} ms`);
      assert.match(await p.page.textContent('#call-result'), /nosuch\.method failed/);
    }
    const sums = bodies.filter((b) => b.method === 'sum');
    assert.equal(sums.length, 2);
    assert.ok(sums.every((b) => b.app === 'live' && JSON.stringify(b.params) === '[1,2,3]' && typeof b.session === 'string'), JSON.stringify(sums));
    assert.notEqual(sums[0].session, sums[1].session, 'each page is its own session');

    // Server -> client: the API's invoke to the stream's clients reaches the subscriber's handler and the publisher.
    const before = (await state(sub.page)).invokes.length;
    const r = await api('POST', 'applications/live/invoke/clients?stream=rc1',
      { method: 'whateverFunctionName', params: [{ message: 'from the server' }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.length, 2, JSON.stringify(r.body));
    assert.ok(r.body.data.every((c) => c.status === 'sent'), JSON.stringify(r.body));
    await waitFor(async () => (await state(sub.page)).invokes.length > before, T(10000), 'the server\'s call at the subscriber');
    assert.deepEqual((await state(sub.page)).invokes.at(-1), { message: 'from the server' });
    await waitFor(async () => (await state(pub.page)).events.some((e) => e.startsWith('Publish.Send.Invoke') && e.includes('from the server')),
      T(10000), 'the server\'s call at the publisher');
    assert.deepEqual([...pub.errors, ...sub.errors], []);
    await sub.page.close();
    await pub.page.close();
  });
});
