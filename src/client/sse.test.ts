import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusbarError, type BusbarClient, createClient, type SubscriptionState } from './index.ts';
import { eventually, type LiveServer, startLiveServer } from './live-server.fixture.ts';

/** A fetch whose event streams a test can cut, as a dropped link would. */
function cuttableFetch(): { fetch: typeof fetch; streams: AbortController[] } {
  const streams: AbortController[] = [];
  return {
    streams,
    fetch: (input, init) => {
      if (!String(input).includes('/v1/stream')) return fetch(input, init);
      const controller = new AbortController();
      init?.signal?.addEventListener('abort', () => controller.abort(), { once: true });
      streams.push(controller);
      return fetch(input, { ...init, signal: controller.signal });
    },
  };
}

describe('client.sse over Server-Sent Events', () => {
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
    await client.publishBatch([{ type: 'order.created' }, { type: 'stock.moved' }, { type: 'order.paid', subject: 'o-9' }]);
    const seen: string[] = [];
    const subscription = client.sse(['order.*'], (event) => void seen.push(event.type), { from: 'beginning' });
    await subscription.ready;
    const [, shipped] = await client.publishBatch([{ type: 'stock.moved' }, { type: 'order.shipped' }]);
    await eventually(() => subscription.position === shipped!.position, () => `position ${shipped!.position}, at ${subscription.position}`);
    await subscription.close();
    assert.deepEqual(seen, ['order.created', 'order.paid', 'order.shipped']);
  });

  it('misses nothing published while its stream was cut, even when it started at the end and had received nothing', async () => {
    const { fetch, streams } = cuttableFetch();
    const cutting = createClient({ url: live.url, fetch });
    const seen: unknown[] = [];
    await client.publish('gap.note', 0);
    const subscription = cutting.sse('gap.note', (event) => void seen.push(event.data), { reconnect: { initialDelayMs: 400, maxDelayMs: 400 } });
    await subscription.ready;
    streams[0]!.abort();
    await eventually(() => subscription.state === 'reconnecting', () => `reconnecting, is ${subscription.state}`);
    await client.publishBatch([{ type: 'gap.note', data: 1 }, { type: 'gap.note', data: 2 }]);
    await eventually(() => seen.length >= 2, () => `2 events, have ${seen.length}`);
    await subscription.close();
    assert.deepEqual(seen, [1, 2]);
    assert.equal(streams.length, 2);
  });

  it('resumes across a server restart on the same file while a publisher keeps publishing, with no gap and no duplicate', async () => {
    const seen: string[] = [];
    const states: SubscriptionState[] = [];
    const subscription = client.sse('restart.tick', (event) => void seen.push(event.id), {
      reconnect: { initialDelayMs: 300, maxDelayMs: 600 },
      onStateChange: (change) => states.push(change.state),
    });
    await subscription.ready;
    const published: string[] = [];
    for (let n = 0; n < 150; n++) {
      if (n === 60) void live.restart();
      const id = `sse-restart-${n}`;
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
    await eventually(() => seen.length >= 150, () => `150 events, have ${seen.length}`);
    await sleep(50);
    await subscription.close();
    assert.deepEqual(seen, published);
    assert.ok(states.includes('reconnecting'), `went through reconnecting: ${states.join(' → ')}`);
  });

  it('pauses a handler that falls behind, then resumes and misses nothing', async () => {
    const states: SubscriptionState[] = [];
    const seen: number[] = [];
    const batch = await client.publishBatch(Array.from({ length: 100 }, (_, n) => ({ type: 'flood.item', data: n })));
    const subscription = client.sse('flood.item', async (event) => {
      await sleep(1);
      seen.push(event.data as number);
    }, { from: batch[0]!.position, bufferSize: 10, onStateChange: (change) => states.push(change.state) });
    await eventually(() => seen.length >= 100, () => `100 events, have ${seen.length}`, 20_000);
    await subscription.close();
    assert.deepEqual(seen, Array.from({ length: 100 }, (_, n) => n));
    assert.ok(states.includes('paused'), `paused at least once: ${states.join(' → ')}`);
  });

  it('fails at once, with the server\'s code, when the server refuses the stream', async () => {
    const { fetch, streams } = cuttableFetch();
    const refused = createClient({ url: live.url, fetch }).sse('order..x', () => {}, { from: 'beginning' });
    const error = await refused.ready.catch((failure: unknown) => failure);
    assert.ok(error instanceof BusbarError);
    assert.deepEqual([error.code, error.status], ['BUSBAR_ERR_INVALID_PATTERN', 400]);
    await assert.rejects(refused.closed);
    assert.equal(streams.length, 1, 'no second attempt');
  });
});
