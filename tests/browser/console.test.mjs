// The console (web/index.html) in a real browser: Debian's Chromium driven by
// playwright-core, with a fake camera, against a sluice started here with a
// known API token, ffmpeg publishing and rtmpdump playing. Besides the lists
// and the buttons: the publish panel goes live from the camera (WHIP), the
// player plays that stream over WebRTC and ffmpeg's forced over LL-HLS and
// HTTP-FLV, and recordings made with the API play (FLV through mpegts.js,
// MP4 in the <video>), each checked by frames the browser decoded.
//
//   node --test console.test.mjs   (from tests/browser; SLUICE_BIN selects the
//                                   binary, default <repo>/build/sluice)
//
// The SDK and the players come from the web root the build filled
// (scripts/web-players.sh); nothing here copies them. Every wait is a
// condition with a deadline (page.waitForFunction, locator waits, waitFor
// below); nothing sleeps for a fixed time. Screenshots go to
// tests/browser/screenshots/ (SDK_SCREENSHOTS overrides the folder):
// console.png (1280 px wide, a stream playing) and console-phone.png (390 px).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort } from './player_world.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const SLUICE_BIN = process.env.SLUICE_BIN || path.join(REPO, 'build', 'sluice');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const TOKEN = 'browser-test-token-4f9a1c';
const SHOTS = process.env.SDK_SCREENSHOTS || path.join(HERE, 'screenshots');
const HOST = '127.0.0.1';
const SCALE = Number(process.env.E2E_TIMEOUT_SCALE || 1);
const T = (ms) => ms * SCALE;

// ---------------------------------------------------------------------------
// helpers

/** Polls pred() until truthy or the deadline; returns its value. */
async function waitFor(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await pred();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ': ' + last.message : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100)); // the poll interval of a deadline-bounded wait
  }
}

/** Resolves with the exit code when the child ends, or rejects after timeoutMs. */
function waitExit(child, timeoutMs, what) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** The environment for sluice: ours without SLUICE_* (sluice reports unknown ones). */
function sluiceEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_')) env[k] = v;
  return Object.assign(env, extra);
}

/** Config sections with a `port` besides rtmp and http, each gets a free port. */
function otherListenerSections() {
  const p = spawnSync(SLUICE_BIN, ['--print-config', 'yaml'], { encoding: 'utf8', env: sluiceEnv({}) });
  if (p.status !== 0) return [];
  const out = new Set();
  let section = null;
  for (const line of p.stdout.split('\n')) {
    const m = line.match(/^([a-z_]+):\s*(#.*)?$/);
    if (m) section = m[1];
    else if (section && /^\s+port:/.test(line) && section !== 'rtmp' && section !== 'http') out.add(section);
  }
  return [...out];
}

class Procs {
  constructor(dir) {
    this.dir = dir;
    this.items = [];
  }

  start(name, cmd, args, opts = {}) {
    const log = fs.openSync(path.join(this.dir, `${name}.${this.items.length}.log`), 'w');
    const child = spawn(cmd, args, Object.assign({ stdio: ['ignore', log, log] }, opts));
    fs.closeSync(log);
    child.name = name;
    this.items.push(child);
    return child;
  }

  async stopAll() {
    for (const c of this.items) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    for (const c of this.items) {
      try {
        await waitExit(c, 5000, c.name);
      } catch {
        c.kill('SIGKILL');
      }
    }
  }
}

async function api(httpPort, p) {
  const r = await fetch(`http://${HOST}:${httpPort}/api/v1${p}`, {
    headers: { Authorization: 'Bearer ' + TOKEN },
  });
  const body = await r.json();
  if (r.status !== 200) throw new Error(`${p}: ${r.status} ${JSON.stringify(body)}`);
  return body.data;
}

// ---------------------------------------------------------------------------
// the world: sluice, a publisher, a browser

const W = {};

describe('console', { timeout: T(180000) }, () => {
  before(async () => {
    assert.ok(fs.existsSync(SLUICE_BIN), `sluice binary not found at ${SLUICE_BIN} (set SLUICE_BIN)`);
    for (const f of ['web/lib/sluice/index.js', 'web/test/lib/mpegts.js', 'web/test/lib/hls.min.js']) {
      assert.ok(fs.existsSync(path.join(REPO, f)), `${f} missing: run make build (scripts/web-players.sh puts it there)`);
    }
    fs.mkdirSync(SHOTS, { recursive: true });
    W.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-console-'));
    W.procs = new Procs(W.dir);
    W.rtmpPort = await freePort();
    W.httpPort = await freePort();
    const lines = [
      'rtmp:', `  port: ${W.rtmpPort}`,
      'http:', `  port: ${W.httpPort}`, `  web_root: ${path.join(REPO, 'web')}`,
      'apps:', '  live: {}',
    ];
    for (const section of otherListenerSections()) lines.push(`${section}:`, `  port: ${await freePort()}`);
    const cfg = path.join(W.dir, 'sluice.yml');
    fs.writeFileSync(cfg, lines.join('\n') + '\n');
    fs.mkdirSync(path.join(W.dir, 'data'));
    W.sluiceLog = path.join(W.dir, 'sluice.0.log');
    W.sluice = W.procs.start('sluice', SLUICE_BIN, ['--config', cfg], {
      cwd: W.dir,
      env: sluiceEnv({
        SLUICE_API_ACCESS_TOKEN: TOKEN,
        SLUICE_SERVER_DATA_DIR: path.join(W.dir, 'data'),
        SLUICE_LOG_LEVEL: 'debug',
      }),
    });
    await waitFor(async () => {
      if (W.sluice.exitCode !== null) throw new Error('sluice exited: ' + fs.readFileSync(W.sluiceLog, 'utf8'));
      const r = await fetch(`http://${HOST}:${W.httpPort}/healthz`);
      return r.status === 200;
    }, T(10000), 'sluice to answer /healthz');

    // a short test pattern (H.264 640x360 + AAC), published in a loop in real time
    const media = path.join(W.dir, 'src.flv');
    const gen = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '4',
      '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-g', '50', '-b:v', '600k',
      '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', media], { encoding: 'utf8', timeout: 60000 });
    assert.equal(gen.status, 0, gen.stderr);
    W.publisher = W.procs.start('ffmpeg', 'ffmpeg', ['-hide_banner', '-loglevel', 'warning', '-nostdin',
      '-re', '-stream_loop', '-1', '-i', media, '-c', 'copy', '-f', 'flv',
      `rtmp://${HOST}:${W.rtmpPort}/live/stream1`]);
    await waitFor(async () => (await api(W.httpPort, '/applications/live/streams')).includes('stream1'),
      T(15000), 'live/stream1 to be published');

    W.browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
        '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
    });
    W.context = await W.browser.newContext({ viewport: { width: 1280, height: 900 } });
    W.page = await W.context.newPage();
    W.pageErrors = [];
    W.page.on('pageerror', (e) => W.pageErrors.push(e.message));
    // Closing a WebRTC player or publisher closes its peer connection first, which
    // ends the session at once (DTLS close_notify); the SDK's DELETE of the
    // WHIP/WHEP resource that follows then finds it gone (404): not an error.
    // Nor is an LL-HLS part or segment that left the window while a loaded
    // machine was slow to ask for it (hls.js skips ahead).
    W.page.on('console', (m) => {
      const url = m.location().url || '';
      if (m.type() !== 'error') return;
      if (/\/(whip|whep)\/resource\//.test(url) || /\.(m4s|ts|m3u8)(\?|$)/.test(url)) return;
      W.pageErrors.push(`${m.text()} (${url})`);
    });
    W.base = `http://${HOST}:${W.httpPort}/`;
  });

  after(async () => {
    if (W.browser) await W.browser.close();
    if (W.procs) {
      for (const c of W.procs.items) {
        if (c !== W.sluice && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      }
      if (W.sluice && W.sluice.exitCode === null) {
        W.sluice.kill('SIGTERM');
        const code = await waitExit(W.sluice, T(10000), 'sluice').catch((e) => e);
        if (code !== 0) {
          const log = fs.readFileSync(W.sluiceLog, 'utf8').split('\n').slice(-60).join('\n');
          await W.procs.stopAll();
          assert.fail(`sluice did not exit cleanly on SIGTERM (${code}); log tail:\n${log}`);
        }
      }
      await W.procs.stopAll();
    }
    if (W.dir && !process.env.KEEP_TMP) fs.rmSync(W.dir, { recursive: true, force: true });
  });

  const streamRow = 'tr[data-stream="live/stream1"]';
  const playersOf = (page) => page.locator(`${streamRow} td.players`);

  it('asks for the token, then lists the published stream', async () => {
    const page = W.page;
    await page.goto(W.base);
    await page.locator('#login').waitFor({ state: 'visible', timeout: T(5000) });
    // a wrong token is refused with a message, and the prompt stays
    await page.fill('#token-input', 'not-the-token');
    await page.click('#token-submit');
    await page.locator('#login-error').waitFor({ state: 'visible', timeout: T(5000) });
    assert.match(await page.locator('#login-error').textContent(), /not accepted/);

    await page.fill('#token-input', TOKEN);
    await page.click('#token-submit');
    await page.locator(streamRow).waitFor({ state: 'visible', timeout: T(15000) });
    const cells = await page.locator(`${streamRow} td`).allTextContents();
    assert.equal(cells[0], 'live/stream1');
    assert.match(cells[1], /h264 \/ aac/);
    assert.equal(cells[2], '640×360');
    assert.match(cells[5], /^rtmp 127\.0\.0\.1:\d+$/);
    assert.equal(await playersOf(page).textContent(), '0');
    // the server card and the publish addresses
    const version = (await api(W.httpPort, '/server')).red5_pro_version;
    assert.equal(await page.locator('#s-version').textContent(), version);
    assert.equal(await page.locator('#pub-url').textContent(), `rtmp://${HOST}:${W.rtmpPort}/live/stream1`);
    assert.equal(await page.locator('#pub-obs-server').textContent(), `rtmp://${HOST}:${W.rtmpPort}/live`);
    assert.equal(await page.locator('#pub-obs-key').textContent(), 'stream1');
    await page.fill('#pub-name', 'camera2');
    assert.equal(await page.locator('#pub-url').textContent(), `rtmp://${HOST}:${W.rtmpPort}/live/camera2`);
    // the event stream is connected
    await page.locator('#live[data-state="live"]').waitFor({ timeout: T(5000) });
    // the token is kept: a reload goes straight to the dashboard
    assert.equal(await page.evaluate(() => localStorage.getItem('sluice.console.token')), TOKEN);
  });

  it('counts a player that joins, live', async () => {
    const page = W.page;
    W.player = W.procs.start('rtmpdump', 'rtmpdump',
      ['-q', '-r', `rtmp://${HOST}:${W.rtmpPort}/live/stream1`, '--live', '-o', '/dev/null']);
    // no reload: the play event on the WebSocket refreshes the page well before the 10 s poll
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '1',
      `${streamRow} td.players`, { timeout: T(5000) });
    await page.locator('#clients tr[data-role="subscriber"]').waitFor({ timeout: T(5000) });
    const row = await page.locator('#clients tr[data-role="subscriber"] td').allTextContents();
    assert.equal(row[1], 'rtmp');
    assert.match(row[2], /^127\.0\.0\.1:\d+$/);
    assert.equal(row[3], 'live/stream1');
    assert.equal(row[4], 'subscriber');
    await page.locator('#events li[data-event="play"]').first().waitFor({ timeout: T(5000) });
  });

  it('kicks the player with its button', async () => {
    const page = W.page;
    const subs = await api(W.httpPort, '/applications/live/streams/stream1/subscribers');
    assert.equal(subs.length, 1);
    const kick = page.locator(`#clients tr[data-client-id="${subs[0].id}"] button`);
    await kick.click();                       // arms it
    assert.equal(await kick.textContent(), 'Confirm');
    await kick.click();                       // does it
    await waitExit(W.player, T(10000), 'the kicked rtmpdump');
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '0',
      `${streamRow} td.players`, { timeout: T(5000) });
    await page.locator(`#clients tr[data-client-id="${subs[0].id}"]`).waitFor({ state: 'detached', timeout: T(5000) });
    assert.deepEqual(await api(W.httpPort, '/applications/live/streams/stream1/subscribers'), []);
  });

  // ---- media: go live, play, recordings ----------------------------------

  const camRow = 'tr[data-stream="live/cam1"]';
  const view = (page) => page.evaluate(() => window.sluiceConsole.player);

  /** Waits until the console's player decoded more than n frames with tech; returns its state. */
  async function decoded(page, tech, n, what) {
    return waitFor(async () => {
      const v = await view(page);
      if (v.error) throw new Error('the player says: ' + v.error);
      return v.tech === tech && v.framesDecoded > n ? v : null;
    }, T(40000), what);
  }

  /* Frames the player's <video> itself presented (requestVideoFrameCallback), not only
   * counted by a player: a chain of callbacks counts them from the start (a short
   * recording may end before a test could ask), reset before each Play. */
  async function countPresented(page) {
    await page.evaluate(() => {
      window.presentedFrames = 0;
      if (window.presentedArmed) return;
      window.presentedArmed = true;
      const v = document.getElementById('player-video');
      const cb = () => { window.presentedFrames++; v.requestVideoFrameCallback(cb); };
      v.requestVideoFrameCallback(cb);
    });
  }

  async function presented(page, n = 3) {
    await page.waitForFunction((k) => window.presentedFrames >= k, n, { timeout: T(10000) });
  }

  it('goes live from the camera with the publish panel, and the stream is listed', async () => {
    const page = W.page;
    await page.fill('#pub-name', 'cam1');
    await page.check('#pub-record');          // recorded while live: listed once it stops
    await page.click('#pub-start');
    await page.locator('#pub-stop').waitFor({ state: 'visible', timeout: T(20000) });
    await page.locator(camRow).waitFor({ state: 'visible', timeout: T(15000) });
    await waitFor(async () => {
      const p = await page.evaluate(() => window.sluiceConsole.publisher);
      if (p.error) throw new Error(p.error);
      return p.state === 'publishing' && p.framesEncoded > 10;
    }, T(20000), 'the console to publish the camera');
    assert.match(await page.locator(`${camRow} td`).nth(5).textContent(), /^webrtc /i);
    assert.equal(await page.locator('#pub-name').isDisabled(), true, 'the name is fixed while live');
    const streams = await api(W.httpPort, '/applications/live/streams');
    assert.ok(streams.includes('cam1'), streams.join(','));
  });

  it('Play shows the stream decoded over WebRTC, with its transport and statistics', async () => {
    const page = W.page;
    await countPresented(page);
    const t0 = Date.now();
    await page.click(`${camRow} button.play`);
    await page.locator('#player').waitFor({ state: 'visible', timeout: T(5000) });
    const v = await decoded(page, 'whep', 25, 'the player to decode 25 frames over WHEP');
    console.log(`console player over WHEP: 25 frames decoded ${Date.now() - t0} ms after Play`);
    assert.ok(v.width > 0 && v.height > 0, JSON.stringify(v));
    await presented(page);
    assert.equal(await page.locator('#pl-tech').textContent(), 'WebRTC (WHEP)');
    assert.match(await page.locator('#pl-size').textContent(), /^\d+×\d+$/);
    await waitFor(async () => /^\d+(\.\d)?$/.test(await page.locator('#pl-fps').textContent()) &&
      /[kM]b\/s$/.test(await page.locator('#pl-bitrate').textContent()), T(5000), 'fps and bitrate shown');
    await page.locator(`${camRow}.playing`).waitFor({ timeout: T(5000) });
    // the server counts the console's player
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '1',
      `${camRow} td.players`, { timeout: T(10000) });
    await page.screenshot({ path: path.join(SHOTS, 'console.png'), fullPage: true });
  });

  it('plays an RTMP stream, then forced over LL-HLS and over HTTP-FLV from the selector', async () => {
    const page = W.page;
    // closing the player ends its WebRTC session on the server
    await page.click('#player-close');
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '0',
      `${camRow} td.players`, { timeout: T(10000) });
    await page.click(`${streamRow} button.play`);             // auto: whatever plays first
    assert.equal(await page.locator('#player-title').textContent(), 'live/stream1');
    const t0 = Date.now();
    await page.selectOption('#player-tech', 'hls');            // forced: the player starts again
    const h = await decoded(page, 'hls', 25, 'the player to decode 25 frames over LL-HLS');
    console.log(`console player forced to LL-HLS: 25 frames decoded ${Date.now() - t0} ms after the switch`);
    assert.equal(h.width, 640);
    assert.equal(await page.locator('#pl-tech').textContent(), 'LL-HLS');
    await page.selectOption('#player-tech', 'flv');            // switches the playing stream
    await countPresented(page);
    await decoded(page, 'flv', 25, 'the player to decode 25 frames over HTTP-FLV');
    await presented(page);
    await page.click('#player-close');
  });

  /** Records live/stream1 as saveas through the API until the file holds minBytes; returns its name. */
  async function record(saveas, minBytes) {
    const started = await api(W.httpPort, `/applications/live/streams/stream1/action/startrecord?saveas=${saveas}`);
    const name = started.record_name;
    await waitFor(async () => {
      const m = (await api(W.httpPort, '/applications/live/media')).find((f) => f.name === name);
      return m && m.file_size >= minBytes;
    }, T(20000), `${name} to hold ${minBytes} bytes`);
    await api(W.httpPort, '/applications/live/streams/stream1/action/stoprecord');
    return name;
  }

  for (const [saveas, tech, what] of [['rec1', 'flv-file', 'FLV through mpegts.js'], ['rec2.mp4', 'mp4', 'MP4 in the video element']]) {
    it(`lists a recording made with the API and plays it (${what})`, async () => {
      const page = W.page;
      const name = await record(saveas, 200 * 1024);
      const row = `tr[data-recording="live/${name}"]`;
      // record_done on the event stream refreshes the list
      await page.locator(row).waitFor({ timeout: T(10000) });
      assert.equal(await page.locator(`${row} a`).getAttribute('href'), `/live/streams/${name}`);
      await countPresented(page);
      await page.click(`${row} button.play`);
      const v = await decoded(page, tech, 25, `the player to decode 25 frames of ${name}`);
      assert.equal(v.width, 640);
      assert.ok(v.currentTime > 0.5, JSON.stringify(v));
      await presented(page);
      assert.equal(await page.locator('#player-tech-label').isVisible(), false, 'no transport choice for a file');
    });
  }

  it('deletes a recording with its button', async () => {
    const page = W.page;
    const row = 'tr[data-recording="live/rec1.flv"]';
    const del = page.locator(`${row} button.danger`);
    await del.click();                        // arms it
    assert.equal(await del.textContent(), 'Confirm');
    await del.click();
    await page.locator(row).waitFor({ state: 'detached', timeout: T(10000) });
    const names = (await api(W.httpPort, '/applications/live/media')).map((m) => m.name);
    assert.ok(!names.includes('rec1.flv') && names.includes('rec2.mp4'), names.join(','));
  });

  it('stops publishing and closes the player', async () => {
    const page = W.page;
    await page.click('#player-close');
    await page.locator('#player').waitFor({ state: 'hidden', timeout: T(5000) });
    assert.equal(await page.evaluate(() => document.getElementById('player-video').srcObject), null);
    await page.click('#pub-stop');
    await page.locator(camRow).waitFor({ state: 'detached', timeout: T(10000) });
    // "Record" was ticked: the WHIP publish was recorded (?record=1), and is listed
    await page.locator('tr[data-recording="live/cam1.flv"]').waitFor({ timeout: T(10000) });
    assert.equal(await page.locator('#pub-record').isDisabled(), false);
    await page.locator('#pub-start').waitFor({ state: 'visible', timeout: T(5000) });
    assert.equal(await page.locator('#pub-name').isDisabled(), false);
    await page.fill('#pub-name', 'stream1');
  });

  it('takes ?token= from the URL and fits a phone screen', async () => {
    const ctx = await W.browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true,
      deviceScaleFactor: 2 });
    try {
      const page = await ctx.newPage();
      await page.goto(`${W.base}?token=${encodeURIComponent(TOKEN)}`);
      await page.locator(streamRow).waitFor({ state: 'visible', timeout: T(15000) });
      assert.equal(new URL(page.url()).search, '', 'the token is removed from the address bar');
      assert.equal(await page.locator('#login').isVisible(), false);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone screen`);
      await page.screenshot({ path: path.join(SHOTS, 'console-phone.png'), fullPage: true });
    } finally {
      await ctx.close();
    }
  });

  it('closes (unpublishes) a stream with its button', async () => {
    const page = W.page;
    const close = page.locator(`${streamRow} button.danger`);
    await close.click();
    await close.click();
    await waitExit(W.publisher, T(10000), 'the unpublished ffmpeg');
    await page.locator(streamRow).waitFor({ state: 'detached', timeout: T(5000) });
    await page.locator('#streams-empty').waitFor({ state: 'visible', timeout: T(5000) });
    await page.locator('#events li[data-event="unpublish"]').first().waitFor({ timeout: T(5000) });
    assert.deepEqual(W.pageErrors.filter((e) => !/401|Unauthorized/.test(e)), []);
  });
});
