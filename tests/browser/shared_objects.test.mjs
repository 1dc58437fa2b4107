// Shared objects in Chromium with Red5's JSON messages (HTML5 SDK <= 12):
// web/test/sharedobject.html joins one object over a WebSocket used only for
// shared objects, a second page over the `red5pro` data channel of a WHEP
// session, an RTMP client (so_rtmp_peer.py, a Python AMF stack) and the C
// client (sluice-so, libsluice-client, found next to the server binary) join
// the same object. A change by each of the four reaches the three others, and
// every one of the four sees the same writes in the same order with the same
// versions (issue 15); a send from a page reaches the other page.
//
//   node --test shared_objects.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST, SLUICE_BIN, T, startWorld, waitFor } from './player_world.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
let W;

const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.sluiceState)));

async function open(url) {
  const page = await W.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors };
}

function rtmpPeer(name, afterKey) {
  const p = spawn(process.env.PYTHON3 || '/usr/bin/python3',
    [path.join(HERE, 'so_rtmp_peer.py'), HOST, String(W.rtmpPort), 'live', name, ...(afterKey ? [afterKey] : [])],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  p.data = {};
  p.changes = [];
  p.lines = 0;
  p.stderrText = '';
  let buf = '';
  p.stdout.on('data', (b) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const o = JSON.parse(line);
        p.data = o.data;
        p.changes = o.changes;
        p.lines++;
      } catch { /* not a data line */ }
    }
  });
  p.stderr.on('data', (b) => { p.stderrText += b.toString(); });
  p.done = new Promise((resolve) => p.on('exit', (code) => resolve(code)));
  W.children.push(p);
  return p;
}

// sluice-so (the C client) on live/NAME: sets KEY=VALUE once joined, keeps
// [version, key, value] of every write it sees applied (its own included).
function cPeer(name, key, value) {
  const bin = path.join(path.dirname(SLUICE_BIN), 'sluice-so');
  const p = spawn(bin, ['--set', `${key}=${JSON.stringify(value)}`, `rtmp://${HOST}:${W.rtmpPort}/live`, name],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  p.changes = [];
  p.events = [];
  p.stderrText = '';
  let buf = '';
  p.stdout.on('data', (b) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const e = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      p.events.push(e);
      if (e.event === 'change') p.changes.push([e.version, e.key, e.value]);
      else if (e.event === 'success') p.changes.push([e.version, e.key, e.key === key ? value : undefined]);
    }
  });
  p.stderr.on('data', (b) => { p.stderrText += b.toString(); });
  p.done = new Promise((resolve) => p.on('exit', (code) => resolve(code)));
  W.children.push(p);
  return p;
}

describe('Shared objects (Red5 JSON) in Chromium', { timeout: T(180000) }, () => {
  before(async () => {
    W = await startWorld('sharedobjects', ['  live: {}'], ['live/rtmp1'], { playersRequired: false });
  });

  after(async () => {
    const code = W ? await W.stop() : 0;
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('two pages, a Python RTMP client and the C client share one object, in order, with versions', async () => {
    const ws = await open(`${W.base}/test/sharedobject.html?transport=ws&so=wb`);
    await waitFor(async () => (await state(ws.page)).connected, T(15000), 'the WebSocket page to connect');
    // The WHEP session needs its stream live (ffmpeg publishes live/rtmp1).
    const dc = await open(`${W.base}/test/sharedobject.html?transport=dc&so=wb&streamName=rtmp1`);
    await waitFor(async () => (await state(dc.page)).connected, T(30000), 'the data channel page to connect');
    // The Python client joins and writes once the C client's key is there,
    // so that every change below is made with all four joined.
    const peer = rtmpPeer('wb', 'c');
    await waitFor(async () => peer.lines > 0, T(15000), 'the Python RTMP client to join');
    const cc = cPeer('wb', 'c', { from: 'c' });

    // C -> the others, then Python -> the others (it writes after seeing c).
    await waitFor(async () => (await state(ws.page)).props.rtmp === 'from-rtmp' &&
      (await state(dc.page)).props.rtmp === 'from-rtmp' && ((await state(ws.page)).props.c || {}).from === 'c' &&
      cc.changes.some((c) => c[1] === 'rtmp'), T(15000), 'the C and RTMP changes at both pages and the C client');
    // WebSocket page -> data channel page and RTMP.
    await ws.page.evaluate(() => window.soSet('ws', { x: 1 }));
    await waitFor(async () => ((await state(dc.page)).props.ws || {}).x === 1 && (peer.data.ws || {}).x === 1,
      T(10000), 'the WebSocket change at the data channel page and RTMP');
    // Data channel page -> WebSocket page and RTMP.
    await dc.page.evaluate(() => window.soSet('dc', 'from-dc'));
    await waitFor(async () => (await state(ws.page)).props.dc === 'from-dc' && peer.data.dc === 'from-dc',
      T(10000), 'the data channel change at the WebSocket page and RTMP');
    // A message (MethodUpdate) from one page to the other.
    await dc.page.evaluate(() => window.soSend('chat', { text: 'hello' }));
    await waitFor(async () => (await state(ws.page)).methods.some((m) => m.methodName === 'chat'),
      T(10000), 'the message at the WebSocket page');
    await ws.page.evaluate(() => window.soSet('done', true));
    assert.equal(await peer.done, 0, 'the RTMP client saw everything: ' + peer.stderrText.slice(-2000));
    await waitFor(async () => cc.changes.some((c) => c[1] === 'done'), T(10000), 'done at the C client');
    cc.kill('SIGTERM');
    assert.equal(await cc.done, 0, 'sluice-so exits 0: ' + cc.stderrText.slice(-2000));

    // The same writes, in the same order, with the same versions, at all four.
    const seen = {
      ws: (await state(ws.page)).changes, dc: (await state(dc.page)).changes,
      python: peer.changes, c: cc.changes,
    };
    const keys = ['c', 'rtmp', 'ws', 'dc', 'done'];
    const want = seen.ws.filter((c) => keys.includes(c[1]));
    assert.deepEqual(want.map((c) => c[1]), keys, 'the writes in the order made: ' + JSON.stringify(seen));
    for (let i = 1; i < want.length; i++) assert.ok(want[i][0] > want[i - 1][0], 'versions rise');
    for (const [who, changes] of Object.entries(seen)) {
      assert.deepEqual(changes.filter((c) => keys.includes(c[1])), want,
        `${who} saw the same writes at the same versions: ${JSON.stringify(seen)}`);
    }
    for (const p of [ws, dc]) {
      const v = (await state(p.page)).versions;
      assert.deepEqual(v, [...v].sort((a, b) => a - b), 'versions in order');
      const s = await state(p.page);
      assert.deepEqual(s.errors, [], JSON.stringify(s));
      assert.deepEqual(p.errors, []);
      await p.page.close();
    }
  });
});
