// sluice browser SDK (ES module, plain JS with JSDoc; types in index.d.ts).
// Red5 Pro's HTML5 SDK concepts on sluice: WHIP Publisher, WHEP Subscriber
// with LL-HLS and HTTP-FLV fallbacks, shared objects, the event stream and
// the Server API. See clients/web/README.md and docs/sdk.md.

export { Emitter } from './emitter.js';
export { backoffDelay, Reconnector } from './backoff.js';
export * as urls from './url.js';
export { HttpError } from './whip.js';
export { Publisher, PublisherEvents } from './publisher.js';
export { Subscriber, SubscriberEvents, playbackOrder, browserCaps } from './subscriber.js';
export { SharedObject, SharedObjectSocket, SharedObjectEvents, dataChannelTransport, channelOpen } from './sharedobject.js';
export { RpcClient, RpcError, RpcEvents, sendMessage } from './rpc.js';
export { listRecordings, findRecording, recordingKind, playRecording } from './vod.js';
export { EventsClient } from './events.js';
export { ApiClient, ApiError } from './api.js';
export const VERSION = '0.1.0';
