// Recordings in the browser: Red5's list of an app's recordings
// (GET /{app}/mediafiles, docs/recording.md) and playback of one over
// plain HTTP from /{app}/streams/{name}: an MP4 recording (fragmented MP4,
// H.264 + AAC) straight in the <video> element, an FLV recording through
// mpegts.js (loaded from the web root, as the Subscriber's HTTP-FLV), both
// with byte ranges so the player can seek. Credentials go as the query, as
// for every stream URL (the app's play admission decides).

import { loadScript } from './subscriber.js';
import { mediaFilesUrl, recordingUrl } from './url.js';
import { HttpError } from './whip.js';

/** [{name, lastModified, length, url}] of the app's recordings (HttpError when refused). */
export async function listRecordings(opts = {}, deps = {}) {
  const f = deps.fetch || ((...a) => globalThis.fetch(...a));
  const url = mediaFilesUrl(opts);
  const r = await f(url);
  if (r.status !== 200) {
    throw new HttpError(r.status, await r.text().catch(() => ''), url);
  }
  const j = await r.json();
  return Array.isArray(j.mediafiles) ? j.mediafiles : [];
}

/**
 * The recording a name means among list: the exact name ('stream1.flv'), or
 * for a name without extension the first of name.flv / name.mp4 there is;
 * null when none.
 */
export function findRecording(list, name) {
  if (!name) return null;
  const names = list.map((m) => m.name);
  if (names.includes(name)) return name;
  if (/\.(flv|mp4)$/i.test(name)) return null;
  for (const ext of ['.flv', '.mp4']) if (names.includes(name + ext)) return name + ext;
  return null;
}

/** 'mp4' | 'flv' from a recording's name. */
export function recordingKind(name) {
  return /\.mp4$/i.test(name) ? 'mp4' : 'flv';
}

/**
 * Plays the recording `name` of opts.app in video (an element). Options:
 * flvLib (default /test/lib/mpegts.js). Resolves once the video has a
 * picture, with {kind, url, stats(), stop()}; rejects when it cannot play.
 */
export async function playRecording(opts, name, video, { flvLib = '/test/lib/mpegts.js', timeoutMs = 20000 } = {}) {
  const url = recordingUrl(opts, name);
  const kind = recordingKind(name);
  let player = null;
  if (kind === 'mp4') {
    video.src = url;
  } else {
    if (!globalThis.mpegts) await loadScript(flvLib);
    const mpegts = globalThis.mpegts;
    player = mpegts.createPlayer({ type: 'flv', isLive: false, url }, { enableStashBuffer: true });
    player.attachMediaElement(video);
    player.load();
  }
  const started = video.play();
  if (started && started.catch) started.catch(() => {});
  const stop = () => {
    if (player) { player.pause(); player.unload(); player.detachMediaElement(); player.destroy(); player = null; }
    else { video.removeAttribute('src'); video.load(); }
  };
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => { done(); reject(new Error(`${name}: no picture within ${timeoutMs} ms`)); }, timeoutMs);
    const ok = () => { if (video.readyState >= 2) { done(); resolve(); } };
    const bad = () => { done(); reject(new Error(`${name}: video error ${video.error ? video.error.code : ''}`)); };
    function done() { clearTimeout(t); video.removeEventListener('loadeddata', ok); video.removeEventListener('timeupdate', ok); video.removeEventListener('error', bad); }
    video.addEventListener('loadeddata', ok);
    video.addEventListener('timeupdate', ok);
    video.addEventListener('error', bad);
    ok();
  }).catch((e) => { stop(); throw e; });
  return {
    kind, url, player,
    stats: () => ({ currentTime: video.currentTime, duration: video.duration, width: video.videoWidth,
      framesDecoded: video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : null }),
    stop,
  };
}
