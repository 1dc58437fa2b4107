// Recordings (src/vod.js): the list from /{app}/mediafiles, refusals as
// HttpError, and which file a testbed name means.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findRecording, listRecordings, recordingKind } from '../src/vod.js';

test('listRecordings: GET /{app}/mediafiles with the credentials; a refusal is an HttpError', async () => {
  const asked = [];
  const list = [{ name: 'a.flv', lastModified: 1, length: 10, url: 'a.flv' }];
  const ok = async (u) => { asked.push(u); return { status: 200, json: async () => ({ mediafiles: list }) }; };
  assert.deepEqual(await listRecordings({ host: 'h', app: 'live', connectionParams: { username: 'u', password: 'p' } }, { fetch: ok }), list);
  assert.deepEqual(asked, ['http://h:5080/live/mediafiles?username=u&password=p']);
  const no = async () => ({ status: 401, text: async () => 'Authentication required.' });
  await assert.rejects(listRecordings({ host: 'h' }, { fetch: no }), (e) => e.status === 401 && /Authentication/.test(e.message));
});

test('findRecording: exact name, else .flv then .mp4; recordingKind', () => {
  const l = [{ name: 'x.mp4' }, { name: 'y.flv' }, { name: 'y.mp4' }, { name: 'room1/z.flv' }];
  assert.equal(findRecording(l, 'x'), 'x.mp4');
  assert.equal(findRecording(l, 'y'), 'y.flv');
  assert.equal(findRecording(l, 'y.mp4'), 'y.mp4');
  assert.equal(findRecording(l, 'room1/z'), 'room1/z.flv');
  assert.equal(findRecording(l, 'x.flv'), null);
  assert.equal(findRecording(l, 'none'), null);
  assert.equal(findRecording(l, ''), null);
  assert.equal(recordingKind('a.MP4'), 'mp4');
  assert.equal(recordingKind('a.flv'), 'flv');
});
