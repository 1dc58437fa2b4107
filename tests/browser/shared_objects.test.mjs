// Shared objects in Chromium with Red5's JSON messages (HTML5 SDK <= 12):
// web/test/sharedobject.html joins one object over a WebSocket used only for
// shared objects, a second page over the `red5pro` data channel of a WHEP
// session, and an RTMP client (so_rtmp_peer.py, a Python AMF stack) joins the
// same object. A change by any one of the three reaches the two others; a send
// from a page reaches the other page.
//
//   node --test shared_objects.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST, T, startWorld, waitFor } from './player_world.mjs';

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

function rtmpPeer(name) {
  const p = spawn(process.env.PYTHON3 || '/usr/bin/python3',
    [path.join(HERE, 'so_rtmp_peer.py'), HOST, String(W.rtmpPort), 'live', name],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  p.data = {};
  p.stderrText = '';
  let buf = '';
  p.stdout.on('data', (b) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { p.data = JSON.parse(line).data; } catch { /* not a data line */ }
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

  it('a WebSocket page, a data channel page and an RTMP client share one object', async () => {
    const ws = await open(`${W.base}/test/sharedobject.html?transport=ws&so=wb`);
    await waitFor(async () => (await state(ws.page)).connected, T(15000), 'the WebSocket page to connect');
    // The WHEP session needs its stream live (ffmpeg publishes live/rtmp1).
    const dc = await open(`${W.base}/test/sharedobject.html?transport=dc&so=wb&streamName=rtmp1`);
    await waitFor(async () => (await state(dc.page)).connected, T(30000), 'the data channel page to connect');
    const peer = rtmpPeer('wb');

    // RTMP -> both pages.
    await waitFor(async () => (await state(ws.page)).props.rtmp === 'from-rtmp' &&
      (await state(dc.page)).props.rtmp === 'from-rtmp', T(15000), 'the RTMP change at both pages');
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
    // Versions only rise at each page.
    for (const p of [ws, dc]) {
      const v = (await state(p.page)).versions;
      assert.deepEqual(v, [...v].sort((a, b) => a - b), 'versions in order');
    }
    await ws.page.evaluate(() => window.soSet('done', true));
    assert.equal(await peer.done, 0, 'the RTMP client saw everything: ' + peer.stderrText.slice(-2000));
    for (const p of [ws, dc]) {
      const s = await state(p.page);
      assert.deepEqual(s.errors, [], JSON.stringify(s));
      assert.deepEqual(p.errors, []);
      await p.page.close();
    }
  });
});
