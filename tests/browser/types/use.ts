// A small web app written against the SDK's public types (clients/web/
// index.d.ts), resolved the way an app resolves the package (package.json
// "types"). types.test.mjs runs `tsc --noEmit` on it: the .d.ts must accept
// real use, and the @ts-expect-error lines must stay errors (a declaration
// loosened to `any` fails the check, since an unused @ts-expect-error is an
// error itself).
import {
  ApiClient, EventsClient, Publisher, PublisherEvents, RpcClient, RpcError, SharedObject, SharedObjectSocket,
  Subscriber, SubscriberEvents, dataChannelTransport, findRecording, listRecordings, playRecording, playbackOrder, urls,
  type MediaFile, type SendInvoke, type Transport,
} from '../../../clients/web';

interface Sum { sum: number }

export async function app(video: HTMLVideoElement): Promise<number> {
  const pub = new Publisher({ host: 'example.com', app: 'live', streamName: 'cam1', record: true, callTimeout: 5000,
    connectionParams: { username: 'alice', password: 'secret' }, bandwidth: { video: 1500 } });
  pub.on(PublisherEvents.SEND_INVOKE, (e) => console.log((e.data as SendInvoke).methodName));
  await pub.publish();
  const r = await pub.callServer<Sum>('sum', [1, 2, 3], { timeout: 2000 });
  const n: number = r.sum;
  pub.send('whateverFunctionName', { message: 'hi', touchX: 0.5 });
  pub.send('plain text');
  const off: () => void = pub.registerHandler<{ text: string }>('showMessage', (data, method) => console.log(method, data.text));
  off();

  // Red5's Stream Manager 2.0 proxy: the full endpoint, the node group as a connection parameter
  const smPub = new Publisher({ streamName: 'cam1', endpoint: 'https://sm.example.com/as/v1/proxy/whip/live/cam1',
    connectionParams: { nodeGroup: 'default' } });
  smPub.on(PublisherEvents.HOST_ENDPOINT_CHANGED, (e) => console.log(e.data.endpoint));
  const sub = new Subscriber({ streamName: 'cam1', element: video, order: ['whep', 'flv'], callTimeout: 1000 });
  sub.on(SubscriberEvents.HOST_ENDPOINT_CHANGED, (e) => console.log(e.data.endpoint));
  sub.on(SubscriberEvents.SEND_INVOKE, (e) => console.log(e.data));
  sub.registerHandler('whateverFunctionName', (d: { message: string }) => console.log(d.message));
  const tech = await sub.subscribe();
  if (tech === 'whep') await sub.callServer<string[]>('getLiveStreams', []);
  const order: string[] = playbackOrder({ force: 'hls' }, { mse: true });

  const socket: Transport = await new SharedObjectSocket({ app: 'live' }).open();
  const so = new SharedObject('chat', pub.dc ? dataChannelTransport(pub.dc) : socket);
  so.on('SharedObject.MethodUpdate', (e) => console.log(e.data.message));
  so.connect();
  so.send('chat', { text: 'hello' });

  const rpc = new RpcClient(socket, { timeout: 1000, maxPending: 4 });
  try {
    await rpc.call('room.join', ['alice']);
  } catch (e) {
    if (e instanceof RpcError && e.code === 'timeout') console.log('slow');
  }
  const url: string = urls.whipUrl({ streamName: 'cam1' }, { record: 'append' });
  const files: MediaFile[] = await listRecordings({ app: 'live', connectionParams: { token: 't' } });
  const name = findRecording(files, 'cam1');
  if (name) {
    const vod = await playRecording({ app: 'live' }, name, video);
    console.log(vod.kind, vod.stats().framesDecoded, urls.recordingUrl({ app: 'live' }, name), urls.mediaFilesUrl());
    vod.stop();
  }
  const api = new ApiClient({ accessToken: 't' });
  await api.invoke<number>('live', 'room.count', ['lobby']);
  new EventsClient({ filter: { app: 'live' } });
  return n + order.length + url.length;
}

export function misuse(pub: Publisher, sub: Subscriber): void {
  // @ts-expect-error a stream name is required
  new Publisher({ app: 'live' });
  // @ts-expect-error callServer takes the arguments as an array (Red5's callServer(methodName, args))
  pub.callServer('sum', 1, 2);
  // @ts-expect-error the playback technologies are whep, hls and flv
  new Subscriber({ streamName: 's', force: 'rtmp' });
  // @ts-expect-error a handler is a function
  sub.registerHandler('m', 'not a function');
  // @ts-expect-error a recording is played in a video element
  void playRecording({}, 'a.flv', 'video');
  // @ts-expect-error an RpcError's code is one of the listed ones
  const c: RpcError['code'] = 'nope';
  void c;
}
