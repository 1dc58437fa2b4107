// Types of the sluice browser SDK (hand-written; the code is plain JS in src/).

export interface ConnectionParams { username?: string; password?: string; token?: string; [key: string]: string | undefined; }

export interface ServerOptions {
  /** Host name; default the page's. */
  host?: string;
  /** Port; default the page's, else 5080 (443 for https). */
  port?: number | string;
  /** 'http' | 'https' (ws/wss accepted); default the page's. */
  protocol?: string;
  /** Application, rooms included ('live/room1'); default 'live'. */
  app?: string;
  /** Red5's connectionParams: sent as query parameters. */
  connectionParams?: ConnectionParams;
  /**
   * Red5's `endpoint` (Stream Manager 2.0): the full WHIP/WHEP URL to use instead of
   * /{app}/whip|whep/endpoint/{stream}, e.g. 'https://sm.example.com/as/v1/proxy/whip/live/stream1';
   * connectionParams (nodeGroup, credentials) are appended as its query.
   */
  endpoint?: string;
}

export interface BackoffOptions {
  enabled?: boolean; initial?: number; max?: number; factor?: number; jitter?: number; maxAttempts?: number;
  setTimeout?: (fn: () => void, ms: number) => unknown; clearTimeout?: (t: unknown) => void;
}

export interface SluiceEvent<T = any> { type: string; data: T; }
export type Listener<T = any> = (ev: SluiceEvent<T>) => void;

export class Emitter {
  on(type: string, fn: Listener): this;
  off(type: string, fn: Listener): this;
  once(type: string): Promise<SluiceEvent>;
  emit(type: string, data?: any, extra?: object): SluiceEvent;
}

export function backoffDelay(attempt: number, options?: BackoffOptions): number;
export class Reconnector {
  constructor(options?: BackoffOptions);
  attempt: number;
  readonly enabled: boolean;
  schedule(fn: () => void): number;
  reset(): void;
  cancel(): void;
}

export namespace urls {
  function origin(o?: ServerOptions): string;
  function appPath(app?: string): string;
  function query(connectionParams?: object, extra?: object): string;
  function whipUrl(o: ServerOptions & { streamName: string }, extra?: { record?: 1 | 'append'; [k: string]: any }): string;
  function whepUrl(o: ServerOptions & { streamName: string }, extra?: { requestId?: string; [k: string]: any }): string;
  function hlsUrl(o: ServerOptions & { streamName: string }): string;
  function flvUrl(o: ServerOptions & { streamName: string }): string;
  /** /{app}/mediafiles: Red5's list of the app's recordings. */
  function mediaFilesUrl(o?: ServerOptions): string;
  /** /{app}/streams/{name}: a recording ('stream1.flv', 'room1/take.mp4'). */
  function recordingUrl(o: ServerOptions, name: string): string;
  function wsOrigin(o?: ServerOptions): string;
  function socketUrl(o: ServerOptions, id?: string): string;
  function eventsUrl(o?: ServerOptions & { accessToken?: string }, filter?: { app?: string; stream?: string; type?: string | string[] }): string;
  function apiUrl(o: ServerOptions & { accessToken?: string }, path: string, params?: object): string;
  function randomId(): string;
}

export class HttpError extends Error { status: number; body: string; url: string; }

export const PublisherEvents: {
  CONNECT_SUCCESS: 'Connect.Success'; CONNECT_FAILURE: 'Connect.Failure'; PUBLISH_START: 'Publish.Start';
  PUBLISH_FAIL: 'Publish.Fail'; UNPUBLISH_SUCCESS: 'Publish.Unpublish.Success'; RECONNECT: 'Publish.Reconnect';
  CONNECTION_CLOSED: 'WebRTC.PeerConnection.Closed'; DATA_CHANNEL_MESSAGE: 'WebRTC.DataChannel.Message';
  /** A stream manager proxy named the node serving the session: data {endpoint} (its Session-Host). */
  HOST_ENDPOINT_CHANGED: 'WebRTC.Endpoint.Changed';
  STATISTICS: 'Publish.Statistics'; SEND_INVOKE: 'Publish.Send.Invoke';
};

/** What a server -> client call (or a publisher's send) carries: Red5's Send.Invoke event data. */
export interface SendInvoke<T = any> { methodName: string; data: T; }
export type InvokeHandler<T = any> = (data: T, methodName: string) => void;

export interface CallOptions { /** ms to wait for the answer (default: the owner's callTimeout, 15000). */ timeout?: number; }

export type RpcErrorCode = 'error' | 'timeout' | 'closed' | 'busy' | 'invalid';
export class RpcError extends Error { code: RpcErrorCode; method: string; }

export const RpcEvents: { INVOKE: 'Send.Invoke' };

/** Calls both ways over a Transport (Red5's callAdapter and send messages, docs/integration/rpc.md). */
export class RpcClient extends Emitter {
  constructor(transport?: Transport | null, options?: { timeout?: number; maxPending?: number; maxMessageBytes?: number;
    setTimeout?: (fn: () => void, ms: number) => unknown; clearTimeout?: (t: unknown) => void });
  transport: Transport | null;
  pending: Map<string, unknown>;
  attach(transport: Transport): void;
  detach(): void;
  /** args: the array of arguments (any other value is the one argument). */
  call<T = any>(method: string, args?: any, options?: CallOptions): Promise<T>;
  register<T = any>(method: string, fn: InvokeHandler<T>): () => void;
  unregister(method: string): void;
  receive(text: string | null): boolean;
}

/** {"send":{"method","data"}} as text. */
export function sendMessage(method: string, data?: any): string;

export interface PublisherOptions extends ServerOptions {
  streamName: string;
  /** Authorization: Bearer token (a JWT), instead of connectionParams.token. */
  bearer?: string;
  mediaConstraints?: MediaStreamConstraints;
  /** Publish the screen (getDisplayMedia). */
  screen?: boolean;
  screenAudio?: boolean;
  video?: { width?: number; height?: number; frameRate?: number };
  /** Encoder maximum, kbps. */
  bandwidth?: { video?: number; audio?: number };
  /** Preferred video codec: 'H264' | 'VP8'. */
  codec?: string;
  /** A 'red5pro' data channel (default true). */
  dataChannel?: boolean;
  record?: boolean | 'append';
  /** ms a callServer() waits for its answer (default 15000). */
  callTimeout?: number;
  iceServers?: RTCIceServer[];
  reconnect?: BackoffOptions;
  deps?: { RTCPeerConnection?: any; fetch?: typeof fetch; mediaDevices?: any };
}

export interface PublisherStats {
  state: string; resource: string | null; video: any; audio: any; rtt: number | null;
  bitrateKbps: number | null; fps: number | null; framesEncoded: number;
}

export class Publisher extends Emitter {
  constructor(options: PublisherOptions);
  options: PublisherOptions;
  pc: RTCPeerConnection | null;
  dc: RTCDataChannel | null;
  stream: MediaStream | null;
  resource: string | null;
  state: 'idle' | 'connecting' | 'publishing' | 'reconnecting' | 'stopped';
  reconnector: Reconnector;
  getMedia(): Promise<MediaStream>;
  publish(stream?: MediaStream): Promise<void>;
  applyBandwidth(bandwidth?: { video?: number; audio?: number }): Promise<void>;
  muteAudio(): void; unmuteAudio(): void; muteVideo(): void; unmuteVideo(): void;
  rpc: RpcClient;
  /** A string as it is, an object as JSON; false when the channel is not open. */
  send(message: string | object): boolean;
  /** Red5's send(methodName, data): {"send":{"method","data"}}, relayed to the subscribers. */
  send(methodName: string, data: any): boolean;
  /** Red5's callServer(methodName, args): resolves with the result, rejects with an RpcError. */
  callServer<T = any>(method: string, args?: any[], options?: CallOptions): Promise<T>;
  registerHandler<T = any>(method: string, fn: InvokeHandler<T>): () => void;
  unregisterHandler(method: string): void;
  getStats(): Promise<PublisherStats>;
  unpublish(): Promise<void>;
}

export type PlaybackTech = 'whep' | 'hls' | 'flv';

export const SubscriberEvents: {
  SUBSCRIBE_START: 'Subscribe.Start'; SUBSCRIBE_FAIL: 'Subscribe.Fail'; SUBSCRIBE_STOP: 'Subscribe.Stop';
  UNPUBLISH: 'Subscribe.Play.Unpublish'; RECONNECT: 'Subscribe.Reconnect'; DATA_CHANNEL_MESSAGE: 'WebRTC.DataChannel.Message';
  PLAY_START: 'NetStream.Play.Start'; STREAM_NOT_FOUND: 'NetStream.Play.StreamNotFound';
  UNPUBLISH_NOTIFY: 'NetStream.Play.UnpublishNotify'; PLAY_FAILED: 'NetStream.Play.Failed';
  SEND_INVOKE: 'Subscribe.Send.Invoke';
  /** A stream manager proxy named the node serving the session: data {endpoint} (its Session-Host). */
  HOST_ENDPOINT_CHANGED: 'WebRTC.Endpoint.Changed';
};

export interface BrowserCaps { webrtc?: boolean; mse?: boolean; nativeHls?: boolean; }
export interface PlaybackHandle { stop(): void; stats?(): Promise<object>; dc?: RTCDataChannel | null; release?(): Promise<void>; }

export interface SubscriberOptions extends ServerOptions {
  streamName: string;
  /** The <video> element or its id. */
  element?: HTMLVideoElement | string;
  order?: PlaybackTech[];
  force?: PlaybackTech;
  bearer?: string;
  dataChannel?: boolean;
  hlsLib?: string;
  flvLib?: string;
  lowLatency?: boolean;
  stallMs?: number;
  iceServers?: RTCIceServer[];
  reconnect?: BackoffOptions;
  techs?: Partial<Record<PlaybackTech, (sub: Subscriber) => Promise<PlaybackHandle>>>;
  caps?: BrowserCaps;
  /** ms a callServer() waits for its answer (default 15000). */
  callTimeout?: number;
}

export function playbackOrder(options: { order?: PlaybackTech[]; force?: PlaybackTech }, caps: BrowserCaps): PlaybackTech[];
export function browserCaps(video?: HTMLVideoElement): BrowserCaps;

export class Subscriber extends Emitter {
  constructor(options: SubscriberOptions);
  options: SubscriberOptions;
  tech: PlaybackTech | null;
  state: 'idle' | 'connecting' | 'playing' | 'reconnecting' | 'stopped';
  tried: { tech: PlaybackTech; ok: boolean; status?: number; message?: string }[];
  reconnector: Reconnector;
  readonly video: HTMLVideoElement | null;
  order(): PlaybackTech[];
  subscribe(): Promise<PlaybackTech | null>;
  lost(reason: string): void;
  rpc: RpcClient;
  send(message: string | object): boolean;
  /** Red5's callServer(methodName, args) over the WHEP data channel (rejected over HLS / HTTP-FLV). */
  callServer<T = any>(method: string, args?: any[], options?: CallOptions): Promise<T>;
  /** Calls of method from the server or the stream's publisher (its send(method, data)). */
  registerHandler<T = any>(method: string, fn: InvokeHandler<T>): () => void;
  unregisterHandler(method: string): void;
  getStats(): Promise<{ tech: PlaybackTech | null; state: string; currentTime: number | null; width: number | null; framesDecoded?: number; [k: string]: any }>;
  unsubscribe(): Promise<void>;
}

export const SharedObjectEvents: {
  CONNECT_SUCCESS: 'Connect.Success'; CONNECT_FAILURE: 'Connect.Failure'; PROPERTY_UPDATE: 'SharedObject.PropertyUpdate';
  PROPERTY_REMOVE: 'SharedObject.PropertyRemove'; METHOD_UPDATE: 'SharedObject.MethodUpdate';
  CONNECTION_CLOSED: 'SharedObject.Connection.Closed'; ERROR: 'SharedObject.Error';
};

export interface Transport { send(text: string): void; onMessage(fn: (text: string | null) => void): () => void; }
export function dataChannelTransport(dc: RTCDataChannel): Transport;
/** Resolves once dc is open; rejects when it closes first, after ms, or when there is none. */
export function channelOpen(dc: RTCDataChannel | null | undefined, ms?: number): Promise<RTCDataChannel>;

export class SharedObjectSocket implements Transport {
  constructor(options?: ServerOptions & { id?: string }, deps?: { WebSocket?: any });
  url: string;
  open(): Promise<this>;
  send(text: string): void;
  onMessage(fn: (text: string | null) => void): () => void;
  close(): void;
}

export class SharedObject extends Emitter {
  constructor(name: string, transport: Transport);
  name: string;
  properties: Record<string, any>;
  version: number;
  persistent: boolean;
  connected: boolean;
  connect(options?: { persistent?: boolean }): void;
  setProperty(key: string, value: any): void;
  deleteProperty(key: string): void;
  getProperty(key: string): any;
  send(method: string, message?: any): void;
  close(): void;
  receive(text: string | null): boolean;
}

/** One recording in /{app}/mediafiles (Red5's live webapp list). */
export interface MediaFile { name: string; lastModified: number; length: number; url: string; }
export interface RecordingPlayback {
  kind: 'flv' | 'mp4';
  url: string;
  /** The mpegts.js player (FLV), null for MP4. */
  player: any;
  stats(): { currentTime: number; duration: number; width: number; framesDecoded: number | null };
  stop(): void;
}
/** The app's recordings; rejects with an HttpError when refused (401/403: the app's play admission). */
export function listRecordings(o?: ServerOptions, deps?: { fetch?: typeof fetch }): Promise<MediaFile[]>;
/** The exact name, else name.flv, else name.mp4 among list; null when none. */
export function findRecording(list: { name: string }[], name: string | null | undefined): string | null;
export function recordingKind(name: string): 'flv' | 'mp4';
/** Plays a recording over HTTP in video (MP4 natively, FLV through mpegts.js); resolves once there is a picture. */
export function playRecording(o: ServerOptions, name: string, video: HTMLVideoElement,
  options?: { flvLib?: string; timeoutMs?: number }): Promise<RecordingPlayback>;

export class EventsClient extends Emitter {
  constructor(options?: ServerOptions & { accessToken?: string; filter?: { app?: string; stream?: string; type?: string | string[] };
    reconnect?: BackoffOptions; deps?: { WebSocket?: any } });
  url: string;
  open(): Promise<this>;
  receive(text: string): void;
  close(): void;
}

export class ApiError extends Error { status: number; body: any; }

export class ApiClient {
  constructor(options?: ServerOptions & { accessToken?: string; deps?: { fetch?: typeof fetch } });
  request<T = any>(method: string, path: string, body?: any, params?: object): Promise<T>;
  server(): Promise<any>;
  statistics(): Promise<any>;
  applications(): Promise<any>;
  application(app: string): Promise<any>;
  streams(app: string): Promise<string[]>;
  stream(app: string, name: string): Promise<any>;
  subscribers(app: string, name: string): Promise<any>;
  unpublish(app: string, name: string): Promise<any>;
  startRecord(app: string, name: string): Promise<any>;
  stopRecord(app: string, name: string): Promise<any>;
  clients(app: string): Promise<any>;
  sharedObjects(app: string): Promise<any>;
  sharedObjectData(app: string, so: string): Promise<any>;
  invoke<T = any>(app: string, method: string, parameters?: any[]): Promise<T>;
}

export const VERSION: string;
