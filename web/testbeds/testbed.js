// The testbeds, one small page each (Red5's names, RED5-COMPAT §6.3), all
// run from here: <body data-test="publish"> picks the runner. Query: app,
// streamName (streamName2 for twoWay's other side), host, protocol, port,
// authUsername/authPassword/authToken (or username/password/token),
// streamMode (record | append: any publish testbed records), useAudio /
// useVideo (false leaves the track out).
import { Publisher, Subscriber, SharedObject, SharedObjectSocket, dataChannelTransport, listRecordings, findRecording,
  playRecording } from '/lib/sluice/index.js';
import { params, sdkOptions, state, log, status, showError, logEvents } from '/sdk/page.js';

const $ = (id) => document.getElementById(id);
/* The pages share one layout; a video shows once the testbed uses it. */
const show = (id) => { $(id).hidden = false; };
const test = document.body.dataset.test;
document.title = `sluice testbed - ${test}`;
$('title').textContent = test;

async function publish(extra = {}, videoId = 'pub-video') {
  // Red5's streamMode query parameter: record or append records any publish testbed.
  const mode = params.get('streamMode');
  if (extra.record === undefined && (mode === 'record' || mode === 'append')) extra = Object.assign({ record: mode === 'append' ? 'append' : true }, extra);
  // Red5's testbed settings useAudio / useVideo (false: leave that track out).
  const off = (k) => ['false', '0', 'no'].includes(params.get(k));
  if (!extra.mediaConstraints && (off('useAudio') || off('useVideo'))) {
    extra = Object.assign({ mediaConstraints: { audio: !off('useAudio'), video: !off('useVideo') } }, extra);
  }
  const pub = state.publisher = new Publisher(sdkOptions(extra));
  show(videoId);
  logEvents(pub);
  try {
    await pub.publish();
    $(videoId).srcObject = pub.stream;
    status('publishing');
  } catch (e) {
    state.httpStatus = e.status;
    status('failed');
    showError(`publish failed: ${e.message}`);
  }
  setInterval(async () => {
    if (!pub.pc) return;
    const s = await pub.getStats();
    state.framesEncoded = s.framesEncoded;
    if ($('stats')) $('stats').textContent = JSON.stringify({ framesEncoded: s.framesEncoded, fps: s.fps, kbps: s.bitrateKbps && Math.round(s.bitrateKbps), rtt: s.rtt });
  }, 1000);
  return pub;
}

function subscribe(extra = {}, videoId = 'sub-video') {
  const sub = state.subscriber = new Subscriber(sdkOptions(Object.assign({ element: videoId }, extra)));
  show(videoId);
  logEvents(sub);
  sub.on('Subscribe.Start', (e) => { state.tech = e.data.tech; status('playing ' + e.data.tech); });
  sub.on('Subscribe.Fail', (e) => { state.httpStatus = e.data.status; });
  sub.on('WebRTC.DataChannel.Message', (e) => (state.messages = state.messages || []).push(e.data));
  sub.subscribe().catch((e) => showError(`subscribe failed: ${e.message} (retrying)`));
  setInterval(async () => {
    const s = await sub.getStats();
    state.framesDecoded = s.framesDecoded || 0;
    state.currentTime = s.currentTime;
    if ($('stats')) $('stats').textContent = JSON.stringify({ tech: s.tech, framesDecoded: s.framesDecoded, t: s.currentTime, width: s.width });
  }, 500);
  return sub;
}

/* The call panel (publishCall, subscribeCall, the remote call pages):
 * callServer(method, args) with args a JSON array; each call's outcome goes
 * to state.calls and the page. */
function callPanel(client, method = 'getLiveStreams', args = '[]') {
  state.calls = [];
  $('controls-call').hidden = false;
  $('call-method').value = params.get('method') || method;
  $('call-args').value = params.get('args') || args;
  $('call').onclick = async () => {
    const m = $('call-method').value;
    let a;
    try { a = JSON.parse($('call-args').value || '[]'); } catch (e) { showError(`arguments are not JSON: ${e.message}`); return; }
    const t0 = performance.now();
    try {
      const result = await client.callServer(m, a);
      const ms = Math.round(performance.now() - t0);
      state.calls.push({ method: m, ok: true, result, ms });
      $('call-result').textContent = `${m} -> ${JSON.stringify(result)} (${ms} ms)`;
    } catch (e) {
      state.calls.push({ method: m, ok: false, code: e.code, error: e.message });
      $('call-result').textContent = `${m} failed (${e.code || 'error'}): ${e.message}`;
    }
  };
}

/* Red5's remote call callout: the publisher's message shown on the
 * subscriber's video where the publisher clicked. */
function callout(msg) {
  const el = $('callout');
  const video = $('sub-video');
  el.hidden = false;
  el.textContent = msg && msg.message !== undefined ? String(msg.message) : JSON.stringify(msg);
  const x = msg && typeof msg.touchX === 'number' ? msg.touchX : 0.5;
  const y = msg && typeof msg.touchY === 'number' ? msg.touchY : 0.5;
  el.style.left = `${video.offsetLeft + video.clientWidth * x}px`;
  el.style.top = `${video.offsetTop + video.clientHeight * y}px`;
}

function recordPage(mode) {
  return async () => {
    const m = params.get('streamMode') || mode;
    const pub = await publish({ record: m === 'append' ? 'append' : true });
    const name = pub.options.streamName;
    state.recording = name;
    $('controls-record').hidden = false;
    const q = new URLSearchParams(location.search);
    q.set('streamName', name);
    $('vod-link').href = `playbackVOD.html?${q}`;
    $('stop').onclick = async () => {
      await pub.unpublish();
      status('stopped: the recording is saved');
      state.stopped = true;
    };
  };
}

const runners = {
  publish: () => publish(),
  publishAuth: () => publish(),
  publishVP8: () => publish({ codec: 'VP8' }),
  publishScreenShare: () => publish({ screen: true, mediaConstraints: { audio: false } }),
  publishStatistics: () => publish(),
  publishMute: async () => {
    const pub = await publish();
    $('controls').hidden = false;
    $('mute-audio').onclick = () => { pub.muteAudio(); log('audio muted'); };
    $('mute-video').onclick = () => { pub.muteVideo(); log('video muted'); };
    $('unmute').onclick = () => { pub.unmuteAudio(); pub.unmuteVideo(); log('unmuted'); };
  },
  publishDataChannel: async () => {
    const pub = await publish();
    let n = 0;
    setInterval(() => { if (pub.send(`message ${++n} from ${pub.options.streamName}`)) state.sent = n; }, 500);
  },
  publishRecord: recordPage('record'),
  publishAppend: recordPage('append'),
  publishCall: async () => callPanel(await publish()),
  publishRemoteCall: async () => {
    const pub = await publish();
    state.sent = 0;
    const send = (touchX, touchY) => {
      if (pub.send('whateverFunctionName', { message: $('rc-text').value, touchX, touchY })) state.sent++;
    };
    $('controls-rc').hidden = false;
    $('pub-video').addEventListener('click', (e) => {
      const v = e.currentTarget;
      send(e.offsetX / Math.max(1, v.clientWidth), e.offsetY / Math.max(1, v.clientHeight));
    });
    $('rc-send').onclick = () => send(0.5, 0.5);
    callPanel(pub, 'sum', '[1, 2, 3]');
  },
  subscribeRemoteCall: () => {
    const sub = subscribe({ force: 'whep' });
    state.invokes = [];
    sub.registerHandler('whateverFunctionName', (msg) => { state.invokes.push(msg); callout(msg); });
    callPanel(sub, 'sum', '[1, 2, 3]');
  },
  subscribeCall: () => callPanel(subscribe({ force: 'whep' })),
  playbackVOD: async () => {
    const o = sdkOptions();
    const list = await listRecordings(o);
    state.recordings = list.map((m) => m.name);
    const ul = $('vod-list');
    ul.hidden = false;
    for (const m of list) {
      const q = new URLSearchParams(location.search);
      q.set('streamName', m.name);
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = `?${q}`;
      a.textContent = m.name;
      li.append(a, ` ${m.length} bytes, ${new Date(m.lastModified).toISOString()}`);
      ul.append(li);
    }
    const name = findRecording(list, params.get('streamName'));
    if (!name) {
      showError(`no recording ${params.get('streamName') || '(give streamName)'} in ${o.app}: ${list.length} listed`);
      return;
    }
    state.file = name;
    show('sub-video');
    const h = window.vodPlayback = await playRecording(o, name, $('sub-video'));
    state.tech = h.kind;
    status(`playing ${name} (${h.kind})`);
    setInterval(() => {
      const s = h.stats();
      state.framesDecoded = s.framesDecoded || 0;
      state.currentTime = s.currentTime;
      state.duration = s.duration;
      $('stats').textContent = JSON.stringify(s);
    }, 500);
  },
  subscribe: () => subscribe(),
  subscribeAuth: () => subscribe({ reconnect: { enabled: false } }),
  subscribeHLS: () => subscribe({ force: 'hls' }),
  subscribeFLV: () => subscribe({ force: 'flv' }),
  subscribeWHEP: () => subscribe({ force: 'whep' }),
  subscribeStatistics: () => subscribe(),
  subscribeReconnect: () => subscribe({ reconnect: { initial: 500, max: 4000 } }),
  subscribeDataChannel: () => subscribe({ force: 'whep' }),
  twoWay: async () => {
    const other = params.get('streamName2');
    if (!other) { showError('twoWay needs streamName (yours) and streamName2 (the other side)'); return; }
    await publish();
    subscribe({ streamName: other });
  },
  sharedObject: async () => {
    const name = params.get('so') || 'sharedChat';
    let transport;
    if (params.get('via') === 'datachannel') {
      const pub = await publish();
      transport = dataChannelTransport(pub.dc);
      await new Promise((r) => (pub.dc.readyState === 'open' ? r() : pub.dc.addEventListener('open', r, { once: true })));
    } else {
      transport = await new SharedObjectSocket(sdkOptions()).open();
    }
    const so = state.sharedObject = new SharedObject(name, transport);
    logEvents(so);
    so.on('Connect.Success', () => status('connected to ' + name));
    state.chat = [];
    so.on('SharedObject.MethodUpdate', (e) => {
      if (e.data.methodName !== 'chat') return;
      const m = e.data.message;
      const text = m && typeof m === 'object' ? m.text : m;
      state.chat.push(text);
      const li = document.createElement('li');
      li.textContent = String(text);
      $('chat').append(li);
    });
    so.connect();
    $('controls-so').hidden = false;
    $('so-send').onclick = () => so.send('chat', { text: $('so-text').value });
    $('so-set').onclick = () => so.setProperty('topic', $('so-text').value);
  },
};

if (!runners[test]) showError(`unknown testbed ${test}`);
else Promise.resolve().then(() => runners[test]()).catch((e) => showError(e.message));
