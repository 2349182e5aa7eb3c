import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusbarError, type BusbarClient, createClient, type ReceivedEvent, type SubscriptionState, type WebSocketConstructor } from './index.ts';
import { eventually, type LiveServer, startLiveServer } from './live-server.fixture.ts';

/** A WebSocket class that keeps every socket it made, so a test can cut one as a network would. */
function trackedWebSocket(): { WebSocket: WebSocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WebSocket: Tracked, sockets };
}

const FAST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 };

describe('client.subscribe over WebSocket', () => {
  let live: LiveServer;
  let client: BusbarClient;
  before(async () => {
    live = await startLiveServer();
    client = createClient({ url: live.url });
  });
  after(async () => {
    await client.close();
    await live.close();
  });

  it('hands every matching event to the handler once, in log order, from the beginning and then live', async () => {
    await client.publishBatch([{ type: 'order.created' }, { type: 'stock.moved' }, { type: 'order.paid' }]);
    const seen: ReceivedEvent[] = [];
    const subscription = client.subscribe('order.*', (event) => void seen.push(event), { from: 'beginning' });
    await subscription.ready;
    const [live1, , live2] = await client.publishBatch([{ type: 'order.shipped' }, { type: 'stock.moved' }, { type: 'order.closed' }]);
    await eventually(() => seen.length >= 4, () => `4 events, have ${seen.length}`);
    await subscription.close();
    assert.deepEqual(seen.map((event) => event.type), ['order.created', 'order.paid', 'order.shipped', 'order.closed']);
    assert.deepEqual(seen.slice(2).map((event) => event.sequence), [live1!.position, live2!.position]);
    assert.equal(subscription.position, live2!.position);
    assert.equal(subscription.state, 'closed');
  });

  it('starts at the end by default, after the position the server reports, and filters by subject', async () => {
    const before = await client.publish('doc.added', { n: 0 }, { subject: 'library-7' });
    const seen: unknown[] = [];
    const subscription = client.subscribe('doc.*', (event) => void seen.push(event.data), { subject: 'library-7' });
    await subscription.ready;
    assert.ok(subscription.position! >= before.position);
    await client.publish('doc.added', { n: 1 }, { subject: 'library-8' });
    const last = await client.publish('doc.added', { n: 2 }, { subject: 'library-7' });
    await eventually(() => subscription.position === last.position, () => `position ${last.position}, at ${subscription.position}`);
    await subscription.close();
    assert.deepEqual(seen, [{ n: 2 }]);
  });

  it('awaits an async handler before handing it the next event', async () => {
    let running = 0;
    let mostAtOnce = 0;
    const seen: number[] = [];
    const batch = await client.publishBatch(Array.from({ length: 20 }, (_, n) => ({ type: 'slow.step', data: n })));
    const subscription = client.subscribe('slow.step', async (event) => {
      mostAtOnce = Math.max(mostAtOnce, ++running);
      await sleep(event.data === 3 ? 30 : 1);
      seen.push(event.data as number);
      running--;
    }, { from: batch[0]!.position });
    await eventually(() => seen.length === 20, () => `20 events, have ${seen.length}`);
    await subscription.close();
    assert.equal(mostAtOnce, 1);
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, n) => n));
  });

  it('resumes after the last event received when its socket drops mid-stream: no gap, no duplicate', async () => {
    const { WebSocket, sockets } = trackedWebSocket();
    const tracked = createClient({ url: live.url, WebSocket });
    const seen: number[] = [];
    const subscription = tracked.subscribe('drop.tick', (event) => void seen.push(event.data as number), { reconnect: FAST_RECONNECT });
    await subscription.ready;
    const publishing = (async () => {
      for (let n = 0; n < 300; n += 10) {
        await client.publishBatch(Array.from({ length: 10 }, (_, k) => ({ type: 'drop.tick', data: n + k })));
        await sleep(2);
      }
    })();
    for (const cutAt of [60, 150]) {
      await eventually(() => seen.length >= cutAt, () => `${cutAt} events, have ${seen.length}`);
      sockets.at(-1)!.close(); // as a dropped link would, without the subscription asking
    }
    await publishing;
    await eventually(() => seen.length >= 300, () => `300 events, have ${seen.length}`);
    await sleep(50);
    await subscription.close();
    assert.deepEqual(seen, Array.from({ length: 300 }, (_, n) => n));
    assert.ok(sockets.length >= 3, `reconnected twice (sockets: ${sockets.length})`);
  });

  it('resumes across a server restart on the same file while a publisher keeps publishing, with no gap and no duplicate', async () => {
    const seen: string[] = [];
    const states: SubscriptionState[] = [];
    // It comes back later than the publisher does, so events published while it is away must be caught up.
    const subscription = client.subscribe('restart.tick', (event) => void seen.push(event.id), {
      reconnect: { initialDelayMs: 300, maxDelayMs: 600 },
      onStateChange: (change) => states.push(change.state),
    });
    await subscription.ready;
    const published: string[] = [];
    for (let n = 0; n < 200; n++) {
      if (n === 80) void live.restart();
      const id = `restart-${n}`;
      // A publish cut off by the restart is repeated with the same id: stored once.
      for (;;) {
        try {
          await client.publish('restart.tick', n, { id });
          break;
        } catch (error) {
          assert.ok(error instanceof BusbarError, String(error));
          await sleep(20);
        }
      }
      published.push(id);
    }
    await eventually(() => seen.length >= 200, () => `200 events, have ${seen.length}`);
    await sleep(50);
    await subscription.close();
    assert.deepEqual(seen, published);
    assert.ok(states.includes('reconnecting'), `went through reconnecting: ${states.join(' → ')}`);
  });

  it('misses nothing published while it was away, even when no event had arrived before the cut', async () => {
    const { WebSocket, sockets } = trackedWebSocket();
    const tracked = createClient({ url: live.url, WebSocket });
    const seen: unknown[] = [];
    const subscription = tracked.subscribe('away.note', (event) => void seen.push(event.data), { reconnect: { initialDelayMs: 400, maxDelayMs: 400 } });
    await subscription.ready;
    sockets[0]!.close();
    await eventually(() => subscription.state === 'reconnecting', () => `reconnecting, is ${subscription.state}`);
    await client.publishBatch([{ type: 'away.note', data: 1 }, { type: 'away.note', data: 2 }]);
    await eventually(() => seen.length >= 2, () => `2 events, have ${seen.length}`);
    await subscription.close();
    assert.deepEqual(seen, [1, 2]);
  });

  it('pauses a handler that falls behind instead of buffering without bound, then resumes and misses nothing', async () => {
    const { WebSocket, sockets } = trackedWebSocket();
    const tracked = createClient({ url: live.url, WebSocket });
    const states: SubscriptionState[] = [];
    const seen: number[] = [];
    const batch = await client.publishBatch(Array.from({ length: 120 }, (_, n) => ({ type: 'flood.item', data: n })));
    const subscription = tracked.subscribe('flood.item', async (event) => {
      await sleep(1);
      seen.push(event.data as number);
    }, { from: batch[0]!.position, bufferSize: 16, onStateChange: (change) => states.push(change.state) });
    await eventually(() => seen.length >= 120, () => `120 events, have ${seen.length}`, 20_000);
    await subscription.close();
    assert.deepEqual(seen, Array.from({ length: 120 }, (_, n) => n));
    assert.ok(states.includes('paused'), `paused at least once: ${states.join(' → ')}`);
    assert.ok(sockets.length > 1, 'resumed on a new connection');
  });

  it('closes with the handler\'s error, keeping the position of the last event it finished', async () => {
    const batch = await client.publishBatch([1, 2, 3].map((n) => ({ type: 'fragile.step', data: n })));
    const subscription = client.subscribe('fragile.step', (event) => {
      if (event.data === 2) throw new Error('cannot handle 2');
    }, { from: batch[0]!.position });
    await assert.rejects(subscription.closed, /cannot handle 2/);
    assert.equal(subscription.state, 'closed');
    assert.equal(subscription.position, batch[0]!.position);
  });

  it('closes when its signal aborts and hands on nothing after', async () => {
    const controller = new AbortController();
    const seen: unknown[] = [];
    const subscription = client.subscribe('signal.test', (event) => void seen.push(event.data), { signal: controller.signal });
    await subscription.ready;
    controller.abort();
    await subscription.closed;
    await client.publish('signal.test', 1);
    await sleep(50);
    assert.deepEqual(seen, []);
  });

  it('fails at once, without reconnecting, when the server refuses the subscription', async () => {
    const { WebSocket, sockets } = trackedWebSocket();
    const tracked = createClient({ url: live.url, WebSocket });
    const subscription = tracked.subscribe('order..x', () => {});
    const refusal = await subscription.ready.catch((error: unknown) => error);
    assert.ok(refusal instanceof BusbarError);
    assert.equal(refusal.code, 'BUSBAR_ERR_INVALID_PATTERN');
    await assert.rejects(subscription.closed, /order\.\.x/);
    assert.equal(sockets.length, 1);
  });

  it('refuses a start past the end of the log as bad input', async () => {
    const subscription = client.subscribe('>', () => {}, { from: { after: 10_000_000 } });
    await assert.rejects(subscription.ready, (error: unknown) => error instanceof BusbarError && error.code === 'BUSBAR_ERR_INVALID_ARGUMENT');
  });
});
