// The browser SDK (clients/web, served from /lib/sluice/) through Red5's
// pages in headless Chromium with a fake camera: /live/broadcast.jsp ->
// /live/subscribe.jsp over WebRTC, the forced LL-HLS and HTTP-FLV fallbacks
// and the automatic one (an app without WebRTC), twoWay, a data channel,
// play again after an unpublish and a republish, and an app with simple
// auth refusing and then allowing the pages. Screenshots of the index,
// broadcast and subscribe pages go to tests/browser/screenshots/ (git-
// ignored; CI keeps them as artifacts; SDK_SCREENSHOTS overrides the folder).
//
//   node --test sdk.test.mjs     (SLUICE_BIN selects the binary)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO, T, startWorld, waitFor } from './player_world.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = process.env.SDK_SCREENSHOTS || path.join(HERE, 'screenshots');
let W;
const pages = [];

// The page's state without the SDK objects (a player holds circular references).
const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.sluicePage,
  (k, v) => (['publisher', 'subscriber', 'sharedObject'].includes(k) ? undefined : v))));

async function open(url) {
  const page = await W.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${W.base}${url}`);
  pages.push(page);
  return { page, errors };
}

async function decoding(view, n, what) {
  await waitFor(async () => (await state(view.page)).framesDecoded > n, T(40000), what);
}

async function advancing(view, what) {
  const t0 = await waitFor(async () => { const t = (await state(view.page)).currentTime; return t > 0.2 ? t : null; }, T(60000), what + ' to start');
  await waitFor(async () => (await state(view.page)).currentTime > t0 + 2, T(30000), what + ' to advance 2 s');
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

describe('browser SDK and the Red5 pages in Chromium', { timeout: T(400000) }, () => {
  before(async () => {
    // The build copies the SDK into the web root (scripts/web-players.sh); nothing here does.
    const sdk = path.join(REPO, 'web', 'lib', 'sluice', 'index.js');
    if (!fs.existsSync(sdk)) throw new Error(`${sdk} missing: run make build (scripts/web-players.sh copies clients/web/src there)`);
    const creds = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-sdk-auth-')), 'simple-auth.credentials');
    fs.writeFileSync(creds, 'alice wonderland\n');
    W = await startWorld('sdk', ['  live: {}', '  nowebrtc: {webrtc: false, hls_low_latency: true, hls_segment: 1s, hls_part: 333ms}',
      '  secure: {auth_simple: true}'], ['live/rtmp1', 'nowebrtc/rtmp1'], {
      chromiumArgs: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
      extraConfig: ['auth:', `  simple_file: ${creds}`],
    });
  });

  after(async () => {
    for (const p of pages) await p.close().catch(() => {});
    const code = W ? await W.stop() : 0;
    assert.equal(code, 0, 'sluice exits 0');
  });

  it('the index lists the testbeds, and the pages are served at Red5\'s URLs for any app', async () => {
    const { page, errors } = await open('/testbeds/');
    const names = await page.$$eval('#tests a', (as) => as.map((a) => a.textContent));
    for (const n of ['publish', 'subscribe', 'twoWay', 'subscribeHLS', 'subscribeFLV', 'publishDataChannel']) assert.ok(names.includes(n), n);
    await page.fill('input[name=streamName]', 'xyz');
    assert.match(await page.getAttribute('#tests a >> nth=0', 'href'), /streamName=xyz/);
    await shot(page, 'index.png');
    assert.deepEqual(errors, []);
    for (const u of ['/live/broadcast.jsp', '/live/broadcast.html', '/live/room1/subscribe.jsp', '/other/streams.jsp']) {
      const r = await fetch(W.base + u);
      assert.equal(r.status, 200, u);
      assert.match(await r.text(), /<!doctype html>/);
    }
    assert.equal((await fetch(W.base + '/broadcast.jsp')).status, 404, 'a page needs an app');
    assert.equal((await fetch(W.base + '/lib/sluice/index.js')).headers.get('content-type'), 'text/javascript; charset=utf-8');
  });

  it('broadcast.jsp publishes the camera and subscribe.jsp plays it over WebRTC', async () => {
    const pub = await open('/live/broadcast.jsp?streamName=b1');
    await waitFor(async () => (await state(pub.page)).framesEncoded > 10, T(30000), 'the broadcast page to encode');
    assert.equal((await state(pub.page)).status, 'publishing');
    const t0 = Date.now();
    const view = await open('/live/subscribe.jsp?streamName=b1');
    await decoding(view, 0, 'subscribe.jsp to decode a frame');
    console.log(`subscribe.jsp over WHEP: first decoded frame ${Date.now() - t0} ms after opening the page`);
    await decoding(view, 25, 'subscribe.jsp to decode 25 frames');
    const s = await state(view.page);
    assert.equal(s.tech, 'whep');
    assert.ok(s.width > 0);
    await shot(pub.page, 'broadcast.png');
    await shot(view.page, 'subscribe.png');
    assert.deepEqual(pub.errors, []);
    assert.deepEqual(view.errors, []);
    await view.page.close();
    await pub.page.close();
  });

  it('forced LL-HLS plays (subscribe.jsp?playback=hls)', async () => {
    const view = await open('/live/subscribe.jsp?streamName=rtmp1&playback=hls');
    await advancing(view, 'hls.js');
    assert.equal((await state(view.page)).tech, 'hls');
    await shot(view.page, 'subscribe-hls.png');
    assert.deepEqual(view.errors, []);
    await view.page.close();
  });

  it('forced HTTP-FLV plays (testbed subscribeFLV)', async () => {
    const view = await open('/testbeds/subscribeFLV.html?streamName=rtmp1');
    await advancing(view, 'mpegts.js');
    assert.equal((await state(view.page)).tech, 'flv');
    assert.deepEqual(view.errors, []);
    await view.page.close();
  });

  it('falls back from WHEP to HLS by itself when the app has no WebRTC', async () => {
    const t0 = Date.now();
    const view = await open('/nowebrtc/subscribe.jsp?streamName=rtmp1');
    await waitFor(async () => (await state(view.page)).currentTime > 0, T(60000), 'the fallback to play');
    console.log(`WHEP refused -> LL-HLS playing: ${Date.now() - t0} ms after opening the page`);
    await advancing(view, 'the fallback');
    const s = await state(view.page);
    assert.equal(s.tech, 'hls');
    assert.ok(s.events.some((e) => e.startsWith('Subscribe.Fail') && e.includes('"whep"') && e.includes('404')), s.events.join('\n'));
    await view.page.close();
  });

  it('twoWay: two pages each publish one stream and play the other', async () => {
    // A publishes ta before B opens (as the broadcast test does), so B's first WHEP try
    // finds ta live. A subscribes to tb before B publishes it: its subscriber goes down
    // the order (WHEP, HLS, FLV) and retries from the top, and on a loaded machine tb
    // can go live between A's WHEP and FLV tries (A then plays FLV, as designed). So the
    // technology is asserted on B, whose stream was live when it subscribed.
    const a = await open('/testbeds/twoWay.html?streamName=ta&streamName2=tb');
    await waitFor(async () => (await state(a.page)).framesEncoded > 10, T(30000), 'side A to publish');
    const b = await open('/testbeds/twoWay.html?streamName=tb&streamName2=ta');
    await decoding(a, 25, 'side A to decode B');
    await decoding(b, 25, 'side B to decode A');
    assert.equal((await state(b.page)).tech, 'whep');
    assert.deepEqual([...a.errors, ...b.errors], []);
    await a.page.close();
    await b.page.close();
  });

  it('publishDataChannel messages reach subscribeDataChannel', async () => {
    const pub = await open('/testbeds/publishDataChannel.html?streamName=dc1');
    const view = await open('/testbeds/subscribeDataChannel.html?streamName=dc1');
    await waitFor(async () => ((await state(view.page)).messages || []).some((m) => /^message \d+ from dc1$/.test(m)),
      T(30000), 'a data channel message at the viewer');
    await view.page.close();
    await pub.page.close();
  });

  it('plays again after the publisher leaves and comes back', async () => {
    let pub = await open('/live/broadcast.jsp?streamName=re1');
    await waitFor(async () => (await state(pub.page)).framesEncoded > 10, T(30000), 'publisher');
    const view = await open('/testbeds/subscribeReconnect.html?streamName=re1');
    await decoding(view, 25, 'first play');
    await pub.page.evaluate(() => window.sluicePage.publisher.unpublish());
    await pub.page.close();
    await waitFor(async () => (await state(view.page)).events.some((e) => e.startsWith('NetStream.Play.UnpublishNotify')),
      T(30000), 'the viewer to notice the unpublish');
    pub = await open('/live/broadcast.jsp?streamName=re1');
    try {
      await waitFor(async () => (await state(view.page)).events.filter((e) => e.startsWith('Subscribe.Start')).length >= 2,
        T(60000), 'the viewer to play the republished stream');
    } catch (e) {
      console.log((await state(view.page)).events.join('\n'));
      throw e;
    }
    const before = (await state(view.page)).framesDecoded;
    await waitFor(async () => (await state(view.page)).framesDecoded > before + 25, T(30000), 'frames after the republish');
    await view.page.close();
    await pub.page.close();
  });

  it('streams.jsp lists the live streams; the EventsClient hears a publish', async () => {
    const token = fs.readFileSync(path.join(W.dir, 'data', 'api_token'), 'utf8').trim();
    const list = await open(`/live/streams.jsp?accessToken=${encodeURIComponent(token)}`);
    await waitFor(async () => ((await state(list.page)).streams || []).includes('rtmp1'), T(20000), 'rtmp1 in the list');
    assert.equal(await list.page.getAttribute('a[href="subscribe.jsp?streamName=rtmp1&playback=hls"]', 'href'),
      'subscribe.jsp?streamName=rtmp1&playback=hls');
    const refused = await open('/live/streams.jsp?accessToken=wrong');
    await waitFor(async () => (await state(refused.page)).errors.some((e) => /401/.test(e)), T(20000), 'a wrong token refused');
    await list.page.evaluate(async (tok) => {
      const { EventsClient } = await import('/lib/sluice/index.js');
      const ec = new EventsClient({ accessToken: tok, filter: { app: 'live' } });
      window.sluicePage.heard = [];
      ec.on('message', (e) => window.sluicePage.heard.push(e.data.event + ':' + (e.data.stream || '')));
      await ec.open();
    }, token);
    const pub = await open('/live/broadcast.jsp?streamName=ev1');
    await waitFor(async () => ((await state(list.page)).heard || []).some((e) => e.endsWith(':ev1')), T(20000), 'an event of ev1');
    await waitFor(async () => ((await state(list.page)).streams || []).includes('ev1'), T(20000), 'ev1 in the list');
    await shot(list.page, 'streams.png');
    assert.deepEqual([...list.errors, ...pub.errors], []);
    await pub.page.close();
    await refused.page.close();
    await list.page.close();
  });

  // The server side is the shared_objects module's JSON adapter (branch wt/sojson): on a
  // server without it the socket answers NetConnection.Call.Failed and the test is skipped.
  it('sharedObject testbeds: the WebSocket and a data channel on one object', async (t) => {
    const a = await open('/testbeds/sharedObject.html?app=live&so=board');
    const probe = await a.page.evaluate(() => new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/live/?id=probe`);
      ws.onopen = () => ws.send(JSON.stringify({ sharedObjectConnect: { name: 'probe' } }));
      ws.onmessage = (e) => {
        if (String(e.data).includes('NetConnection.Connect.Success')) return; // the socket's greeting
        resolve(String(e.data));
        ws.close();
      };
      ws.onerror = () => resolve('error');
    }));
    if (/NetConnection\.Call\.Failed/.test(probe)) {
      t.skip('this server has no JSON shared objects yet (wt/sojson)');
      await a.page.close();
      return;
    }
    await waitFor(async () => (await state(a.page)).events.some((e) => e.startsWith('Connect.Success')), T(20000), 'A connected');
    const b = await open('/testbeds/sharedObject.html?app=live&so=board&via=datachannel&streamName=so1');
    await waitFor(async () => (await state(b.page)).events.some((e) => e.startsWith('Connect.Success')), T(30000), 'B connected over the data channel');
    await a.page.evaluate(() => window.sluicePage.sharedObject.setProperty('topic', 'from A'));
    await waitFor(async () => (await state(b.page)).events.some((e) => e === 'SharedObject.PropertyUpdate {"topic":"from A"}'), T(20000), 'B to see the topic');
    await b.page.evaluate(() => window.sluicePage.sharedObject.send('chat', { text: 'hi from B' }));
    await waitFor(async () => (await state(a.page)).events.some((e) => e.startsWith('SharedObject.MethodUpdate') && e.includes('hi from B')), T(20000), 'A to get the chat');
    assert.equal(await a.page.evaluate(() => window.sluicePage.sharedObject.properties.topic), 'from A');
    assert.deepEqual([...a.errors, ...b.errors], []);
    await a.page.close();
    await b.page.close();
  });

  it('an app with simple auth refuses the pages without credentials and allows them with', async () => {
    const bad = await open('/secure/broadcast.jsp?streamName=s1&username=alice&password=wrong');
    await waitFor(async () => (await state(bad.page)).status === 'failed', T(20000), 'the refusal');
    // sluice answers a wrong password 403 ("Invalid credentials."), missing ones 401.
    assert.equal((await state(bad.page)).httpStatus, 403);
    assert.match(await bad.page.textContent('#error'), /403/);
    await bad.page.close();
    const none = await open('/testbeds/subscribeAuth.html?app=secure&streamName=s1');
    await waitFor(async () => (await state(none.page)).httpStatus === 401, T(20000), 'the viewer refused');
    await none.page.close();
    const pub = await open('/secure/broadcast.jsp?streamName=s1&username=alice&password=wonderland');
    await waitFor(async () => (await state(pub.page)).framesEncoded > 10, T(30000), 'the allowed publisher');
    const view = await open('/testbeds/subscribeAuth.html?app=secure&streamName=s1&authUsername=alice&authPassword=wonderland');
    await decoding(view, 25, 'the allowed viewer');
    await view.page.close();
    await pub.page.close();
  });
});
