// hls.js plays sluice's ABR ladder in headless Chromium (docs/abr.md): a node with a
// 3-level provision of live/mystream (640x360, 320x180, 160x90) transcodes the published
// live/mystream_1; the page opens the provision's multivariant playlist
// (/live/mystream.m3u8), hls.js sees three levels with their sizes, plays, and, told to
// switch to the lowest level, keeps playing on it (the decoded picture becomes 160x90)
// without a fatal error: the variants' segments line up.
//
//   node --test abr.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { T, playUntil, startWorld, waitFor } from './player_world.mjs';

const LADDER = [[640, 360, 600000], [320, 180, 250000], [160, 90, 100000]];
const PROVISION = {
  streamGuid: 'live/mystream',
  streams: LADDER.map(([w, h, b], i) => ({
    streamGuid: `live/mystream_${i + 1}`, abrLevel: i + 1,
    videoParams: { videoWidth: w, videoHeight: h, videoBitRate: b },
  })),
};

let W;

describe('hls.js on an ABR ladder', { timeout: T(240000) }, () => {
  before(async () => {
    W = await startWorld('abr', ['  live: {hls_segment: 1s}'], ['live/mystream_1'], {
      extraConfig: ['abr:', '  enabled: true', '  preset: ultrafast',
        `  provisions: '${JSON.stringify(PROVISION)}'`],
    });
    await waitFor(async () => {
      const m = await (await fetch(`${W.base}/live/mystream.m3u8`)).text();
      if ((m.match(/#EXT-X-STREAM-INF/g) || []).length < 3) return false;
      const uri = m.split('\n').filter((l) => l && !l.startsWith('#'))[2];
      const media = await (await fetch(`${W.base}/live/${uri}`)).text();
      return (media.match(/#EXTINF/g) || []).length >= 2;
    }, T(60000), 'the ladder in the multivariant playlist, with segments');
  });

  after(async () => {
    const code = W ? await W.stop() : 0;
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('lists three levels, plays, and switches to the lowest', async () => {
    const st = await playUntil(W, `${W.base}/test/hls.html?src=/live/mystream.m3u8`, 2, T(60000));
    assert.deepEqual(st.pageErrors, []);
    const levels = await st.page.evaluate(() => window.player.hls.levels.map((l) => [l.width, l.height]));
    // hls.js orders levels by bandwidth, lowest first
    assert.deepEqual(levels, LADDER.map(([w, h]) => [w, h]).reverse());
    await st.page.evaluate(() => {
      const h = window.player.hls;
      h.currentLevel = h.levels.findIndex((l) => l.width === 160);
    });
    await waitFor(async () => st.page.evaluate(() => document.getElementById('video').videoWidth === 160),
      T(60000), 'the lowest level on screen');
    const t0 = await st.page.evaluate(() => document.getElementById('video').currentTime);
    await waitFor(async () => (await st.page.evaluate(() => document.getElementById('video').currentTime)) > t0 + 2,
      T(60000), 'playback going on at the lowest level');
    const errors = await st.page.evaluate(() => window.player.errors);
    assert.equal(errors.filter((e) => e.endsWith(':fatal')).length, 0, errors.join(', '));
    await st.page.close();
  });
});
