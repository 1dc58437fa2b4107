// The testbeds, one small page each (Red5's names, RED5-COMPAT §6.3), all
// run from here: <body data-test="publish"> picks the runner. Query: app,
// streamName (streamName2 for twoWay's other side), host, protocol, port,
// authUsername/authPassword/authToken (or username/password/token).
import { Publisher, Subscriber, SharedObject, SharedObjectSocket, dataChannelTransport } from '/lib/sluice/index.js';
import { params, sdkOptions, state, log, status, showError, logEvents } from '/sdk/page.js';

const $ = (id) => document.getElementById(id);
const test = document.body.dataset.test;
document.title = `sluice testbed - ${test}`;
$('title').textContent = test;

async function publish(extra = {}, videoId = 'pub-video') {
  const pub = state.publisher = new Publisher(sdkOptions(extra));
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
    so.connect();
    $('controls-so').hidden = false;
    $('so-send').onclick = () => so.send('chat', { text: $('so-text').value });
    $('so-set').onclick = () => so.setProperty('topic', $('so-text').value);
  },
};

if (!runners[test]) showError(`unknown testbed ${test}`);
else Promise.resolve().then(() => runners[test]()).catch((e) => showError(e.message));
