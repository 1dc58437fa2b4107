// The test pages as an integrator meets them (issue 12): web/test/hls.html and
// flv.html play from the web root `make build` / `make run` leave behind, with
// no test step having installed or copied a player first (hls.js and mpegts.js
// come from clients/web/players/package-lock.json via scripts/web-players.sh);
// and whatever stops playback is shown on the page (#error), not only in the
// console: a stream that is not there, a player library that is missing.
//
//   node --test pages.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, T, playUntil, startWorld, waitFor } from './player_world.mjs';

const LOCK = path.join(REPO, 'clients', 'web', 'players', 'package-lock.json');
const LIB = path.join(REPO, 'web', 'test', 'lib');

/** Opens url and waits until the page's #error is visible; returns its text. */
async function pageError(W, url) {
  const page = await W.context.newPage();
  await page.goto(url);
  const text = await waitFor(() => page.evaluate(() => {
    const e = document.getElementById('error');
    return e && !e.hidden && e.offsetHeight > 0 ? e.textContent : null;
  }), T(30000), `a visible error on ${url}`);
  await page.close();
  return text;
}

describe('test pages from the build', { timeout: T(240000) }, () => {
  let W;
  before(async () => {
    W = await startWorld('pages', ['  live: {}'], ['live/stream1']);
    await waitFor(async () => {
      const r = await fetch(`${W.base}/live/stream1.flv`);
      await r.body?.cancel();
      const m = await (await fetch(`${W.base}/live/stream1.m3u8`)).text();
      const uri = m.split('\n').find((l) => l && !l.startsWith('#'));
      if (r.status !== 200 || !uri) return false;
      return ((await (await fetch(`${W.base}/live/${uri}`)).text()).match(/#EXTINF/g) || []).length >= 2;
    }, T(60000), 'live/stream1 as HTTP-FLV and HLS');
  });

  after(async () => {
    const code = W ? await W.stop() : 0;
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('ships the players pinned by the lockfile', async () => {
    assert.equal(fs.readFileSync(path.join(LIB, '.lockfile'), 'utf8'), fs.readFileSync(LOCK, 'utf8'),
      'web/test/lib/ was not filled from clients/web/players/package-lock.json (make build)');
    const lock = JSON.parse(fs.readFileSync(LOCK, 'utf8')).packages;
    const hls = await (await fetch(`${W.base}/test/lib/hls.min.js`)).text();
    assert.ok(hls.includes(lock['node_modules/hls.js'].version), 'hls.min.js is the pinned version');
    const r = await fetch(`${W.base}/test/lib/mpegts.js`);
    assert.equal(r.status, 200);
    await r.body?.cancel();
  });

  it('flv.html plays', async () => {
    const st = await playUntil(W, `${W.base}/test/flv.html?src=/live/stream1.flv`, 2, T(45000));
    assert.deepEqual(st.pageErrors, []);
    assert.deepEqual(st.errors, []);
    assert.equal(await st.page.evaluate(() => document.getElementById('error').hidden), true);
    await st.page.close();
  });

  it('hls.html plays', async () => {
    const st = await playUntil(W, `${W.base}/test/hls.html?src=/live/stream1.m3u8`, 2, T(60000));
    assert.deepEqual(st.pageErrors, []);
    assert.equal(st.errors.filter((e) => e.endsWith(':fatal')).length, 0, st.errors.join(', '));
    assert.equal(await st.page.evaluate(() => document.getElementById('error').hidden), true);
    await st.page.close();
  });

  it('show a stream that is not there on the page', async () => {
    const flv = await pageError(W, `${W.base}/test/flv.html?src=/live/nosuchstream.flv`);
    assert.match(flv, /Cannot play \/live\/nosuchstream\.flv: NetworkError/);
    const hls = await pageError(W, `${W.base}/test/hls.html?src=/live/nosuchstream.m3u8`);
    assert.match(hls, /Cannot play \/live\/nosuchstream\.m3u8: manifestLoadError \(HTTP 404\)/);
  });
});

describe('test pages without their players', { timeout: T(120000) }, () => {
  let W, root;
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-webroot-'));
    fs.cpSync(path.join(REPO, 'web'), root, { recursive: true });
    fs.rmSync(path.join(root, 'test', 'lib'), { recursive: true, force: true });
    W = await startWorld('nolib', ['  live: {}'], [], { webRoot: root, playersRequired: false });
  });

  after(async () => {
    const code = W ? await W.stop() : 0;
    if (root) fs.rmSync(root, { recursive: true, force: true });
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('say so on the page', async () => {
    assert.match(await pageError(W, `${W.base}/test/hls.html`), /hls\.js is not installed .*make build/);
    assert.match(await pageError(W, `${W.base}/test/flv.html`), /mpegts\.js is not installed .*make build/);
  });
});
