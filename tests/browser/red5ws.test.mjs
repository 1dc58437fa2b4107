// Red5 Pro's WebSocket signalling in headless Chromium with a fake camera:
// web/test/red5ws.html publishes the way the HTML5 SDK's RTCPublisher does
// (isAvailable, handleOffer, handleCandidate, publish) and a second page
// subscribes the way RTCSubscriber does (requestOffer -> the server's offer,
// handleAnswer, subscribe). The tests wait until framesDecoded grows and the
// video's currentTime advances; a third page asks with bad credentials.
//
//   node --test red5ws.test.mjs     (SLUICE_BIN selects the binary)

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

describe('Red5 WebSocket signalling in Chromium', { timeout: T(180000) }, () => {
  before(async () => {
    W = await startWorld('red5ws', ['  live: {}'], [], {
      playersRequired: false,
      chromiumArgs: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
    });
  });

  after(async () => {
    const code = W ? await W.stop() : 0;
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('publishes and subscribes as RTCPublisher / RTCSubscriber do', async () => {
    const pub = await open(`${W.base}/test/red5ws.html?mode=publish&streamName=w1`);
    await waitFor(async () => (await state(pub.page)).framesEncoded > 10, T(30000), 'publisher to encode');
    const ps = await state(pub.page);
    assert.equal(ps.status, 'started', JSON.stringify(ps));
    assert.ok(ps.codes.includes('NetConnection.Connect.Success'));
    assert.ok(ps.codes.includes('NetConnection.ICE.TrickleCompleted'));
    assert.ok(ps.codes.includes('NetStream.Publish.Start'));
    const view = await open(`${W.base}/test/red5ws.html?mode=play&streamName=w1`);
    await waitFor(async () => (await state(view.page)).framesDecoded > 25, T(30000),
      'subscriber to decode 25 frames');
    const t0 = (await state(view.page)).currentTime;
    await waitFor(async () => (await state(view.page)).currentTime > t0 + 1, T(20000), 'currentTime to advance');
    const vs = await state(view.page);
    assert.ok(vs.codes.includes('NetStream.Play.Start'), JSON.stringify(vs));
    assert.deepEqual(vs.errors, []);
    assert.deepEqual(pub.errors, []);
    assert.deepEqual(view.errors, []);
    await view.page.close();
    await pub.page.close();
  });

  it('a subscriber of a stream that is not there is told so', async () => {
    const view = await open(`${W.base}/test/red5ws.html?mode=play&streamName=absent`);
    await waitFor(async () => (await state(view.page)).status.startsWith('error'), T(15000), 'an error status');
    const vs = await state(view.page);
    assert.ok(vs.codes.includes('NetStream.Play.StreamNotFound'), JSON.stringify(vs));
    await view.page.close();
  });
});
