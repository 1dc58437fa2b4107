// Publisher: camera, microphone or screen to sluice over WHIP, with
// mute, bitrate / codec / resolution preferences, a `red5pro` data
// channel, statistics, and reconnect with backoff when the connection
// fails. Events use the names of Red5's HTML5 SDK (PublisherEventTypes):
// Connect.Success, Publish.Start, Publish.Fail, Publish.Unpublish.Success,
// Publish.Reconnect (sluice's: a retry is scheduled), WebRTC.PeerConnection.Closed,
// WebRTC.DataChannel.Message, and NetConnection/NetStream statuses.

import { Emitter } from './emitter.js';
import { Reconnector } from './backoff.js';
import { whipUrl } from './url.js';
import { exchange, release, preferCodec, rtpStats } from './whip.js';
import { RpcClient, RpcEvents, sendMessage } from './rpc.js';
import { channelOpen, dataChannelTransport } from './sharedobject.js';

export const PublisherEvents = Object.freeze({
  CONNECT_SUCCESS: 'Connect.Success',
  CONNECT_FAILURE: 'Connect.Failure',
  PUBLISH_START: 'Publish.Start',
  PUBLISH_FAIL: 'Publish.Fail',
  UNPUBLISH_SUCCESS: 'Publish.Unpublish.Success',
  RECONNECT: 'Publish.Reconnect',
  CONNECTION_CLOSED: 'WebRTC.PeerConnection.Closed',
  DATA_CHANNEL_MESSAGE: 'WebRTC.DataChannel.Message',
  HOST_ENDPOINT_CHANGED: 'WebRTC.Endpoint.Changed',
  STATISTICS: 'Publish.Statistics',
  SEND_INVOKE: 'Publish.Send.Invoke',
});

/**
 * Options (all optional but streamName):
 *   host, port, protocol, app, streamName, connectionParams {username, password, token}
 *   bearer       Authorization: Bearer token (instead of connectionParams.token)
 *   mediaConstraints {audio, video}  getUserMedia constraints (default both true)
 *   screen       true: getDisplayMedia instead of the camera
 *   video        {width, height, frameRate} preferred resolution
 *   bandwidth    {video: kbps, audio: kbps} encoder maximum
 *   codec        'H264' | 'VP8' preferred video codec
 *   dataChannel  default true: a `red5pro` channel
 *   record       true | 'append': ?record=1|append
 *   callTimeout  ms a callServer() waits for its answer (default 15000)
 *   reconnect    BackoffOptions (default enabled)
 *   deps         {RTCPeerConnection, fetch, mediaDevices}: for tests
 */
export class Publisher extends Emitter {
  constructor(options = {}) {
    super();
    if (!options.streamName) throw new Error('streamName is required');
    this.options = Object.assign({ app: 'live', dataChannel: true }, options);
    const deps = options.deps || {};
    this._RTCPeerConnection = deps.RTCPeerConnection || globalThis.RTCPeerConnection;
    this._fetch = deps.fetch || ((...a) => globalThis.fetch(...a));
    this._mediaDevices = deps.mediaDevices || (globalThis.navigator && navigator.mediaDevices);
    this.reconnector = new Reconnector(options.reconnect);
    this.pc = null;
    this.dc = null;
    this.stream = null;
    this.resource = null;
    this.state = 'idle'; // idle | connecting | publishing | reconnecting | stopped
    this._ownStream = false;
    /** Calls both ways over the data channel (rpc.js). */
    this.rpc = new RpcClient(null, { timeout: options.callTimeout || 15000 });
    this.rpc.on(RpcEvents.INVOKE, (e) => this.emit(PublisherEvents.SEND_INVOKE, e.data));
  }

  /** The camera/microphone or the screen, as the options ask. */
  async getMedia() {
    const o = this.options;
    if (o.screen) {
      const s = await this._mediaDevices.getDisplayMedia({ video: o.video || true, audio: !!o.screenAudio });
      if (o.mediaConstraints && o.mediaConstraints.audio) {
        const mic = await this._mediaDevices.getUserMedia({ audio: o.mediaConstraints.audio });
        for (const t of mic.getAudioTracks()) s.addTrack(t);
      }
      return s;
    }
    const mc = o.mediaConstraints || { audio: true, video: true };
    let video = mc.video;
    if (video && o.video) {
      video = Object.assign(typeof video === 'object' ? { ...video } : {}, {
        width: o.video.width ? { ideal: o.video.width } : undefined,
        height: o.video.height ? { ideal: o.video.height } : undefined,
        frameRate: o.video.frameRate ? { ideal: o.video.frameRate } : undefined,
      });
    }
    return this._mediaDevices.getUserMedia({ audio: mc.audio, video });
  }

  /** Starts publishing stream (default: getMedia()). Resolves when the server took the offer. */
  async publish(stream) {
    if (this.state === 'publishing' || this.state === 'connecting') throw new Error('already publishing');
    if (stream) { this.stream = stream; this._ownStream = false; }
    else if (!this.stream) { this.stream = await this.getMedia(); this._ownStream = true; }
    this.state = 'connecting';
    try {
      await this._connect();
    } catch (e) {
      this._teardown();
      this.state = 'idle';
      this.emit(PublisherEvents.PUBLISH_FAIL, { status: e.status, message: e.message });
      throw e;
    }
  }

  async _connect() {
    const o = this.options;
    const pc = new this._RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers: o.iceServers || [] });
    this.pc = pc;
    for (const track of this.stream.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [this.stream] });
      if (track.kind === 'video' && o.codec) preferCodec(tr, 'video', o.codec);
    }
    if (o.dataChannel) {
      this.dc = pc.createDataChannel('red5pro');
      this.dc.onmessage = (e) => this.emit(PublisherEvents.DATA_CHANNEL_MESSAGE, e.data);
      this.rpc.attach(dataChannelTransport(this.dc));
    }
    pc.onconnectionstatechange = () => this._onState(pc);
    const extra = {};
    if (o.record) extra.record = o.record === 'append' ? 'append' : 1;
    this.resource = await exchange(pc, whipUrl(o, extra), {
      fetchFn: this._fetch, bearer: o.bearer,
      onSessionHost: (endpoint) => this.emit(PublisherEvents.HOST_ENDPOINT_CHANGED, { endpoint }),
    });
    await this.applyBandwidth();
    this.state = 'publishing';
    this.reconnector.reset();
    this.emit(PublisherEvents.CONNECT_SUCCESS);
    this.emit(PublisherEvents.PUBLISH_START, { streamName: o.streamName, resource: this.resource });
  }

  _onState(pc) {
    if (pc !== this.pc) return;
    const s = pc.connectionState;
    if (s === 'failed' || s === 'closed') {
      this.emit(PublisherEvents.CONNECTION_CLOSED, { state: s });
      if (this.state === 'publishing') this._reconnect();
    }
  }

  _reconnect() {
    release(this.resource, { fetchFn: this._fetch }); // the server may still hold the stream name
    this._teardown(true);
    this.state = 'reconnecting';
    const delay = this.reconnector.schedule(async () => {
      if (this.state !== 'reconnecting') return;
      try {
        await this._connect();
      } catch (e) {
        this._teardown(true);
        this.emit(PublisherEvents.PUBLISH_FAIL, { status: e.status, message: e.message });
        this._reconnect();
      }
    });
    if (delay < 0) { this.state = 'idle'; this._teardown(); } else this.emit(PublisherEvents.RECONNECT, { delay, attempt: this.reconnector.attempt });
  }

  /** Applies options.bandwidth (kbps) to the senders; may be called again after changing it. */
  async applyBandwidth(bandwidth = this.options.bandwidth) {
    if (!bandwidth || !this.pc) return;
    this.options.bandwidth = bandwidth;
    for (const sender of this.pc.getSenders()) {
      const kbps = sender.track && bandwidth[sender.track.kind];
      if (!kbps || !sender.getParameters) continue;
      const p = sender.getParameters();
      if (!p.encodings || !p.encodings.length) p.encodings = [{}];
      p.encodings[0].maxBitrate = kbps * 1000;
      await sender.setParameters(p);
    }
  }

  /** Mutes / unmutes (the track keeps flowing, blank or silent, as Red5's muteAudio/muteVideo). */
  muteAudio() { this._enable('audio', false); }
  unmuteAudio() { this._enable('audio', true); }
  muteVideo() { this._enable('video', false); }
  unmuteVideo() { this._enable('video', true); }
  _enable(kind, on) {
    if (!this.stream) return;
    for (const t of this.stream.getTracks()) if (t.kind === kind) t.enabled = on;
  }

  /**
   * Sends on the data channel; false when it is not open. Red5's form
   * send(methodName, data) sends {"send":{"method","data"}}, which the
   * server relays to the stream's subscribers (their Subscribe.Send.Invoke)
   * and into the stream as the data message methodName(data) for RTMP
   * players. send(message) alone sends a string as it is, an object as JSON.
   */
  send(message, data) {
    if (!this.dc || this.dc.readyState !== 'open') return false;
    if (arguments.length >= 2 && typeof message === 'string') this.dc.send(sendMessage(message, data));
    else this.dc.send(typeof message === 'string' ? message : JSON.stringify(message));
    return true;
  }

  /**
   * Red5's callServer(methodName, args): calls a method of the app (a
   * handler or the business server, docs/integration/rpc.md) over the data
   * channel, waiting for it to open. Resolves with the result; rejects with
   * an RpcError (its answer was an error, no answer within callTimeout, the
   * channel closed).
   */
  async callServer(method, args = [], opts = {}) {
    await channelOpen(this.dc, opts.timeout || this.rpc.options.timeout);
    return this.rpc.call(method, args, opts);
  }

  /** Registers fn(data, methodName) for server -> client calls of method; returns the unregister function. */
  registerHandler(method, fn) { return this.rpc.register(method, fn); }

  unregisterHandler(method) { this.rpc.unregister(method); }

  /** {state, resource, video, audio, rtt, bitrateKbps, fps} from the peer connection. */
  async getStats() {
    const s = await rtpStats(this.pc, 'outbound-rtp');
    const v = s.video;
    const now = Date.now();
    let bitrateKbps = null;
    if (v && this._last) bitrateKbps = ((v.bytesSent - this._last.bytes) * 8) / Math.max(1, now - this._last.t);
    if (v) this._last = { bytes: v.bytesSent, t: now };
    const out = { state: this.state, resource: this.resource, video: v, audio: s.audio, rtt: s.rtt,
      bitrateKbps, fps: v ? v.framesPerSecond ?? null : null, framesEncoded: v ? v.framesEncoded : 0 };
    this.emit(PublisherEvents.STATISTICS, out);
    return out;
  }

  /** Stops: DELETE the WHIP resource, close, stop the tracks the Publisher opened. */
  async unpublish() {
    const resource = this.resource;
    this.state = 'stopped';
    this.reconnector.cancel();
    // DELETE before the close: closing first ends the session on the server
    // (DTLS close), and the DELETE would then answer 404.
    await release(resource, { fetchFn: this._fetch });
    this._teardown();
    this.emit(PublisherEvents.UNPUBLISH_SUCCESS);
  }

  _teardown(keepStream) {
    if (this.pc) { this.pc.onconnectionstatechange = null; try { this.pc.close(); } catch { /* closed */ } }
    this.rpc.detach();
    this.pc = null;
    this.dc = null;
    this.resource = null;
    if (!keepStream && this.stream && this._ownStream) {
      for (const t of this.stream.getTracks()) t.stop();
      this.stream = null;
    }
  }
}
