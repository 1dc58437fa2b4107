// What Chromium does with H.264 B-frames over WHEP (docs/webrtc.md, "B-frames").
// Publishes three RTMP streams to sluice (x264 High 640x360 25 fps: no B-frames; 3
// B-frames with b-pyramid, x264's default; 3 B-frames without pyramid), plays each
// in headless Chromium for 10 s and prints its inbound-rtp video stats (frames
// received, decoded, dropped, freezes, PLIs sent) and how many frames the video
// element presented, with how many of their RTP timestamps went backwards.
//
//   cd tests/browser && SLUICE_BIN=$PWD/../../build/sluice node ../../bench/webrtc_bframes_probe.mjs
//
// sluice's default (webrtc.bframes: drop) is measured as is; for `send`, point
// SLUICE_BIN at a script that runs `SLUICE_WEBRTC_BFRAMES=send exec .../sluice "$@"`
// (player_world.mjs passes no SLUICE_* variable of its own environment through).
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { startWorld, waitFor } = await import(path.join(HERE, '..', 'tests', 'browser', 'player_world.mjs'));

const W = await startWorld('bf', ['  live: {}'], [], { playersRequired: false });
const port = W.rtmpPort;
for (const [name, args] of [['bf0', ['-profile:v', 'high', '-bf', '0']], ['bf3', ['-profile:v', 'high', '-bf', '3']], ['bf3np', ['-profile:v', 'high', '-bf', '3', '-x264-params', 'b-pyramid=none']]]) {
  const f = path.join(W.dir, name + '.flv');
  const g = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '8', '-c:v', 'libx264', '-preset', 'veryfast', ...args,
    '-pix_fmt', 'yuv420p', '-g', '50', '-b:v', '600k', '-c:a', 'aac', '-f', 'flv', f], { encoding: 'utf8' });
  if (g.status) throw new Error(g.stderr);
  W.children.push(spawn('ffmpeg', ['-hide_banner', '-loglevel', 'warning', '-nostdin', '-re', '-stream_loop', '-1', '-i', f, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/${name}`], { stdio: 'ignore' }));
}
await new Promise((r) => setTimeout(r, 3000));
for (const name of ['bf0', 'bf3', 'bf3np']) {
  const page = await W.context.newPage();
  await page.goto(`${W.base}/test/webrtc.html?mode=play&streamName=${name}`);
  await waitFor(async () => page.evaluate(() => window.sluiceState.framesDecoded > 0), 20000, 'start');
  await page.evaluate(() => {
    const v = document.getElementById('video');
    window.pres = [];
    const cb = (now, md) => { window.pres.push([md.rtpTimestamp, md.mediaTime, md.presentedFrames]); v.requestVideoFrameCallback(cb); };
    v.requestVideoFrameCallback(cb);
  });
  await new Promise((r) => setTimeout(r, 10000));
  const out = await page.evaluate(async () => {
    const rep = await window.sluicePc.getStats();
    let s = null;
    rep.forEach((x) => { if (x.type === 'inbound-rtp' && x.kind === 'video') s = x; });
    const p = window.pres;
    let back = 0;
    for (let i = 1; i < p.length; i++) if (((p[i][0] - p[i - 1][0]) | 0) < 0) back++;
    return { decoder: s.decoderImplementation, framesReceived: s.framesReceived, framesDecoded: s.framesDecoded, framesDropped: s.framesDropped,
      framesRendered: s.framesRendered, freezeCount: s.freezeCount, freezeDur: s.totalFreezesDuration, pli: s.pliCount, nack: s.nackCount,
      keyFramesDecoded: s.keyFramesDecoded, fps: s.framesPerSecond, currentTime: document.getElementById('video').currentTime,
      presented: p.length, backward: back, sample: p.slice(0, 12).map((x) => x[0]) };
  });
  console.log(name, JSON.stringify(out));
  await page.close();
}
await W.stop();
