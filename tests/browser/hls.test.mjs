// hls.js (put in web/test/lib/ by the build, served by sluice) plays sluice's HLS
// in headless Chromium: MPEG-TS segments, fMP4, and Low-Latency HLS (hls.js in
// lowLatencyMode uses blocking playlist reload, parts and preload hints). The
// page is web/test/hls.html; the test waits until the video's currentTime
// advances and no fatal hls.js error was reported. The latency hls.js measures
// to the live edge is printed for LL-HLS (not asserted).
//
//   node --test hls.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { T, playUntil, startWorld, waitFor } from './player_world.mjs';

let W;

describe('hls.js', { timeout: T(240000) }, () => {
  before(async () => {
    W = await startWorld('hls', [
      '  live: {}',
      '  fm: {hls_format: fmp4, hls_segment: 2s}',
      '  ll: {hls_low_latency: true, hls_segment: 2s, hls_part: 333ms}',
    ], ['live/stream1', 'fm/stream1', 'll/stream1']);
    // wait for playlists with segments before opening players
    for (const app of ['live', 'fm', 'll']) {
      await waitFor(async () => {
        const m = await (await fetch(`${W.base}/${app}/stream1.m3u8`)).text();
        const uri = m.split('\n').find((l) => l && !l.startsWith('#'));
        if (!uri) return false;
        const media = await (await fetch(`${W.base}/${app}/${uri}`)).text();
        return (media.match(/#EXTINF/g) || []).length >= 2;
      }, T(60000), `${app}/stream1 playlist`);
    }
  });

  after(async () => {
    const code = W ? await W.stop() : 0;
    assert.equal(code, 0, 'sluice exits 0');
  });

  for (const [app, ll] of [['live', false], ['fm', false], ['ll', true]]) {
    it(`plays ${app}/stream1.m3u8${ll ? ' (low latency)' : ''}`, async () => {
      const url = `${W.base}/test/hls.html?src=/${app}/stream1.m3u8${ll ? '&ll=1' : ''}`;
      const st = await playUntil(W, url, 3, T(60000));
      assert.deepEqual(st.pageErrors, []);
      assert.equal(st.errors.filter((e) => e.endsWith(':fatal')).length, 0, st.errors.join(', '));
      assert.equal(st.width, 640);
      if (ll) {
        console.log(`hls.js LL-HLS latency to the live edge: ${st.latency === null ? '?' : st.latency.toFixed(2)} s`);
        // The page's low-latency config (bench/llhls-browser.mjs measured it): without
        // catch-up (maxLiveSyncPlaybackRate 1) hls.js stays where it started, ~2.5 s
        // behind, instead of PART-HOLD-BACK's 1 s.
        const cfg = await st.page.evaluate(() => {
          const c = window.player.hls.config;
          return { lowLatencyMode: c.lowLatencyMode, maxLiveSyncPlaybackRate: c.maxLiveSyncPlaybackRate };
        });
        assert.equal(cfg.lowLatencyMode, true);
        assert.ok(cfg.maxLiveSyncPlaybackRate > 1, `maxLiveSyncPlaybackRate ${cfg.maxLiveSyncPlaybackRate}`);
      }
      await st.page.close();
    });
  }
});
