#!/usr/bin/env node
// bench/llhls-browser.mjs: LL-HLS glass-to-glass latency with hls.js in Chromium,
// from sluice's own test page (web/test/hls.html?ll=1), with the page's hls.js config.
//
// The world is the browser tests' (tests/browser/player_world.mjs): sluice on
// loopback with an app `ll` (hls_low_latency, hls_segment 2s, hls_part 333ms), ffmpeg
// publishing a 640x360 25 fps test pattern (GOP 1 s) in real time with -re, Debian's
// Chromium through playwright-core. Latency is sampled every 250 ms once the video
// plays, after a settling time:
//
//   glass-to-glass  Date.now() - hls.playingDate: now, minus the wall time at which the
//                   frame being shown reached the server (its segment's
//                   EXT-X-PROGRAM-DATE-TIME plus its offset in the segment). With -re
//                   on loopback a frame reaches the server when it is "captured", so
//                   this is the publisher-to-screen latency less the encoder's delay
//                   (none here: the media is pre-encoded) and the display pipeline's.
//   to live edge    hls.latency: hls.js's own figure, behind the playlist's last part.
//
// Nothing is asserted (a timing figure is not a pass/fail test). Usage:
//   (cd tests/browser && npm ci)              # once: hls.js, playwright-core
//   node bench/llhls-browser.mjs [seconds=30] [settle=10]
// HLSJS_CONFIG='{"maxLiveSyncPlaybackRate":1}' overrides keys of the page's config
// (to compare settings); PART=333ms SEGMENT=2s change the server side.

import { T, playUntil, startWorld } from '../tests/browser/player_world.mjs';

const seconds = Number(process.argv[2] || 30);
const settle = Number(process.argv[3] || 10);
const part = process.env.PART || '333ms';
const segment = process.env.SEGMENT || '2s';
const override = process.env.HLSJS_CONFIG ? JSON.parse(process.env.HLSJS_CONFIG) : null;

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], median: q(0.5), p90: q(0.9), max: s[s.length - 1] };
}
const fmt = (st) => `median ${st.median.toFixed(2)} s   min ${st.min.toFixed(2)}   p90 ${st.p90.toFixed(2)}   max ${st.max.toFixed(2)}   (${st.n} samples)`;

const W = await startWorld('llhls-bench', [
  `  ll: {hls_low_latency: true, hls_segment: ${segment}, hls_part: ${part}}`,
], ['ll/stream1']);
let code = 0;
try {
  if (override) {
    // Wraps the page's Hls constructor so that the given keys replace the page's.
    await W.context.addInitScript((o) => {
      let real;
      Object.defineProperty(window, 'Hls', {
        configurable: true,
        get() { return real; },
        set(H) {
          real = class extends H { constructor(cfg) { super(Object.assign({}, cfg, o)); } };
          Object.assign(real, H);
          for (const k of Object.getOwnPropertyNames(H)) {
            try { if (!(k in real)) real[k] = H[k]; } catch { /* read-only statics */ }
          }
          real.isSupported = H.isSupported.bind(H);
          real.Events = H.Events;
        },
      });
    }, override);
  }
  // Wait for two segments so that the player does not start on an empty playlist.
  const st = await playUntil(W, `${W.base}/test/hls.html?src=/ll/stream1.m3u8&ll=1`, 1, T(90000));
  const page = st.page;
  const cfg = await page.evaluate(() => {
    const c = window.player.hls.config;
    return { lowLatencyMode: c.lowLatencyMode, liveSyncDuration: c.liveSyncDuration,
      liveSyncDurationCount: c.liveSyncDurationCount, maxLiveSyncPlaybackRate: c.maxLiveSyncPlaybackRate,
      backBufferLength: c.backBufferLength };
  });
  await page.evaluate(() => {
    window.benchStalls = 0;
    document.getElementById('video').addEventListener('waiting', () => { window.benchStalls += 1; });
  });
  const g2g = [];
  const edge = [];
  const t0 = Date.now();
  let target = null;
  let lastRate = 1;
  while (Date.now() - t0 < (settle + seconds) * 1000) {
    const s = await page.evaluate(() => {
      const h = window.player.hls;
      const v = document.getElementById('video');
      return { pd: h.playingDate ? h.playingDate.getTime() : null, now: Date.now(), edge: h.latency,
        target: h.targetLatency, rate: v.playbackRate };
    });
    if (Date.now() - t0 >= settle * 1000 && s.pd !== null) {
      g2g.push((s.now - s.pd) / 1000);
      edge.push(s.edge);
    }
    target = s.target;
    lastRate = s.rate;
    await new Promise((r) => setTimeout(r, 250)); // the sampling interval
  }
  const errors = await page.evaluate(() => window.player.errors);
  const stalls = await page.evaluate(() => window.benchStalls);
  console.log(`LL-HLS in Chromium with hls.js (part target ${part}, segment ${segment}, 640x360 25 fps, GOP 1 s),`);
  console.log(`  ${seconds} s after ${settle} s of settling; hls.js config ${JSON.stringify(cfg)}`);
  console.log(`  glass-to-glass   ${fmt(stats(g2g))}`);
  console.log(`  to live edge     ${fmt(stats(edge))}`);
  console.log(`  hls.js target latency ${target === null ? '?' : target.toFixed(2)} s, playbackRate at the end ${lastRate}, stalls (video 'waiting') ${stalls}`);
  if (errors.length) console.log(`  hls.js errors: ${errors.join(', ')}`);
  await page.close();
} finally {
  code = await W.stop();
}
process.exit(code === 0 ? 0 : 1);
