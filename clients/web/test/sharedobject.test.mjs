// SharedObject against a fake transport: the JSON messages it sends and how
// it handles the server's (docs/integration/shared-objects.md, JSON wire form).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedObject, SharedObjectSocket } from '../src/sharedobject.js';

function fakeTransport() {
  const t = { sent: [], handlers: new Set() };
  t.send = (text) => t.sent.push(JSON.parse(text));
  t.onMessage = (fn) => { t.handlers.add(fn); return () => t.handlers.delete(fn); };
  t.deliver = (obj) => { for (const h of [...t.handlers]) h(obj === null ? null : JSON.stringify(obj)); };
  return t;
}

test('messages sent: GetRemote+Connect, set, remove, send, close', () => {
  const t = fakeTransport();
  const so = new SharedObject('board', t);
  so.connect();
  so.setProperty('color', 'red');
  so.setProperty('n', null);
  so.deleteProperty('color');
  so.send('chat', { text: 'hi' });
  so.close();
  assert.deepEqual(t.sent, [
    { sharedObjectGetRemote: { name: 'board' } },
    { sharedObjectConnect: { name: 'board' } },
    { sharedObjectSetProperty: { name: 'board', key: 'color', value: 'red' } },
    { sharedObjectSetProperty: { name: 'board', key: 'n', value: null } },
    { sharedObjectSetProperty: { name: 'board', key: 'color' } },
    { sharedObjectSend: { name: 'board', method: 'chat', message: { text: 'hi' } } },
    { sharedObjectClose: { name: 'board' } },
  ]);
  assert.equal(t.handlers.size, 0, 'close stops listening');
  const p = new SharedObject('p', t);
  p.connect({ persistent: true });
  assert.deepEqual(t.sent.at(-1), { sharedObjectConnect: { name: 'p', persistent: true } });
});

test('connect, initial data, changes, removes, clear, sends, statuses', () => {
  const t = fakeTransport();
  const so = new SharedObject('board', t);
  const ev = [];
  so.on('*', (e) => ev.push([e.type, e.data]));
  so.connect();
  t.deliver({ data: { name: 'board', status: 'SharedObject.Status.GetRemote', message: 'Success' } });
  t.deliver({ data: { name: 'board', status: 'SharedObject.Status.Connect', message: 'Success', version: 7, persistent: true } });
  t.deliver({ data: { name: 'board', type: 'sharedobject', version: 7, events: [
    { subtype: 4, attribute: 'color', value: 'red' }, { subtype: 4, attribute: 'size', value: 3 }] } });
  t.deliver({ data: { name: 'other', type: 'sharedobject', version: 1, events: [{ subtype: 4, attribute: 'x', value: 1 }] } });
  so.setProperty('mine', 'v');
  assert.equal(so.getProperty('mine'), undefined, 'not before the server applied it');
  t.deliver({ data: { name: 'board', type: 'sharedobject', version: 8, events: [{ subtype: 5, attribute: 'mine' }] } });
  assert.equal(so.getProperty('mine'), 'v', 'our own set, once applied (no event, as Red5)');
  t.deliver({ data: { name: 'board', type: 'sharedobject', version: 9, events: [{ subtype: 9, attribute: 'color' }] } });
  t.deliver({ data: { name: 'board', type: 'sharedobject', version: 10, events: [{ subtype: 6, method: 'chat', value: [{ text: 'hi' }] }] } });
  t.deliver({ data: { name: 'board', type: 'sharedobject', version: 11, events: [{ subtype: 6, method: 'move', value: [1, 2] }] } });
  t.deliver({ data: { type: 'error', name: 'board', code: 'SharedObject.NotConnected', message: 'connect first' } });
  t.deliver({ data: { name: 'board', type: 'sharedobject', version: 12, events: [{ subtype: 8 }] } });
  assert.equal(so.connected, true);
  assert.equal(so.persistent, true);
  assert.equal(so.version, 12);
  assert.deepEqual(so.properties, {});
  assert.deepEqual(ev, [
    ['Connect.Success', { name: 'board', version: 7 }],
    ['SharedObject.PropertyUpdate', { color: 'red' }],
    ['SharedObject.PropertyUpdate', { size: 3 }],
    ['SharedObject.PropertyRemove', { attribute: 'color' }],
    ['SharedObject.MethodUpdate', { methodName: 'chat', message: { text: 'hi' }, args: [{ text: 'hi' }] }],
    ['SharedObject.MethodUpdate', { methodName: 'move', message: [1, 2], args: [1, 2] }],
    ['SharedObject.Error', { code: 'SharedObject.NotConnected', message: 'connect first' }],
    ['SharedObject.PropertyRemove', { attribute: 'size' }],
    ['SharedObject.PropertyRemove', { attribute: 'mine' }],
  ]);
  t.deliver({ data: { name: 'board', status: 'SharedObject.Status.Disconnect', message: 'Closed' } });
  assert.equal(so.connected, false);
  assert.equal(ev.at(-1)[0], 'SharedObject.Connection.Closed');
});

test('a refused connect, garbage and a closed carrier', () => {
  const t = fakeTransport();
  const so = new SharedObject('b', t);
  const ev = [];
  so.on('*', (e) => ev.push(e.type));
  for (const h of t.handlers) { h('not json'); h('[]'); h('{"data":5}'); h('{"data":{"name":"b","status":"Other"}}'); }
  t.deliver({ data: { name: 'b', status: 'SharedObject.Status.Connect', message: 'Fail', code: 'NetConnection.Connect.Rejected' } });
  assert.deepEqual(ev, ['Connect.Failure']);
  assert.equal(so.connected, false);
  t.deliver({ data: { name: 'b', status: 'SharedObject.Status.Connect', message: 'Success', version: 0 } });
  t.deliver(null);
  assert.deepEqual(ev, ['Connect.Failure', 'Connect.Success', 'SharedObject.Connection.Closed']);
});

test('SharedObjectSocket opens the app socket with the credentials and relays messages', async () => {
  const made = [];
  class FakeWS {
    constructor(url) { this.url = url; this.sent = []; made.push(this); setImmediate(() => this.onopen()); }
    send(t) { this.sent.push(t); }
    close() { this.onclose(); }
  }
  const sock = await new SharedObjectSocket({ host: 'h', app: 'live', id: 'so1', connectionParams: { username: 'u', password: 'p' } },
    { WebSocket: FakeWS }).open();
  assert.equal(made[0].url, 'ws://h:5080/live/?id=so1&username=u&password=p');
  const so = new SharedObject('x', sock);
  so.connect();
  assert.equal(made[0].sent.length, 2);
  made[0].onmessage({ data: JSON.stringify({ data: { name: 'x', status: 'SharedObject.Status.Connect', message: 'Success', version: 3 } }) });
  assert.equal(so.version, 3);
  sock.close();
  assert.equal(so.connected, false);
});

test('over a data channel: the channel closing closes the object (Connection.Closed)', async () => {
  const { dataChannelTransport } = await import('../src/sharedobject.js');
  const dc = new EventTarget();
  dc.readyState = 'open';
  dc.send = () => {};
  const so = new SharedObject('board', dataChannelTransport(dc));
  const events = [];
  so.on('*', (e) => events.push(e.type));
  const msg = new Event('message');
  msg.data = JSON.stringify({ data: { name: 'board', status: 'SharedObject.Status.Connect', message: 'Success', version: 1 } });
  dc.dispatchEvent(msg);
  assert.equal(so.connected, true);
  dc.dispatchEvent(new Event('close'));
  assert.equal(so.connected, false);
  assert.deepEqual(events, ['Connect.Success', 'SharedObject.Connection.Closed']);
});
