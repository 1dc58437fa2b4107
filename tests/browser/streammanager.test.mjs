// The Red5 Stream Manager 2.0 client flow in headless Chromium, as Red5's
// HTML5 SDK does it (its sm-test pages publishStreamManagerProxy and
// subscribeStreamManagerProxy): a private redis-server, a stream manager
// node (stream_manager + sm_proxy, cluster role relay so that it is never
// named itself) and an origin node. web/test/streammanager.html, served by
// the stream manager, looks the stream up
// (/as/v1/streams/stream/default/publish/live/{stream}), then publishes the
// fake camera through /as/v1/proxy/whip/live/{stream} with the SDK's
// `endpoint` option; a second page looks up the subscribe side and plays
// through /as/v1/proxy/whep/live/{stream} until frames are decoded. Both
// pages must hear WebRTC.Endpoint.Changed naming the origin, and the media
// must flow between Chromium and the origin (the proxy carries signalling
// only).
//
//   node --test streammanager.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HOST, REPO, SLUICE_BIN, T, freePort, startWorld, waitFor } from './player_world.mjs';

const REDIS = '/usr/bin/redis-server';
let W;
let redis;
let origin;
const pages = [];

const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.sluiceState)));

async function open(url) {
  const page = await W.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${W.base}${url}`);
  pages.push(page);
  return { page, errors };
}

function clusterLines(redisPort, role, id) {
  return ['cluster:', '  enabled: true', `  redis: ${HOST}:${redisPort}`, '  prefix: "smbrowser:"',
    `  role: ${role}`, `  node_id: ${id}`, '  lease: 3s', '  report_interval: 300ms'];
}

/** Every listener section of the default config with a port, each on a free port. */
async function listenerLines() {
  const p = spawnSync(SLUICE_BIN, ['--print-config', 'yaml'], { encoding: 'utf8' });
  const lines = [];
  let section = null;
  for (const line of p.stdout.split('\n')) {
    const m = line.match(/^([a-z_]+):\s*(#.*)?$/);
    if (m) section = m[1];
    else if (section && /^\s+port:/.test(line)) lines.push(`${section}:`, `  port: ${await freePort()}`);
  }
  return lines;
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, ms);
    child.once('exit', (code) => { clearTimeout(t); resolve(code); });
  });
}

describe('Red5 Stream Manager 2.0 flow through the proxy in Chromium', { timeout: T(180000) }, () => {
  before(async () => {
    const sdk = path.join(REPO, 'web', 'lib', 'sluice', 'index.js');
    if (!fs.existsSync(sdk)) throw new Error(`${sdk} missing: run make build (scripts/web-players.sh copies clients/web/src there)`);
    if (!fs.existsSync(REDIS)) throw new Error('redis-server is not installed');
    // redis-server on a free port, never the system's, nothing saved
    const redisPort = await freePort();
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'sluice-smbrowser-'));
    redis = spawn(REDIS, ['--port', String(redisPort), '--bind', HOST, '--save', '', '--appendonly', 'no',
      '--dir', dir], { stdio: 'ignore' });
    await waitFor(() => {
      const r = spawnSync('redis-cli', ['-p', String(redisPort), 'ping'], { encoding: 'utf8' });
      return r.status === 0 && r.stdout.trim() === 'PONG';
    }, T(10000), 'redis-server to answer');
    // the origin node
    const cfg = path.join(dir, 'origin.yml');
    const originHttp = await freePort();
    const lines = await listenerLines();
    const i = lines.indexOf('http:');
    if (i >= 0) lines[i + 1] = `  port: ${originHttp}`;
    fs.writeFileSync(cfg, [...lines, ...clusterLines(redisPort, 'origin', 'origin1'), 'apps:', '  live: {}'].join('\n') + '\n');
    fs.mkdirSync(path.join(dir, 'data'));
    const log = fs.openSync(path.join(dir, 'origin.log'), 'w');
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_')) env[k] = v;
    origin = spawn(SLUICE_BIN, ['--config', cfg], { cwd: dir, stdio: ['ignore', log, log],
      env: Object.assign(env, { SLUICE_SERVER_DATA_DIR: path.join(dir, 'data') }) });
    fs.closeSync(log);
    origin.httpPort = originHttp;
    // the stream manager, serving the page
    W = await startWorld('smproxy', ['  live: {}'], [], {
      playersRequired: false,
      chromiumArgs: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
      extraConfig: [...clusterLines(redisPort, 'relay', 'sm1'), 'stream_manager:', '  enabled: true',
        'sm_proxy:', '  enabled: true'],
    });
    // both nodes in the stream manager's view
    await waitFor(async () => {
      const r = await fetch(`${W.base}/as/v1/streams/stream/default/publish/live/probe`);
      return r.status === 200;
    }, T(15000), 'the stream manager to see the origin');
  });

  after(async () => {
    for (const p of pages) await p.close().catch(() => {});
    const code = W ? await W.stop() : 0;
    if (origin) { origin.kill('SIGTERM'); await waitExit(origin, T(10000)); }
    if (redis) { redis.kill('SIGTERM'); await waitExit(redis, T(10000)); }
    assert.equal(code, 0, 'the stream manager exits 0');
  });

  it('publishes through /as/v1/proxy/whip and plays through /as/v1/proxy/whep after the lookups', async () => {
    const nodeHost = `${HOST}:${origin.httpPort}`;
    const pub = await open('/test/streammanager.html?mode=publish&app=live&streamName=smb1&nodeGroup=default');
    await waitFor(async () => (await state(pub.page)).framesEncoded > 10, T(30000), 'the publisher to encode');
    let s = await state(pub.page);
    assert.deepEqual(s.errors, []);
    assert.equal(s.lookup, 200);
    assert.equal(s.node.nodeRole, 'origin');
    assert.equal(s.endpoint, nodeHost, 'WebRTC.Endpoint.Changed names the origin');
    const view = await open('/test/streammanager.html?mode=play&app=live&streamName=smb1&nodeGroup=default');
    await waitFor(async () => (await state(view.page)).framesDecoded > 25, T(40000), 'the viewer to decode 25 frames');
    s = await state(view.page);
    assert.deepEqual(s.errors, []);
    assert.equal(s.lookup, 200);
    assert.equal(s.endpoint, nodeHost);
    assert.match(s.resource, /\/as\/v1\/proxy\/whep\/resource\/origin1\/live\//);
    const t0 = s.currentTime;
    await waitFor(async () => (await state(view.page)).currentTime > t0 + 1, T(20000), 'currentTime to advance');
    assert.deepEqual(pub.errors, []);
    assert.deepEqual(view.errors, []);
  });
});
