// URL building: Red5's paths and query parameters (RED5-COMPAT §3.3, §6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as u from '../src/url.js';

const S = { host: 'media.example.com', port: 5080, protocol: 'http', app: 'live', streamName: 'stream1' };

test('WHIP endpoint with credentials as query parameters', () => {
  assert.equal(u.whipUrl({ ...S, connectionParams: { username: 'alice', password: 'p&w d', token: 't1' } }),
    'http://media.example.com:5080/live/whip/endpoint/stream1?username=alice&password=p%26w+d&token=t1');
});

test('WHIP record mode and empty credentials left out', () => {
  assert.equal(u.whipUrl({ ...S, connectionParams: { username: '', password: undefined } }, { record: 'append' }),
    'http://media.example.com:5080/live/whip/endpoint/stream1?record=append');
});

test('WHEP carries a requestId, fresh each time unless given', () => {
  const a = u.whepUrl(S);
  const b = u.whepUrl(S);
  assert.match(a, /^http:\/\/media\.example\.com:5080\/live\/whep\/endpoint\/stream1\?requestId=[0-9a-f]{32}$/);
  assert.notEqual(a, b);
  assert.equal(u.whepUrl(S, { requestId: 'r1' }), 'http://media.example.com:5080/live/whep/endpoint/stream1?requestId=r1');
});

test("Red5's endpoint option (SM 2.0 proxy) replaces the path; connectionParams become its query", () => {
  const sm = 'https://sm.example.com/as/v1/proxy/whip/live/stream1';
  assert.equal(u.whipUrl({ ...S, endpoint: sm, connectionParams: { nodeGroup: 'ng1' } }), sm + '?nodeGroup=ng1');
  assert.equal(u.whipUrl({ ...S, endpoint: sm }), sm);
  assert.equal(u.whepUrl({ ...S, endpoint: sm.replace('whip', 'whep') + '?host=n1', connectionParams: { nodeGroup: 'ng1' } },
    { requestId: 'r1' }), 'https://sm.example.com/as/v1/proxy/whep/live/stream1?host=n1&nodeGroup=ng1&requestId=r1');
});

test('rooms nest under the app; names are encoded', () => {
  assert.equal(u.hlsUrl({ ...S, app: '/live/room1/', streamName: 'a b' }), 'http://media.example.com:5080/live/room1/a%20b.m3u8');
  assert.equal(u.flvUrl({ ...S, connectionParams: { token: 'x' } }), 'http://media.example.com:5080/live/stream1.flv?token=x');
  assert.throws(() => u.whipUrl({ ...S, streamName: '' }), /streamName/);
  assert.throws(() => u.appPath('/'), /empty/);
});

test('https on 443 and wss sockets drop the default port', () => {
  assert.equal(u.origin({ host: 'h', protocol: 'https', port: 443 }), 'https://h');
  assert.equal(u.origin({ host: 'h', protocol: 'wss' }), 'https://h');
  assert.equal(u.origin({ host: 'h' }), 'http://h:5080');
  assert.equal(u.origin({ host: '::1', port: 5080 }), 'http://[::1]:5080');
  assert.equal(u.socketUrl({ ...S, connectionParams: { username: 'u' } }, 'id1'), 'ws://media.example.com:5080/live/?id=id1&username=u');
});

test('events and API URLs carry the access token and filters', () => {
  assert.equal(u.eventsUrl({ host: 'h', accessToken: 'k' }, { app: 'live', type: ['publish', 'unpublish'] }),
    'ws://h:5080/api/v1/events?app=live&type=publish%2Cunpublish&accessToken=k');
  assert.equal(u.apiUrl({ host: 'h', protocol: 'https', port: 5443 }, '/applications'), 'https://h:5443/api/v1/applications');
});

test('recordings: the list and a file, credentials as the query, rooms as folders', async () => {
  const { mediaFilesUrl, recordingUrl } = await import('../src/url.js');
  const o = { host: 'h', app: 'live', connectionParams: { token: 't k' } };
  assert.equal(mediaFilesUrl(o), 'http://h:5080/live/mediafiles?token=t+k');
  assert.equal(recordingUrl(o, 'stream1.flv'), 'http://h:5080/live/streams/stream1.flv?token=t+k');
  assert.equal(recordingUrl({ host: 'h', app: 'live/room1' }, 'sub/a b.mp4'), 'http://h:5080/live/room1/streams/sub/a%20b.mp4');
  assert.throws(() => recordingUrl(o, ''), /name/);
});
