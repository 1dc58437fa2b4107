// mpegts.js (put in web/test/lib/ by the build, served by sluice) plays sluice's
// HTTP-FLV in headless Chromium: web/test/flv.html with a live FLV player
// (MSE); the test waits until the video's currentTime advances and no player
// error was reported.
//
//   node --test httpflv.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { T, playUntil, startWorld, waitFor } from './player_world.mjs';

let W;

describe('mpegts.js', { timeout: T(180000) }, () => {
  before(async () => {
    W = await startWorld('flv', ['  live: {}'], ['live/stream1']);
    await waitFor(async () => {
      const r = await fetch(`${W.base}/live/stream1.flv`);
      const ok = r.status === 200;
      await r.body?.cancel();
      return ok;
    }, T(20000), 'live/stream1.flv');
  });

  after(async () => {
    const code = W ? await W.stop() : 0;
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('plays live/stream1.flv', async () => {
    const st = await playUntil(W, `${W.base}/test/flv.html?src=/live/stream1.flv`, 3, T(45000));
    assert.deepEqual(st.pageErrors, []);
    assert.deepEqual(st.errors, []);
    assert.equal(st.width, 640);
    await st.page.close();
  });
});
