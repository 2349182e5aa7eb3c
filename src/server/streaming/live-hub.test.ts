import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serializeEvent } from '../../core/cloudevents.ts';
import { buildEvent, type BusbarEvent } from '../../core/event.ts';
import type { EventLog } from '../../core/event-log.ts';
import { createMemoryStore, type MemoryStore } from '../../store/memory/index.ts';
import type { EventFrames } from './event-frames.ts';
import { LiveHub } from './live-hub.ts';
import { streamFilter } from './stream-filter.ts';
import { type FeedSink, SubscriptionFeed } from './subscription-feed.ts';

const anyone = { name: 'anonymous', can: () => true };
const event = (type: string, n: number, extra: Record<string, unknown> = {}): BusbarEvent =>
  buildEvent(type, { n }, extra as never, 'test');
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

/** A sink that records what it was sent and can pretend to be full. */
class RecordingSink implements FeedSink {
  readonly chunks: string[] = [];
  buffered = 0;
  cutOffs = 0;
  write(chunk: Buffer, flushed?: () => void): void {
    this.chunks.push(chunk.toString());
    flushed?.();
  }
  cutOff(): void {
    this.cutOffs++;
  }
  get positions(): number[] {
    return this.chunks.map((chunk) => Number(/^id: (\d+)/.exec(chunk)![1]));
  }
}

/** The store, with the hub's waits held until released. */
function gatedLog(store: MemoryStore): EventLog & { release(): void } {
  let open = false;
  let wake: (() => void) | undefined;
  return Object.assign(Object.create(store) as EventLog, {
    async waitForAppend(after: number, signal?: AbortSignal) {
      if (!open) await new Promise<void>((resolve) => ((wake = resolve), signal?.addEventListener('abort', () => resolve())));
      return store.waitForAppend(after, signal);
    },
    release() {
      open = true;
      wake?.();
    },
  });
}

function feedOf(hub: LiveHub, log: EventLog, topics: string[], sink: FeedSink, sendBufferBytes = 1 << 20, pageSize = 3) {
  return new SubscriptionFeed({
    hub,
    log,
    filter: streamFilter(topics, undefined, anyone),
    sink,
    serialize: serializeEvent,
    encode: (frames: EventFrames) => frames.sse,
    sendBufferBytes,
    onError: (error) => assert.fail(String(error)),
    pageSize,
  });
}

describe('the live hub and its subscription feeds', () => {
  it('serialises each event once however many listeners it goes to', async () => {
    const store = createMemoryStore();
    let serialized = 0;
    const hub = new LiveHub({ log: store, serialize: (e) => (serialized++, serializeEvent(e)), onError: assert.fail });
    await hub.start();
    const sinks = Array.from({ length: 50 }, () => new RecordingSink());
    for (const sink of sinks) feedOf(hub, store, ['hub.*'], sink).start('end');
    await store.append([event('hub.a', 1), event('hub.b', 2), event('other', 3)]);
    await settle();
    assert.equal(serialized, 2, 'once per matching event, none for the one nobody wants');
    for (const sink of sinks) assert.deepEqual(sink.positions, [1, 2]);
    await hub.close();
  });

  it('skips events the catch-up already sent when it joins a hub that lags behind the log', async () => {
    const store = createMemoryStore();
    const log = gatedLog(store);
    const hub = new LiveHub({ log, serialize: serializeEvent, onError: assert.fail });
    await store.append([1, 2, 3, 4, 5].map((n) => event('lag.tick', n)));
    await hub.start(); // at 5, then held there
    await store.append([6, 7, 8, 9, 10].map((n) => event('lag.tick', n)));
    const sink = new RecordingSink();
    // One catch-up page reads past the hub's position.
    const feed = feedOf(hub, log, ['lag.tick'], sink, 1 << 20, 100);
    assert.equal(feed.start({ after: 2 }), 2);
    await settle();
    assert.deepEqual(sink.positions, [3, 4, 5, 6, 7, 8, 9, 10], 'caught up past the hub');
    assert.equal(hub.position, 5);
    log.release(); // the hub now hands out 6..10 again, then 11
    await store.append([event('lag.tick', 11)]);
    await settle();
    assert.deepEqual(sink.positions, [3, 4, 5, 6, 7, 8, 9, 10, 11]);
    await hub.close();
  });

  it('does not deliver events whose expirytime has passed', async () => {
    const store = createMemoryStore();
    const hub = new LiveHub({ log: store, serialize: serializeEvent, onError: assert.fail });
    await hub.start();
    const live = new RecordingSink();
    feedOf(hub, store, ['ttl.*'], live).start('end');
    await store.append([
      event('ttl.gone', 1, { expirytime: '2000-01-01T00:00:00Z' }),
      event('ttl.kept', 2, { expirytime: '2999-01-01T00:00:00Z' }),
    ]);
    await settle();
    const replay = new RecordingSink();
    feedOf(hub, store, ['ttl.*'], replay).start({ after: 0 });
    await settle();
    assert.deepEqual(live.positions, [2]);
    assert.deepEqual(replay.positions, [2]);
    await hub.close();
  });

  it('cuts a feed off once its sink holds more than the cap, while the others keep receiving', async () => {
    const store = createMemoryStore();
    const hub = new LiveHub({ log: store, serialize: serializeEvent, onError: assert.fail });
    await hub.start();
    const full = new RecordingSink();
    const healthy = new RecordingSink();
    feedOf(hub, store, ['cap.*'], full, 1000).start('end');
    feedOf(hub, store, ['cap.*'], healthy, 1000).start('end');
    await store.append([event('cap.a', 1)]);
    await settle();
    full.buffered = 5000; // judged after the turn in which the next event is written
    await store.append([event('cap.a', 2)]);
    await settle();
    await store.append([event('cap.a', 3)]);
    await settle();
    assert.equal(full.cutOffs, 1);
    assert.deepEqual(full.positions, [1, 2], 'nothing more after the cut');
    assert.deepEqual(healthy.positions, [1, 2, 3]);
    assert.equal(hub.size, 1, 'the cut-off feed left the hub');
    await hub.close();
  });

  it('does not read the log while nobody listens, and serves a late listener from its own position', async () => {
    const store = createMemoryStore();
    let reads = 0;
    const counted = Object.assign(Object.create(store) as EventLog, {
      readAll: (options: Parameters<EventLog['readAll']>[0]) => (reads++, store.readAll(options)),
    });
    const hub = new LiveHub({ log: counted, serialize: serializeEvent, onError: assert.fail });
    await hub.start();
    await store.append([1, 2, 3].map((n) => event('idle.tick', n)));
    await settle();
    assert.equal(reads, 0);
    assert.equal(hub.position, 3);
    const sink = new RecordingSink();
    feedOf(hub, counted, ['idle.tick'], sink).start({ after: 1 });
    await store.append([event('idle.tick', 4)]);
    await settle();
    assert.deepEqual(sink.positions, [2, 3, 4]);
    await hub.close();
  });
});
