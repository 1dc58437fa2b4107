// The console (web/index.html) in a real browser: Debian's Chromium driven by
// playwright-core, against a sluice started here with a known API token, ffmpeg
// publishing and rtmpdump playing.
//
//   node --test            (from tests/browser; SLUICE_BIN selects the binary,
//                           default <repo>/build/sluice)
//
// Every wait is a condition with a deadline (page.waitForFunction, locator
// waits, waitFor below); nothing sleeps for a fixed time. Screenshots go to
// /tmp/console.png (1280 px wide) and /tmp/console-phone.png (390 px).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const SLUICE_BIN = process.env.SLUICE_BIN || path.join(REPO, 'build', 'sluice');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const TOKEN = 'browser-test-token-4f9a1c';
const HOST = '127.0.0.1';
const SCALE = Number(process.env.E2E_TIMEOUT_SCALE || 1);
const T = (ms) => ms * SCALE;

// ---------------------------------------------------------------------------
// helpers

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

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
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    W.context = await W.browser.newContext({ viewport: { width: 1280, height: 900 } });
    W.page = await W.context.newPage();
    W.pageErrors = [];
    W.page.on('pageerror', (e) => W.pageErrors.push(e.message));
    W.page.on('console', (m) => { if (m.type() === 'error') W.pageErrors.push(m.text()); });
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
    await page.screenshot({ path: '/tmp/console.png', fullPage: true });
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
      await page.screenshot({ path: '/tmp/console-phone.png', fullPage: true });
    } finally {
      await ctx.close();
    }
  });

  it('closes (unpublishes) a stream with its button', async () => {
    const page = W.page;
    const close = page.locator(`${streamRow} button`);
    await close.click();
    await close.click();
    await waitExit(W.publisher, T(10000), 'the unpublished ffmpeg');
    await page.locator(streamRow).waitFor({ state: 'detached', timeout: T(5000) });
    await page.locator('#streams-empty').waitFor({ state: 'visible', timeout: T(5000) });
    await page.locator('#events li[data-event="unpublish"]').first().waitFor({ timeout: T(5000) });
    assert.deepEqual(W.pageErrors.filter((e) => !/401|Unauthorized/.test(e)), []);
  });
});
