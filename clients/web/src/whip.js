// WHIP/WHEP exchange (RFC 9725, docs/webrtc.md): POST the SDP offer, take
// the 201's answer and Location, DELETE the Location to end. Errors carry
// the HTTP status so callers map them to Red5's events (404 = stream not
// found, 401 = refused, 409 = already published).

export class HttpError extends Error {
  constructor(status, body, url) {
    super(`HTTP ${status}${body ? ': ' + String(body).trim() : ''}`);
    this.status = status;
    this.body = body;
    this.url = url;
  }
}

/**
 * Negotiates pc against url. Returns the resource URL (absolute).
 * fetchFn is fetch (injectable); bearer an optional Authorization token;
 * onSessionHost(host) is called with the answer's Session-Host header (the
 * node a stream manager proxy chose), when there is one.
 */
export async function exchange(pc, url, { fetchFn = globalThis.fetch, bearer, onSessionHost } = {}) {
  await pc.setLocalDescription(await pc.createOffer());
  await waitGathering(pc, 1500);
  const headers = { 'Content-Type': 'application/sdp' };
  if (bearer) headers.Authorization = 'Bearer ' + bearer;
  const r = await fetchFn(url, { method: 'POST', body: pc.localDescription.sdp, headers });
  const body = await r.text();
  if (r.status !== 201) throw new HttpError(r.status, body, url);
  const loc = r.headers.get('Location');
  // Red5's stream manager proxy names the node that serves the session
  // (its SDK's WebRTC.Endpoint.Changed).
  const host = r.headers.get('Session-Host');
  if (host && onSessionHost) onSessionHost(host);
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  return loc ? new URL(loc, url).href : null;
}

/** Ends a WHIP/WHEP resource; never throws, and gives up after timeoutMs (a server that is gone). */
export async function release(resource, { fetchFn = globalThis.fetch, timeoutMs = 3000 } = {}) {
  if (!resource) return;
  const init = { method: 'DELETE' };
  if (typeof AbortSignal !== 'undefined' && AbortSignal.timeout) init.signal = AbortSignal.timeout(timeoutMs);
  try { await fetchFn(resource, init); } catch { /* the server may be gone */ }
}

/** Waits until ICE gathering completes or ms pass (sluice is ICE-lite: host candidates suffice). */
function waitGathering(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); pc.removeEventListener('icegatheringstatechange', check); resolve(); }
    function check() { if (pc.iceGatheringState === 'complete') done(); }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** Orders the codecs of a transceiver so `name` (e.g. 'H264', 'VP8') comes first. */
export function preferCodec(transceiver, kind, name) {
  if (!name || !transceiver.setCodecPreferences || typeof RTCRtpSender === 'undefined') return false;
  const caps = RTCRtpSender.getCapabilities(kind);
  if (!caps) return false;
  const want = `${kind}/${name}`.toLowerCase();
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === want);
  if (!first.length) return false;
  transceiver.setCodecPreferences([...first, ...caps.codecs.filter((c) => c.mimeType.toLowerCase() !== want)]);
  return true;
}

/** A summary of pc.getStats() for one direction ('outbound-rtp' or 'inbound-rtp'). */
export async function rtpStats(pc, type) {
  const out = { video: null, audio: null, rtt: null };
  if (!pc) return out;
  const rep = await pc.getStats();
  rep.forEach((s) => {
    if (s.type === type && (s.kind === 'video' || s.kind === 'audio')) out[s.kind] = Object.assign({}, s);
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) out.rtt = s.currentRoundTripTime;
  });
  return out;
}
