// Shared set-up of the player tests (hls.test.mjs, httpflv.test.mjs,
// pages.test.mjs): a sluice started here with the apps a test asks for, ffmpeg
// publishing a test pattern in real time, and Debian's Chromium
// (playwright-core) with autoplay allowed. The player libraries (hls.js,
// mpegts.js) are the ones the build put in web/test/lib/; nothing here copies
// them.
//
// Every wait is a condition with a deadline; nothing sleeps for a fixed time.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const SLUICE_BIN = process.env.SLUICE_BIN || path.join(REPO, 'build', 'sluice');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const HOST = '127.0.0.1';
const SCALE = Number(process.env.E2E_TIMEOUT_SCALE || 1);
export const T = (ms) => ms * SCALE;

// A TCP port that was free a moment ago, taken below the kernel's ephemeral range
// (ip_local_port_range) and never handed out twice by this process, as
// tests/e2e/conftest.py's free_port does. Port 0 would give an ephemeral port, which
// any outbound connection (Chromium's, ffmpeg's, those of a test file running beside
// this one under `node --test --test-concurrency`) may take as its source port before
// sluice listens on it. Each test file runs in its own process: a port is picked at
// random in the range, so two files rarely try the same one, and one that is taken by
// the time it is tried fails the bind and is skipped.
const PORTS_GIVEN = new Set();

function ephemeralLow() {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

function tryBind(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, HOST, () => s.close(() => resolve(true)));
  });
}

export async function freePort() {
  const low = 10000;
  const high = Math.max(ephemeralLow() - 1, 11000);
  for (let i = 0; i < 1000; i++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (PORTS_GIVEN.has(port)) continue;
    if (await tryBind(port)) {
      PORTS_GIVEN.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${low}-${high}`);
}

/** Polls pred() until truthy or the deadline; returns its value. */
export async function waitFor(pred, timeoutMs, what) {
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

function waitExit(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function sluiceEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_')) env[k] = v;
  return Object.assign(env, extra);
}

/** Config sections with a `port` besides rtmp and http: each gets a free port. */
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

/**
 * The player libraries must already be in the web root: `make build` puts them
 * in web/test/lib/ (scripts/web-players.sh, pinned by
 * clients/web/players/package-lock.json). Nothing here copies them, so these
 * tests prove that the pages play from what the build ships.
 */
export function checkPlayerLibs(webRoot = path.join(REPO, 'web')) {
  const lib = path.join(webRoot, 'test', 'lib');
  for (const name of ['hls.min.js', 'mpegts.js']) {
    if (!fs.existsSync(path.join(lib, name))) {
      throw new Error(`${path.join(lib, name)} missing: run make build (scripts/web-players.sh puts the players there)`);
    }
  }
}

/**
 * Starts the world: apps is the YAML of the `apps:` section (lines, indented),
 * streams a list of rtmp paths ("live/stream1") to publish; webRoot the
 * folder served (default: the repository's web/, `make run`'s). Returns an
 * object with base URL, browser, page(), stop().
 */
export async function startWorld(name, apps, streams,
  { webRoot = path.join(REPO, 'web'), playersRequired = true, chromiumArgs = [], extraConfig = [] } = {}) {
  if (!fs.existsSync(SLUICE_BIN)) throw new Error(`sluice binary not found at ${SLUICE_BIN} (set SLUICE_BIN)`);
  if (playersRequired) checkPlayerLibs(webRoot);
  const W = { children: [] };
  W.dir = fs.mkdtempSync(path.join(os.tmpdir(), `sluice-${name}-`));
  W.rtmpPort = await freePort();
  W.httpPort = await freePort();
  const lines = ['rtmp:', `  port: ${W.rtmpPort}`, 'http:', `  port: ${W.httpPort}`,
    `  web_root: ${webRoot}`, ...extraConfig, 'apps:', ...apps];
  for (const section of otherListenerSections()) lines.push(`${section}:`, `  port: ${await freePort()}`);
  const cfg = path.join(W.dir, 'sluice.yml');
  fs.writeFileSync(cfg, lines.join('\n') + '\n');
  fs.mkdirSync(path.join(W.dir, 'data'));
  const start = (tag, cmd, args, opts = {}) => {
    const log = fs.openSync(path.join(W.dir, `${tag}.${W.children.length}.log`), 'w');
    const child = spawn(cmd, args, Object.assign({ stdio: ['ignore', log, log] }, opts));
    fs.closeSync(log);
    W.children.push(child);
    return child;
  };
  W.sluiceLog = path.join(W.dir, 'sluice.0.log');
  W.sluice = start('sluice', SLUICE_BIN, ['--config', cfg], {
    cwd: W.dir,
    // E2E_WORKERS=N: server.workers N, as the pytest suite (tests/e2e/conftest.py).
    env: sluiceEnv(Object.assign({ SLUICE_SERVER_DATA_DIR: path.join(W.dir, 'data'), SLUICE_LOG_LEVEL: 'debug' },
      process.env.E2E_WORKERS ? { SLUICE_SERVER_WORKERS: process.env.E2E_WORKERS } : {})),
  });
  await waitFor(async () => {
    if (W.sluice.exitCode !== null) throw new Error('sluice exited: ' + fs.readFileSync(W.sluiceLog, 'utf8'));
    return (await fetch(`http://${HOST}:${W.httpPort}/healthz`)).status === 200;
  }, T(10000), 'sluice to answer /healthz');

  // A test pattern: H.264 640x360 25 fps with a keyframe every second, AAC
  // (made only when there is something to publish).
  const media = path.join(W.dir, 'src.flv');
  const gen = !streams.length ? { status: 0 } : spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '8',
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-pix_fmt', 'yuv420p',
    '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-b:v', '600k',
    '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', media], { encoding: 'utf8', timeout: 60000 });
  if (gen.status !== 0) throw new Error('media generation failed: ' + gen.stderr);
  for (const s of streams) {
    start('ffmpeg', 'ffmpeg', ['-hide_banner', '-loglevel', 'warning', '-nostdin', '-re', '-stream_loop', '-1',
      '-i', media, '-c', 'copy', '-f', 'flv', `rtmp://${HOST}:${W.rtmpPort}/${s}`]);
  }
  W.base = `http://${HOST}:${W.httpPort}`;
  W.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', ...chromiumArgs],
  });
  W.context = await W.browser.newContext({ viewport: { width: 900, height: 700 } });
  W.stop = async () => {
    if (W.browser) await W.browser.close();
    for (const c of W.children) if (c !== W.sluice && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    if (W.sluice && W.sluice.exitCode === null) W.sluice.kill('SIGTERM');
    let code = null;
    for (const c of W.children) {
      try {
        const rc = await waitExit(c, T(10000));
        if (c === W.sluice) code = rc;
      } catch {
        c.kill('SIGKILL');
      }
    }
    return code;
  };
  return W;
}

/**
 * Opens a player page, waits until the video plays and its currentTime has
 * advanced by `advance` seconds; returns {page, errors, currentTime, extra}.
 */
export async function playUntil(W, url, advance, timeoutMs) {
  const page = await W.context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  const first = await waitFor(async () => {
    const t = await page.evaluate(() => document.getElementById('video').currentTime);
    return t > 0.5 ? t : null;
  }, timeoutMs, `${url} to start playing`);
  await waitFor(async () => {
    const t = await page.evaluate(() => document.getElementById('video').currentTime);
    return t >= first + advance;
  }, timeoutMs, `${url} currentTime to advance by ${advance} s`);
  const state = await page.evaluate(() => ({
    currentTime: document.getElementById('video').currentTime,
    errors: window.player.errors,
    events: window.player.events.slice(-20),
    latency: window.player.latency ? window.player.latency() : null,
    width: document.getElementById('video').videoWidth,
  }));
  state.pageErrors = pageErrors;
  state.page = page;
  return state;
}
