// WebRTC in headless Chromium with a fake camera and microphone:
// web/test/webrtc.html publishes over WHIP (with a data channel) and a second
// page plays over WHEP; another page plays an RTMP stream over WHEP.
// The tests wait until framesDecoded grows and the video's currentTime
// advances, and until the publisher's data channel text reaches the viewer.
//
//   node --test webrtc.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { T, startWorld, waitFor } from './player_world.mjs';

let W;

const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.sluiceState)));

async function open(url) {
  const page = await W.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors };
}

describe('WebRTC (WHIP/WHEP) in Chromium', { timeout: T(180000) }, () => {
  before(async () => {
    W = await startWorld('webrtc', ['  live: {}'], ['live/rtmp1'], {
      playersRequired: false,
      chromiumArgs: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
    });
  });

  after(async () => {
    const code = W ? await W.stop() : 0;
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('publishes over WHIP and plays over WHEP, with a data channel', async () => {
    const pub = await open(`${W.base}/test/webrtc.html?mode=publish&streamName=b1&dc=hello-dc`);
    await waitFor(async () => (await state(pub.page)).framesEncoded > 10, T(30000), 'publisher to encode');
    const s = await state(pub.page);
    assert.equal(s.http, 201);
    const view = await open(`${W.base}/test/webrtc.html?mode=play&streamName=b1`);
    await waitFor(async () => (await state(view.page)).framesDecoded > 25, T(30000), 'viewer to decode 25 frames');
    const t0 = (await state(view.page)).currentTime;
    await waitFor(async () => (await state(view.page)).currentTime > t0 + 1, T(20000), 'currentTime to advance');
    await waitFor(async () => (await state(view.page)).dcReceived.includes('hello-dc'), T(20000),
      'the publisher\'s data channel message at the viewer');
    assert.deepEqual(pub.errors, []);
    assert.deepEqual(view.errors, []);
    await view.page.close();
    await pub.page.close();
  });

  it('connects over ICE-TCP when the answer has no UDP candidate', async () => {
    const view = await open(`${W.base}/test/webrtc.html?mode=play&streamName=rtmp1&tcpOnly=1`);
    await waitFor(async () => (await state(view.page)).framesDecoded > 25, T(30000), 'viewer to decode over ICE-TCP');
    const pair = await view.page.evaluate(async () => {
      const rep = await window.sluicePc.getStats();
      let sel = null;
      rep.forEach((s) => { if (s.type === 'transport') sel = s.selectedCandidatePairId; });
      const p = sel && rep.get(sel);
      const local = p && rep.get(p.localCandidateId);
      return local ? local.protocol : null;
    });
    assert.equal(pair, 'tcp');
    assert.deepEqual(view.errors, []);
    await view.page.close();
  });

  it('plays an RTMP publish over WHEP', async () => {
    const view = await open(`${W.base}/test/webrtc.html?mode=play&streamName=rtmp1`);
    await waitFor(async () => (await state(view.page)).framesDecoded > 25, T(30000), 'viewer to decode RTMP video');
    const st = await state(view.page);
    assert.equal(st.http, 201);
    await waitFor(async () => ((await state(view.page)).audioSamples || 0) > 48000, T(20000), 'Opus audio samples');
    assert.deepEqual(view.errors, []);
    await view.page.close();
  });
});
