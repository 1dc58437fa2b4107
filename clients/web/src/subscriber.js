// Subscriber: plays a stream with the first playback technology that
// works, in the order WHEP (WebRTC), LL-HLS (hls.js, or the browser's own
// HLS), HTTP-FLV (mpegts.js), or only the one forced. When playback stops
// (the publisher unpublished, the connection failed, the stream was not
// there yet) it tries again with backoff, from the top of the order, so a
// republish plays again by itself. Events: Red5's SubscriberEventTypes
// (Subscribe.Start, Subscribe.Fail, Subscribe.Stop, Subscribe.Play.Unpublish,
// Subscribe.Reconnect) and the NetStream.Play.* statuses (Start,
// StreamNotFound, UnpublishNotify, Failed).

import { Emitter } from './emitter.js';
import { Reconnector } from './backoff.js';
import { flvUrl, hlsUrl, whepUrl } from './url.js';
import { exchange, release, rtpStats } from './whip.js';
import { RpcClient, RpcEvents } from './rpc.js';
import { channelOpen, dataChannelTransport } from './sharedobject.js';

export const SubscriberEvents = Object.freeze({
  SUBSCRIBE_START: 'Subscribe.Start',
  SUBSCRIBE_FAIL: 'Subscribe.Fail',
  SUBSCRIBE_STOP: 'Subscribe.Stop',
  UNPUBLISH: 'Subscribe.Play.Unpublish',
  RECONNECT: 'Subscribe.Reconnect',
  DATA_CHANNEL_MESSAGE: 'WebRTC.DataChannel.Message',
  HOST_ENDPOINT_CHANGED: 'WebRTC.Endpoint.Changed',
  PLAY_START: 'NetStream.Play.Start',
  STREAM_NOT_FOUND: 'NetStream.Play.StreamNotFound',
  UNPUBLISH_NOTIFY: 'NetStream.Play.UnpublishNotify',
  PLAY_FAILED: 'NetStream.Play.Failed',
  SEND_INVOKE: 'Subscribe.Send.Invoke',
});

export const TECHS = ['whep', 'hls', 'flv'];

/**
 * The playback order: `force` alone when set; else `order` (default
 * whep, hls, flv) without what the browser cannot do. caps: {webrtc, mse,
 * nativeHls}.
 */
export function playbackOrder({ order, force } = {}, caps = {}) {
  if (force) {
    if (!TECHS.includes(force)) throw new Error(`unknown playback '${force}' (whep, hls, flv)`);
    return [force];
  }
  const list = (order || TECHS).filter((t) => TECHS.includes(t));
  return list.filter((t) => (t === 'whep' ? caps.webrtc : t === 'hls' ? caps.mse || caps.nativeHls : caps.mse));
}

/** What this browser can play. */
export function browserCaps(video) {
  const g = globalThis;
  return {
    webrtc: typeof g.RTCPeerConnection === 'function',
    mse: !!(g.MediaSource || g.ManagedMediaSource),
    nativeHls: !!(video && video.canPlayType && video.canPlayType('application/vnd.apple.mpegurl')),
  };
}

/** Loads a classic script once (hls.js, mpegts.js from the web root: no CDN). */
const loading = new Map();
export function loadScript(src) {
  if (!loading.has(src)) {
    loading.set(src, new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => { loading.delete(src); reject(new Error(`cannot load ${src} (run make build: scripts/web-players.sh puts the players in the web root)`)); };
      document.head.appendChild(s);
    }));
  }
  return loading.get(src);
}

/**
 * Options: host, port, protocol, app, streamName, connectionParams,
 *   element     the <video> (or its id)
 *   order       ['whep', 'hls', 'flv'] subset, in order
 *   force       'whep' | 'hls' | 'flv': only that one
 *   dataChannel default true (WHEP)
 *   hlsLib, flvLib  script URLs (default /test/lib/hls.min.js, /test/lib/mpegts.js)
 *   lowLatency  hls.js lowLatencyMode (default true)
 *   stallMs     no new decoded frame / time update for this long = playback lost (default 6000)
 *   reconnect   BackoffOptions (default enabled)
 *   techs       {name: async (subscriber) => handle}: replaces the built-in players (tests)
 *   caps        replaces browserCaps() (tests)
 *   callTimeout ms a callServer() waits for its answer (default 15000)
 */
export class Subscriber extends Emitter {
  constructor(options = {}) {
    super();
    if (!options.streamName) throw new Error('streamName is required');
    this.options = Object.assign({ app: 'live', dataChannel: true, lowLatency: true, stallMs: 6000,
      hlsLib: '/test/lib/hls.min.js', flvLib: '/test/lib/mpegts.js' }, options);
    this.reconnector = new Reconnector(options.reconnect);
    this.techs = Object.assign({ whep: playWhep, hls: playHls, flv: playFlv }, options.techs || {});
    this.handle = null;
    this.tech = null;
    this.state = 'idle'; // idle | connecting | playing | reconnecting | stopped
    this.tried = [];
    /** Calls both ways over the WHEP data channel (rpc.js); re-attached at each play. */
    this.rpc = new RpcClient(null, { timeout: options.callTimeout || 15000 });
    this.rpc.on(RpcEvents.INVOKE, (e) => this.emit(SubscriberEvents.SEND_INVOKE, e.data));
  }

  get video() {
    const e = this.options.element;
    return typeof e === 'string' ? document.getElementById(e) : e;
  }

  /** The order this subscriber tries. */
  order() {
    return playbackOrder(this.options, this.options.caps || browserCaps(this.video));
  }

  /**
   * Plays with the first technology that works. Resolves with its name;
   * rejects when none did (a retry is then scheduled unless reconnect is off).
   */
  async subscribe() {
    if (this.state === 'playing' || this.state === 'connecting') throw new Error('already subscribed');
    this.state = 'connecting';
    this.tried = [];
    const order = this.order();
    if (!order.length) {
      this.state = 'idle';
      const e = new Error('this browser can play none of ' + (this.options.force || (this.options.order || TECHS).join(', ')));
      this.emit(SubscriberEvents.SUBSCRIBE_FAIL, { message: e.message });
      throw e;
    }
    let notFound = false;
    let last = null;
    for (const name of order) {
      if (this.state !== 'connecting') return null;
      try {
        const handle = await this.techs[name](this);
        if (this.state !== 'connecting') { handle.stop(); return null; }
        this.handle = handle;
        this.tech = name;
        this.state = 'playing';
        this.tried.push({ tech: name, ok: true });
        this.reconnector.reset();
        this.emit(SubscriberEvents.SUBSCRIBE_START, { tech: name });
        this.emit(SubscriberEvents.PLAY_START, { tech: name });
        return name;
      } catch (e) {
        last = e;
        if (e.status === 404) notFound = true;
        this.tried.push({ tech: name, ok: false, status: e.status, message: e.message });
        this.emit(SubscriberEvents.SUBSCRIBE_FAIL, { tech: name, status: e.status, message: e.message });
      }
    }
    if (notFound) this.emit(SubscriberEvents.STREAM_NOT_FOUND, { streamName: this.options.streamName });
    else this.emit(SubscriberEvents.PLAY_FAILED, { message: last && last.message });
    this._retry();
    throw last;
  }

  /** Called by a playback technology when its playback ended by itself. */
  lost(reason) {
    if (this.state !== 'playing') return;
    this._stopHandle();
    this.emit(SubscriberEvents.UNPUBLISH, { reason });
    this.emit(SubscriberEvents.UNPUBLISH_NOTIFY, { reason });
    this._retry();
  }

  _retry() {
    this.state = 'reconnecting';
    const delay = this.reconnector.schedule(() => {
      if (this.state !== 'reconnecting') return;
      this.state = 'idle';
      this.subscribe().catch(() => { /* scheduled again */ });
    });
    if (delay < 0) this.state = 'idle';
    else this.emit(SubscriberEvents.RECONNECT, { delay, attempt: this.reconnector.attempt });
  }

  _stopHandle() {
    this.rpc.detach();
    const h = this.handle;
    this.handle = null;
    this.tech = null;
    if (h) { try { h.stop(); } catch { /* gone */ } }
  }

  /** Stops playing (and retrying). */
  async unsubscribe() {
    this.state = 'stopped';
    this.reconnector.cancel();
    const h = this.handle;
    this._stopHandle();
    if (h && h.release) await h.release();
    this.emit(SubscriberEvents.SUBSCRIBE_STOP);
  }

  /** Sends on the WHEP data channel; false when there is none open. */
  send(message) {
    const dc = this.handle && this.handle.dc;
    if (!dc || dc.readyState !== 'open') return false;
    dc.send(typeof message === 'string' ? message : JSON.stringify(message));
    return true;
  }

  /**
   * Red5's callServer(methodName, args) over the WHEP data channel (HLS and
   * HTTP-FLV playback have none: rejected). Resolves with the result;
   * rejects with an RpcError or when there is no channel.
   */
  async callServer(method, args = [], opts = {}) {
    await channelOpen(this.handle && this.handle.dc, opts.timeout || this.rpc.options.timeout);
    return this.rpc.call(method, args, opts);
  }

  /**
   * Registers fn(data, methodName) for calls of method: the server's
   * (POST .../clients/{id}/invoke) and the publisher's send(method, data).
   * Returns the unregister function.
   */
  registerHandler(method, fn) { return this.rpc.register(method, fn); }

  unregisterHandler(method) { this.rpc.unregister(method); }

  /** {tech, state, currentTime, framesDecoded, ...} */
  async getStats() {
    const v = this.video;
    const out = { tech: this.tech, state: this.state, tried: this.tried.slice(),
      currentTime: v ? v.currentTime : null, width: v ? v.videoWidth : null };
    if (this.handle && this.handle.stats) Object.assign(out, await this.handle.stats());
    else if (v && v.getVideoPlaybackQuality) out.framesDecoded = v.getVideoPlaybackQuality().totalVideoFrames;
    return out;
  }
}

/* A watchdog shared by the players: playback that makes no progress for
 * stallMs is lost (an unpublished stream stops sending; WHEP's connection
 * may stay up, HLS's playlist simply stops growing). */
function watchdog(sub, progress) {
  let last = -1;
  let since = Date.now();
  const t = setInterval(async () => {
    let p;
    try { p = await progress(); } catch { p = last; }
    if (p !== last) { last = p; since = Date.now(); return; }
    if (Date.now() - since > sub.options.stallMs) { clearInterval(t); sub.lost('stalled'); }
  }, 500);
  return () => clearInterval(t);
}

async function playWhep(sub) {
  const o = sub.options;
  const video = sub.video;
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers: o.iceServers || [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const dc = o.dataChannel ? pc.createDataChannel('red5pro') : null;
  if (dc) dc.onmessage = (e) => sub.emit(SubscriberEvents.DATA_CHANNEL_MESSAGE, e.data);
  if (dc) sub.rpc.attach(dataChannelTransport(dc));
  const ms = new MediaStream();
  pc.ontrack = (e) => { ms.addTrack(e.track); if (video && video.srcObject !== ms) video.srcObject = ms; };
  let resource;
  try {
    resource = await exchange(pc, whepUrl(o), {
      fetchFn: (...a) => fetch(...a), bearer: o.bearer,
      onSessionHost: (endpoint) => sub.emit(SubscriberEvents.HOST_ENDPOINT_CHANGED, { endpoint }),
    });
  } catch (e) {
    pc.close();
    throw e;
  }
  if (video) video.play().catch(() => {});
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') sub.lost(pc.connectionState);
  };
  const stats = async () => {
    const s = await rtpStats(pc, 'inbound-rtp');
    return { video: s.video, audio: s.audio, rtt: s.rtt, framesDecoded: s.video ? s.video.framesDecoded : 0 };
  };
  const stopDog = watchdog(sub, async () => (await stats()).framesDecoded);
  return {
    pc, dc, resource, stats,
    stop() {
      stopDog();
      pc.onconnectionstatechange = null;
      if (video) video.srcObject = null;
      // DELETE before the close (closing first ends the session, and the DELETE answers 404).
      return release(resource).finally(() => { try { pc.close(); } catch { /* closed */ } });
    },
  };
}

/* Refuses before loading a player when the URL answers an error (404: not
 * live, 401: refused), so the next technology is tried at once. */
async function probe(url) {
  const r = await fetch(url, { method: 'GET' });
  if (r.body && r.body.cancel) r.body.cancel().catch(() => {}); else await r.text().catch(() => {});
  if (r.status !== 200) {
    const e = new Error(`HTTP ${r.status} for ${url}`);
    e.status = r.status;
    throw e;
  }
}

function firstFrame(video, ms, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { cleanup(); reject(new Error(`${what}: no picture within ${ms} ms`)); }, ms);
    const ok = () => { if (video.currentTime > 0 || video.readyState >= 2) { cleanup(); resolve(); } };
    const bad = () => { cleanup(); reject(new Error(`${what}: video error ${video.error ? video.error.code : ''}`)); };
    function cleanup() { clearTimeout(t); video.removeEventListener('timeupdate', ok); video.removeEventListener('error', bad); }
    video.addEventListener('timeupdate', ok);
    video.addEventListener('error', bad);
  });
}

async function playHls(sub) {
  const o = sub.options;
  const video = sub.video;
  const url = hlsUrl(o);
  await probe(url);
  let hls = null;
  const caps = o.caps || browserCaps(video);
  if (caps.mse) {
    if (!globalThis.Hls) await loadScript(o.hlsLib);
    const Hls = globalThis.Hls;
    hls = new Hls({ lowLatencyMode: !!o.lowLatency, liveSyncDurationCount: 2, maxLiveSyncPlaybackRate: 1.5 });
    hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) sub.lost('hls ' + d.details); });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url;
  }
  video.play().catch(() => {});
  try {
    await firstFrame(video, 20000, 'HLS');
  } catch (e) {
    if (hls) hls.destroy();
    throw e;
  }
  const stopDog = watchdog(sub, () => video.currentTime);
  return {
    hls,
    stop() { stopDog(); if (hls) hls.destroy(); else { video.removeAttribute('src'); video.load(); } },
  };
}

async function playFlv(sub) {
  const o = sub.options;
  const video = sub.video;
  const url = flvUrl(o);
  await probe(url);
  if (!globalThis.mpegts) await loadScript(o.flvLib);
  const mpegts = globalThis.mpegts;
  const p = mpegts.createPlayer({ type: 'flv', isLive: true, url }, { enableStashBuffer: false, liveBufferLatencyChasing: true });
  p.on(mpegts.Events.ERROR, (type, detail) => sub.lost(`flv ${type} ${detail}`));
  p.attachMediaElement(video);
  p.load();
  const started = p.play();
  if (started && started.catch) started.catch(() => {});
  try {
    await firstFrame(video, 20000, 'HTTP-FLV');
  } catch (e) {
    p.destroy();
    throw e;
  }
  const stopDog = watchdog(sub, () => video.currentTime);
  return {
    mpegts: p,
    stop() { stopDog(); p.pause(); p.unload(); p.detachMediaElement(); p.destroy(); },
  };
}
