import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusbarError, ConcurrencyError, type ErrorCode } from '../core/errors.ts';
import { type BusbarEvent, buildEvent, type EventOptions } from '../core/event.ts';
import type { LoggedEvent, StoredDeadLetter } from '../core/event-log.ts';
import type { EventStore, ReadStreamOptions } from '../store/event-store.ts';

/** A store opened on an empty database for one test of the contract suite. */
export interface StoreUnderTest<T = unknown> {
  store: EventStore<T>;
  /**
   * Reopens the same database (after the suite has closed `store`), for the
   * durability checks: events, checkpoints, dead letters and processed ids
   * survive. Without it those checks are skipped.
   */
  reopen?: () => Promise<EventStore<T>>;
}

let made = 0;

/** A new event whose payload no other event in the run has. */
function event(
  topic = 'orders.created',
  options?: EventOptions,
  data: unknown = { n: ++made },
): BusbarEvent {
  return buildEvent(topic, data, options, 'busbar-contract');
}

function events(count: number, topic?: string): BusbarEvent[] {
  return Array.from({ length: count }, () => event(topic));
}

/** The event as a store hands it back: stamped with its position. */
function stored(original: BusbarEvent, position: number): BusbarEvent {
  return { ...original, sequence: position };
}

function deadLetter(id: string, failed: BusbarEvent, position: number, code?: string): StoredDeadLetter {
  return {
    id,
    subscription: 'mailer',
    position,
    event: stored(failed, position),
    error:
      code === undefined
        ? { name: 'Error', message: 'smtp down' }
        : { name: 'BusbarError', message: 'timed out', code },
    attempts: 3,
    failedAt: '2025-01-02T03:04:05.678Z',
  };
}

const idsOf = (rows: readonly LoggedEvent[]): string[] => rows.map((row) => row.event.id);
const positionsOf = (rows: readonly LoggedEvent[]): number[] => rows.map((row) => row.position);
const versionsOf = (rows: readonly LoggedEvent[]): unknown[] => rows.map((row) => row.streamVersion);
const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The integers `from` to `to`, inclusive. */
function span(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Runs `work` and returns the BusbarError it fails with; fails the test on success or any other error. */
async function rejectsWith(
  work: () => Promise<unknown>,
  code: ErrorCode,
  what = 'the call',
): Promise<BusbarError> {
  let thrown: unknown;
  try {
    await work();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown !== undefined, `${what} should fail with ${code}, but succeeded`);
  assert.ok(thrown instanceof BusbarError, `${what} should fail with ${code}, got ${String(thrown)}`);
  assert.equal(thrown.code, code, `${what}: ${thrown.message}`);
  return thrown;
}

function assertConcurrencyError(error: unknown, stream: string, expected: unknown, actual: number): void {
  assert.ok(error instanceof ConcurrencyError, `expected a ConcurrencyError, got ${String(error)}`);
  assert.equal(error.code, 'BUSBAR_ERR_CONCURRENCY');
  assert.equal(error.status, 409);
  assert.equal(error.stream, stream);
  assert.equal(error.expected, expected);
  assert.equal(error.actual, actual);
}

/** Whether `promise` settles, either way, within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ContractOptions {
  /**
   * Whether the store keeps its data across a close and reopen (default
   * true). When true, `open` must return `reopen`, and the durability tests
   * run; false (an in-memory store) leaves them out.
   */
  persistent?: boolean;
}

/**
 * Declares the contract every {@link EventStore} must meet as a `node:test`
 * suite: appends, idempotency, expected versions, reads, retention,
 * checkpoints, dead letters, processed ids, the live tail, concurrent
 * writers, hostile input and closing. `open` must return a store on an empty
 * database each time; the suite closes it when the test ends.
 *
 * @example
 * ```ts
 * import { eventStoreContract } from 'busbar/testing';
 *
 * eventStoreContract('my store', async () => {
 *   const file = await freshDatabaseFile();
 *   return { store: await openMyStore(file), reopen: () => openMyStore(file) };
 * });
 * ```
 */
export function eventStoreContract<T>(
  name: string,
  open: () => Promise<StoreUnderTest<T>>,
  options: ContractOptions = {},
): void {
  // A store that keeps nothing across a reopen (memory) is not asked to:
  // those tests are left out rather than skipped.
  const itKeeps = options.persistent === false ? () => {} : it;

  async function openSubject(t: TestContext): Promise<StoreUnderTest<T>> {
    const subject = await open();
    t.after(() => subject.store.close());
    return subject;
  }

  async function fresh(t: TestContext): Promise<EventStore<T>> {
    return (await openSubject(t)).store;
  }

  /** Closes the subject's store and opens its database again. */
  async function reopened(t: TestContext, subject: StoreUnderTest<T>): Promise<EventStore<T>> {
    await subject.store.close();
    const store = await subject.reopen!();
    t.after(() => store.close());
    return store;
  }

  /**
   * Two streams written in turns, so versions and positions differ: positions
   * 1-7 hold account-1 v1, account-2 v1, account-1 v2 and v3, account-2 v2,
   * account-1 v4 and v5.
   */
  async function twoStreams(store: EventStore<T>): Promise<{ first: BusbarEvent[]; second: BusbarEvent[] }> {
    const first = events(5, 'accounts.credited');
    const second = events(2, 'accounts.debited');
    await store.appendToStream('account-1', first.slice(0, 1));
    await store.appendToStream('account-2', second.slice(0, 1));
    await store.appendToStream('account-1', first.slice(1, 3));
    await store.appendToStream('account-2', second.slice(1, 2));
    await store.appendToStream('account-1', first.slice(3, 5));
    return { first, second };
  }

  async function versionsIn(store: EventStore<T>, stream: string, options?: ReadStreamOptions): Promise<unknown[]> {
    return versionsOf(await store.readStream(stream, options));
  }

  describe(name, () => {
    describe('append', () => {
      it('appends one event at position 1 and moves the head to it', async (t) => {
        const store = await fresh(t);
        assert.equal(await store.head(), 0);
        const one = event();
        assert.deepEqual(await store.append([one]), [1]);
        assert.equal(await store.head(), 1);
        const page = await store.readAll();
        assert.deepEqual(page.events.map((row) => row.event), [stored(one, 1)]);
        assert.equal(page.last, 1);
      });

      it('appends batches at consecutive positions with no gaps', async (t) => {
        const store = await fresh(t);
        const first = events(3);
        const second = events(2);
        assert.deepEqual(await store.append(first), [1, 2, 3]);
        assert.deepEqual(await store.append(second), [4, 5]);
        assert.equal(await store.head(), 5);
        const { events: read } = await store.readAll();
        assert.deepEqual(positionsOf(read), [1, 2, 3, 4, 5]);
        assert.deepEqual(idsOf(read), [...first, ...second].map((e) => e.id));
      });

      it('keeps each batch contiguous when batches are appended concurrently', async (t) => {
        const store = await fresh(t);
        const batches = Array.from({ length: 10 }, () => events(5));
        const results = await Promise.all(batches.map((batch) => store.append(batch)));
        for (const positions of results) {
          assert.deepEqual(positions, span(positions[0]!, positions[0]! + 4));
        }
        assert.deepEqual(results.flat().sort((a, b) => a - b), span(1, 50));
        const { events: read } = await store.readAll();
        batches.forEach((batch, i) => {
          const at = results[i]![0]! - 1;
          assert.deepEqual(idsOf(read.slice(at, at + 5)), batch.map((e) => e.id));
        });
      });

      it('stamps every event it returns with a sequence equal to its position', async (t) => {
        const store = await fresh(t);
        await store.append(events(2));
        await store.appendToStream('account-1', events(2));
        const { events: read } = await store.readAll();
        assert.equal(read.length, 4);
        for (const row of read) assert.equal(row.event.sequence, row.position);
        for (const row of await store.readStream('account-1')) {
          assert.equal(row.event.sequence, row.position);
        }
        assert.equal((await store.getEvent(read[2]!.event.id))?.event.sequence, 3);
      });

      it('round-trips an event through getEvent with its data, subject and extensions', async (t) => {
        const store = await fresh(t);
        const data = {
          order: { id: 'o-7', lines: [{ sku: 'a', qty: 2, price: 9.5 }, null, true, 'ü €'] },
          empty: {},
          list: [],
        };
        const original = event(
          'orders.created',
          {
            subject: 'order-7',
            key: 'customer-3',
            time: '2025-06-01T12:00:00.000Z',
            traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
            priority: 5,
            datacontenttype: 'application/json',
            extensions: { tenant: 'acme', beta: true, region2: 3 },
          },
          data,
        );
        await store.append([event()]);
        const before = Date.now();
        await store.append([original]);
        const after = Date.now();
        const logged = await store.getEvent(original.id);
        assert.ok(logged !== undefined, 'getEvent finds the event');
        assert.deepEqual(logged.event, stored(original, 2));
        assert.equal(logged.position, 2);
        assert.equal(logged.stream, undefined);
        assert.equal(logged.streamVersion, undefined);
        assert.equal(logged.recipients, undefined);
        // A database server's clock may be a little off this process's.
        assert.ok(
          logged.recordedAt >= before - 2000 && logged.recordedAt <= after + 2000,
          `recordedAt ${logged.recordedAt} is the time of the append`,
        );
      });

      it('round-trips binary data as a Uint8Array', async (t) => {
        const store = await fresh(t);
        const bytes = new Uint8Array([0, 1, 127, 128, 254, 255]);
        const binary = event('files.uploaded', { datacontenttype: 'application/octet-stream' }, bytes);
        const [position] = await store.append([binary]);
        const logged = await store.getEvent(binary.id);
        assert.ok(logged?.event.data instanceof Uint8Array, 'data is a Uint8Array');
        assert.deepEqual(logged.event, stored(binary, position!));
        assert.deepEqual((await store.readAll()).events[0]?.event.data, bytes);
      });

      it('keeps the recipients an event was appended with when the caller changes its array later', async (t) => {
        const store = await fresh(t);
        const recipients = ['auditor'];
        const one = event();
        await store.append([one], { recipients });
        recipients.push('intruder');
        assert.deepEqual((await store.getEvent(one.id))?.recipients, ['auditor']);
        assert.deepEqual((await store.readAll()).events[0]?.recipients, ['auditor']);
      });

      it('returns undefined from getEvent for an unknown id', async (t) => {
        const store = await fresh(t);
        await store.append([event()]);
        assert.equal(await store.getEvent('no-such-event'), undefined);
      });

      itKeeps('keeps events and streams across a reopen and continues the positions', async (t) => {
        const subject = await openSubject(t);
        assert.ok(subject.reopen, 'a persistent store under test must come with reopen()');
        const loose = event();
        await subject.store.append([loose], { recipients: ['audit'] });
        const streamed = events(2);
        await subject.store.appendToStream('account-1', streamed);
        await subject.store.setStreamMetadata('account-1', { maxCount: 10 });
        const store = await reopened(t, subject);
        assert.equal(await store.head(), 3);
        assert.deepEqual((await store.getEvent(loose.id))?.event, stored(loose, 1));
        assert.deepEqual((await store.readAll()).events[0]?.recipients, ['audit']);
        assert.deepEqual(idsOf(await store.readStream('account-1')), streamed.map((e) => e.id));
        assert.equal(await store.streamVersion('account-1'), 2);
        assert.deepEqual(await store.streamMetadata('account-1'), { maxCount: 10 });
        assert.deepEqual(await store.append([event()]), [4]);
        assert.deepEqual(await store.appendToStream('account-1', [event()], { expectedVersion: 2 }), {
          positions: [5],
          version: 3,
        });
      });
    });

    describe('idempotent append', () => {
      it('returns the original position for an id already stored and adds no row', async (t) => {
        const store = await fresh(t);
        const [a, b] = events(2);
        assert.deepEqual(await store.append([a!, b!]), [1, 2]);
        assert.deepEqual(await store.append([b!]), [2]);
        assert.equal(await store.head(), 2);
        assert.deepEqual(positionsOf((await store.readAll()).events), [1, 2]);
      });

      it('appends only the new events of a batch where some ids are stored', async (t) => {
        const store = await fresh(t);
        const [a, b, c] = events(3);
        await store.append([a!]);
        assert.deepEqual(await store.append([b!, a!, c!]), [2, 1, 3]);
        assert.equal(await store.head(), 3);
        assert.deepEqual(idsOf((await store.readAll()).events), [a!.id, b!.id, c!.id]);
      });

      it('stores an id repeated within one batch once', async (t) => {
        const store = await fresh(t);
        const [a, b] = events(2);
        assert.deepEqual(await store.append([a!, b!, a!]), [1, 2, 1]);
        assert.equal(await store.head(), 2);
      });

      it('returns the original positions and version when appendToStream repeats stored ids', async (t) => {
        const store = await fresh(t);
        const batch = events(2);
        const original = { positions: [1, 2], version: 2 };
        assert.deepEqual(await store.appendToStream('account-1', batch), original);
        assert.deepEqual(await store.appendToStream('account-1', batch), original);
        assert.equal(await store.head(), 2);
        assert.equal(await store.streamVersion('account-1'), 2);
      });

      it('accepts a retried appendToStream with the old expectedVersion as a no-op', async (t) => {
        const store = await fresh(t);
        const [a, b] = events(2);
        await store.appendToStream('account-1', [a!], { expectedVersion: 'no_stream' });
        await store.appendToStream('account-1', [b!], { expectedVersion: 1 });
        const retriedA = await store.appendToStream('account-1', [a!], { expectedVersion: 'no_stream' });
        assert.deepEqual(retriedA, { positions: [1], version: 2 });
        const retriedB = await store.appendToStream('account-1', [b!], { expectedVersion: 1 });
        assert.deepEqual(retriedB, { positions: [2], version: 2 });
        assert.equal(await store.head(), 2);
        assert.deepEqual(await versionsIn(store, 'account-1'), [1, 2]);
      });

      it('appends only the new events when appendToStream repeats some stored ids', async (t) => {
        const store = await fresh(t);
        const [a, b] = events(2);
        await store.appendToStream('account-1', [a!]);
        const result = await store.appendToStream('account-1', [a!, b!], { expectedVersion: 1 });
        assert.deepEqual(result, { positions: [1, 2], version: 2 });
        assert.deepEqual(idsOf(await store.readStream('account-1')), [a!.id, b!.id]);
      });
    });

    describe('expected versions', () => {
      it('appends with any whatever the stream holds', async (t) => {
        const store = await fresh(t);
        const any = { expectedVersion: 'any' } as const;
        assert.deepEqual(await store.appendToStream('account-1', [event()], any), { positions: [1], version: 1 });
        assert.deepEqual(await store.appendToStream('account-1', [event()], any), { positions: [2], version: 2 });
        assert.deepEqual(await store.appendToStream('account-1', [event()]), { positions: [3], version: 3 });
      });

      it('appends with no_stream to a new stream and returns its version', async (t) => {
        const store = await fresh(t);
        const result = await store.appendToStream('account-1', events(3), { expectedVersion: 'no_stream' });
        assert.deepEqual(result, { positions: [1, 2, 3], version: 3 });
      });

      it('refuses no_stream on an existing stream with a ConcurrencyError and appends nothing', async (t) => {
        const store = await fresh(t);
        await store.appendToStream('account-1', [event()]);
        const error = await rejectsWith(
          () => store.appendToStream('account-1', events(2), { expectedVersion: 'no_stream' }),
          'BUSBAR_ERR_CONCURRENCY',
        );
        assertConcurrencyError(error, 'account-1', 'no_stream', 1);
        assert.equal(await store.head(), 1);
        assert.equal(await store.streamVersion('account-1'), 1);
      });

      it('refuses exists on a new stream and appends to an existing one', async (t) => {
        const store = await fresh(t);
        const exists = { expectedVersion: 'exists' } as const;
        const error = await rejectsWith(
          () => store.appendToStream('account-1', [event()], exists),
          'BUSBAR_ERR_CONCURRENCY',
        );
        assertConcurrencyError(error, 'account-1', 'exists', 0);
        assert.equal(await store.head(), 0);
        assert.deepEqual(await store.readStream('account-1'), []);
        await store.appendToStream('account-1', [event()]);
        const result = await store.appendToStream('account-1', [event()], exists);
        assert.deepEqual(result, { positions: [2], version: 2 });
      });

      it('appends when the stream is at the exact version expected', async (t) => {
        const store = await fresh(t);
        await store.appendToStream('account-1', events(2));
        const result = await store.appendToStream('account-1', events(2), { expectedVersion: 2 });
        assert.deepEqual(result, { positions: [3, 4], version: 4 });
      });

      it('refuses another exact version with the stream, expected and actual versions, appending none of the batch', async (t) => {
        const store = await fresh(t);
        await store.appendToStream('account-1', events(2));
        const behind = await rejectsWith(
          () => store.appendToStream('account-1', events(3), { expectedVersion: 1 }),
          'BUSBAR_ERR_CONCURRENCY',
        );
        assertConcurrencyError(behind, 'account-1', 1, 2);
        assert.equal(await store.head(), 2);
        assert.equal(await store.streamVersion('account-1'), 2);
        const ahead = await rejectsWith(
          () => store.appendToStream('account-1', [event()], { expectedVersion: 5 }),
          'BUSBAR_ERR_CONCURRENCY',
        );
        assertConcurrencyError(ahead, 'account-1', 5, 2);
      });

      it('treats version 0 as a stream with no events', async (t) => {
        const store = await fresh(t);
        const zero = { expectedVersion: 0 };
        assert.deepEqual(await store.appendToStream('account-1', [event()], zero), { positions: [1], version: 1 });
        const error = await rejectsWith(
          () => store.appendToStream('account-1', [event()], zero),
          'BUSBAR_ERR_CONCURRENCY',
        );
        assertConcurrencyError(error, 'account-1', 0, 1);
      });

      it('counts versions per stream', async (t) => {
        const store = await fresh(t);
        await twoStreams(store);
        assert.equal(await store.streamVersion('account-1'), 5);
        assert.equal(await store.streamVersion('account-2'), 2);
        const result = await store.appendToStream('account-2', [event()], { expectedVersion: 2 });
        assert.deepEqual(result, { positions: [8], version: 3 });
      });

      it('rejects an invalid expectedVersion with BUSBAR_ERR_INVALID_ARGUMENT and appends nothing', async (t) => {
        const store = await fresh(t);
        for (const invalid of [-1, 'latest', 1.5, Number.NaN]) {
          await rejectsWith(
            () => store.appendToStream('account-1', [event()], { expectedVersion: invalid as never }),
            'BUSBAR_ERR_INVALID_ARGUMENT',
            `expectedVersion ${String(invalid)}`,
          );
        }
        assert.equal(await store.head(), 0);
        assert.equal(await store.streamVersion('account-1'), 0);
      });
    });

    describe('readAll', () => {
      it('reads an empty log as an empty page', async (t) => {
        const store = await fresh(t);
        assert.deepEqual(await store.readAll(), { events: [], last: 0 });
      });

      it('reads every event from the start in position order', async (t) => {
        const store = await fresh(t);
        const written = events(5);
        await store.append(written.slice(0, 2));
        await store.appendToStream('account-1', written.slice(2));
        const page = await store.readAll();
        assert.deepEqual(positionsOf(page.events), [1, 2, 3, 4, 5]);
        assert.deepEqual(idsOf(page.events), written.map((e) => e.id));
        assert.equal(page.last, 5);
      });

      it('reads only the events after a position', async (t) => {
        const store = await fresh(t);
        await store.append(events(5));
        const page = await store.readAll({ after: 2 });
        assert.deepEqual(positionsOf(page.events), [3, 4, 5]);
        assert.equal(page.last, 5);
        assert.deepEqual(await store.readAll({ after: 5 }), { events: [], last: 5 });
      });

      it('pages through everything with limit, using last as the cursor', async (t) => {
        const store = await fresh(t);
        await store.append(events(7));
        const pages: number[][] = [];
        const lasts: number[] = [];
        let after = 0;
        for (let i = 0; i < 4; i++) {
          const page = await store.readAll({ after, limit: 3 });
          pages.push(positionsOf(page.events));
          lasts.push(page.last);
          after = page.last;
        }
        assert.deepEqual(pages, [[1, 2, 3], [4, 5, 6], [7], []]);
        assert.deepEqual(lasts, [3, 6, 7, 7]);
      });

      it('filters by exact topics and by * and > wildcards', async (t) => {
        const store = await fresh(t);
        const topics = ['orders.created', 'orders.shipped', 'payments.received', 'orders.eu.created', 'orders'];
        await store.append(topics.map((topic) => event(topic)));
        const matching = async (patterns: string[]): Promise<number[]> =>
          positionsOf((await store.readAll({ topics: patterns })).events);
        assert.deepEqual(await matching(['orders.created']), [1]);
        assert.deepEqual(await matching(['orders.*']), [1, 2]);
        assert.deepEqual(await matching(['orders.>']), [1, 2, 4]);
        assert.deepEqual(await matching(['*.created']), [1]);
        assert.deepEqual(await matching(['payments.received', 'orders.shipped']), [2, 3]);
        assert.deepEqual(await matching(['orders.*.created', 'orders']), [4, 5]);
      });

      it('advances last past the events a topic filter skips', async (t) => {
        const store = await fresh(t);
        const topics = ['orders.created', 'payments.received', 'payments.received', 'orders.created', 'payments.refunded'];
        await store.append(topics.map((topic) => event(topic)));
        assert.deepEqual(await store.readAll({ topics: ['shipping.>'] }), { events: [], last: 5 });
        const whole = await store.readAll({ topics: ['orders.created'] });
        assert.deepEqual([positionsOf(whole.events), whole.last], [[1, 4], 5]);
        const seen: number[] = [];
        let after = 0;
        for (let i = 0; i < 3; i++) {
          const page = await store.readAll({ after, topics: ['orders.created'], limit: 1 });
          assert.ok(page.last >= after, `last ${page.last} does not go back from ${after}`);
          seen.push(...positionsOf(page.events));
          after = page.last;
        }
        assert.deepEqual(seen, [1, 4]);
        assert.equal(after, 5);
      });

      it('returns events with recipients whatever the topic filter, with their recipients', async (t) => {
        const store = await fresh(t);
        await store.append([event('audit.logged')], { recipients: ['auditor'] });
        await store.append([event('system.notice')], { recipients: 'all' });
        await store.append([event('orders.created'), event('payments.received')]);
        const { events: read } = await store.readAll({ topics: ['orders.created'] });
        assert.deepEqual(positionsOf(read), [1, 2, 3]);
        assert.deepEqual(read.map((row) => row.recipients), [['auditor'], 'all', undefined]);
        assert.deepEqual((await store.getEvent(read[0]!.event.id))?.recipients, ['auditor']);
      });

      it('rejects an invalid pattern with BUSBAR_ERR_INVALID_PATTERN', async (t) => {
        const store = await fresh(t);
        await store.append([event()]);
        for (const pattern of ['orders..created', 'orders.>.eu', '', 'orders.cre ated']) {
          await rejectsWith(
            () => store.readAll({ topics: [pattern] }),
            'BUSBAR_ERR_INVALID_PATTERN',
            `pattern ${JSON.stringify(pattern)}`,
          );
        }
      });

      it('rejects a negative or fractional after or limit with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
        const store = await fresh(t);
        await rejectsWith(() => store.readAll({ after: -1 }), 'BUSBAR_ERR_INVALID_ARGUMENT', 'after -1');
        await rejectsWith(() => store.readAll({ limit: 1.5 }), 'BUSBAR_ERR_INVALID_ARGUMENT', 'limit 1.5');
      });
    });

    describe('readStream', () => {
      it('reads a stream forward with its versions, its name and global positions', async (t) => {
        const store = await fresh(t);
        const { first } = await twoStreams(store);
        const read = await store.readStream('account-1');
        assert.deepEqual(versionsOf(read), [1, 2, 3, 4, 5]);
        assert.deepEqual(positionsOf(read), [1, 3, 4, 6, 7]);
        assert.deepEqual(idsOf(read), first.map((e) => e.id));
        for (const row of read) {
          assert.equal(row.stream, 'account-1');
          assert.equal(row.event.sequence, row.position);
        }
        const all = (await store.readAll()).events;
        assert.deepEqual(
          all.map((row) => [row.stream, row.streamVersion]),
          [
            ['account-1', 1],
            ['account-2', 1],
            ['account-1', 2],
            ['account-1', 3],
            ['account-2', 2],
            ['account-1', 4],
            ['account-1', 5],
          ],
        );
      });

      it('reads a stream backward from its last event', async (t) => {
        const store = await fresh(t);
        await twoStreams(store);
        assert.deepEqual(await versionsIn(store, 'account-1', { direction: 'backward' }), [5, 4, 3, 2, 1]);
      });

      it('reads from a version, inclusive, in either direction', async (t) => {
        const store = await fresh(t);
        await twoStreams(store);
        assert.deepEqual(await versionsIn(store, 'account-1', { from: 3 }), [3, 4, 5]);
        assert.deepEqual(await versionsIn(store, 'account-1', { from: 3, direction: 'backward' }), [3, 2, 1]);
        assert.deepEqual(await store.readStream('account-1', { from: 6 }), []);
      });

      it('reads at most limit events', async (t) => {
        const store = await fresh(t);
        await twoStreams(store);
        const backward = 'backward';
        assert.deepEqual(await versionsIn(store, 'account-1', { limit: 2 }), [1, 2]);
        assert.deepEqual(await versionsIn(store, 'account-1', { limit: 2, direction: backward }), [5, 4]);
        assert.deepEqual(await versionsIn(store, 'account-1', { from: 2, limit: 2 }), [2, 3]);
        assert.deepEqual(await versionsIn(store, 'account-1', { from: 4, limit: 2, direction: backward }), [4, 3]);
      });

      it('reads an unknown stream as empty at version 0', async (t) => {
        const store = await fresh(t);
        await twoStreams(store);
        assert.deepEqual(await store.readStream('account-3'), []);
        assert.deepEqual(await store.readStream('account-3', { direction: 'backward' }), []);
        assert.equal(await store.streamVersion('account-3'), 0);
      });

      it('rejects an unknown direction or a negative from with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
        const store = await fresh(t);
        await rejectsWith(
          () => store.readStream('account-1', { direction: 'sideways' as never }),
          'BUSBAR_ERR_INVALID_ARGUMENT',
        );
        await rejectsWith(() => store.readStream('account-1', { from: -1 }), 'BUSBAR_ERR_INVALID_ARGUMENT');
      });
    });

    describe('positionAt', () => {
      it('finds the last position recorded before a time', async (t) => {
        const store = await fresh(t);
        assert.equal(await store.positionAt(new Date()), 0);
        await store.append(events(2));
        await sleep(20);
        const between = new Date();
        await sleep(20);
        const later = event();
        await store.append([later]);
        assert.equal(await store.positionAt(new Date(0)), 0);
        assert.equal(await store.positionAt(between), 2);
        assert.equal(await store.positionAt(new Date(Date.now() + 60_000)), 3);
        const { events: fromThen } = await store.readAll({ after: await store.positionAt(between) });
        assert.deepEqual(idsOf(fromThen), [later.id]);
        // An event recorded exactly at the time is not before it.
        const { recordedAt } = (await store.getEvent(later.id))!;
        assert.equal(await store.positionAt(new Date(recordedAt)), 2);
      });
    });

    describe('retention', () => {
      it('keeps only the newest maxCount events of a stream', async (t) => {
        const store = await fresh(t);
        const { first, second } = await twoStreams(store);
        await store.setStreamMetadata('account-1', { maxCount: 2 });
        assert.deepEqual(await versionsIn(store, 'account-1'), [4, 5]);
        assert.deepEqual(positionsOf((await store.readAll()).events), [2, 5, 6, 7]);
        assert.equal(await store.getEvent(first[0]!.id), undefined);
        assert.equal(await store.getEvent(first[2]!.id), undefined);
        assert.equal((await store.getEvent(first[3]!.id))?.position, 6);
        assert.equal((await store.getEvent(second[0]!.id))?.position, 2);
        assert.equal(await store.streamVersion('account-1'), 5);
        assert.equal(await store.head(), 7);
        await store.appendToStream('account-1', [event()], { expectedVersion: 5 });
        assert.deepEqual(await versionsIn(store, 'account-1'), [5, 6]);
        assert.deepEqual(positionsOf((await store.readAll({ after: 2, limit: 2 })).events), [5, 7]);
      });

      it('drops the versions below truncateBefore', async (t) => {
        const store = await fresh(t);
        const { first } = await twoStreams(store);
        await store.setStreamMetadata('account-1', { truncateBefore: 3 });
        assert.deepEqual(await versionsIn(store, 'account-1'), [3, 4, 5]);
        assert.deepEqual(await versionsIn(store, 'account-1', { direction: 'backward' }), [5, 4, 3]);
        assert.deepEqual(positionsOf((await store.readAll()).events), [2, 4, 5, 6, 7]);
        assert.equal(await store.getEvent(first[1]!.id), undefined);
        assert.equal(await store.streamVersion('account-1'), 5);
        assert.deepEqual(await versionsIn(store, 'account-2'), [1, 2]);
      });

      it('drops events older than maxAge seconds', async (t) => {
        const store = await fresh(t);
        await store.setStreamMetadata('account-1', { maxAge: 1 });
        const old = events(2);
        await store.appendToStream('account-1', old);
        await store.append([event()]);
        await sleep(1100);
        assert.deepEqual(await store.readStream('account-1'), []);
        assert.equal(await store.getEvent(old[0]!.id), undefined);
        assert.deepEqual(positionsOf((await store.readAll()).events), [3]);
        const recent = event();
        await store.appendToStream('account-1', [recent], { expectedVersion: 2 });
        assert.deepEqual(idsOf(await store.readStream('account-1')), [recent.id]);
        assert.deepEqual(positionsOf((await store.readAll()).events), [3, 4]);
        assert.equal(await store.getEvent(old[1]!.id), undefined);
        assert.equal(await store.streamVersion('account-1'), 3);
      });

      it('round-trips stream metadata and reads none for a stream without it', async (t) => {
        const store = await fresh(t);
        assert.deepEqual(await store.streamMetadata('account-1'), {});
        const metadata = { maxCount: 100, maxAge: 86_400, truncateBefore: 3 };
        await store.setStreamMetadata('account-1', metadata);
        assert.deepEqual(await store.streamMetadata('account-1'), metadata);
        assert.deepEqual(await store.streamMetadata('account-2'), {});
        assert.equal(await store.streamVersion('account-1'), 0);
      });

      it('rejects a negative or fractional bound with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
        const store = await fresh(t);
        await rejectsWith(
          () => store.setStreamMetadata('account-1', { maxCount: -1 }),
          'BUSBAR_ERR_INVALID_ARGUMENT',
        );
        await rejectsWith(
          () => store.setStreamMetadata('account-1', { maxAge: 0.5 }),
          'BUSBAR_ERR_INVALID_ARGUMENT',
        );
        assert.deepEqual(await store.streamMetadata('account-1'), {});
      });
    });

    describe('checkpoints', () => {
      it('loads no checkpoint for a name never saved', async (t) => {
        const store = await fresh(t);
        assert.equal(await store.loadCheckpoint('projector'), undefined);
      });

      it('loads the position saved last under each name', async (t) => {
        const store = await fresh(t);
        await store.saveCheckpoint('projector', 5);
        await store.saveCheckpoint('mailer', 0);
        assert.equal(await store.loadCheckpoint('projector'), 5);
        assert.equal(await store.loadCheckpoint('mailer'), 0);
        await store.saveCheckpoint('projector', 9);
        assert.equal(await store.loadCheckpoint('projector'), 9);
        // A replay rewinds a subscription.
        await store.saveCheckpoint('projector', 2);
        assert.equal(await store.loadCheckpoint('projector'), 2);
      });

      it('rejects a checkpoint position that is not an integer >= 0 with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
        const store = await fresh(t);
        for (const position of [-1, 1.5, Number.NaN]) {
          await rejectsWith(
            () => store.saveCheckpoint('projector', position),
            'BUSBAR_ERR_INVALID_ARGUMENT',
            `position ${position}`,
          );
        }
        assert.equal(await store.loadCheckpoint('projector'), undefined);
      });

      itKeeps('keeps checkpoints across a reopen', async (t) => {
        const subject = await openSubject(t);
        assert.ok(subject.reopen, 'a persistent store under test must come with reopen()');
        await subject.store.saveCheckpoint('projector', 42);
        const store = await reopened(t, subject);
        assert.equal(await store.loadCheckpoint('projector'), 42);
        assert.equal(await store.loadCheckpoint('mailer'), undefined);
      });
    });

    describe('dead letters', () => {
      it('adds, lists and removes dead letters', async (t) => {
        const store = await fresh(t);
        assert.deepEqual(await store.listDeadLetters(), []);
        const first = deadLetter('dl-1', event(), 1, 'BUSBAR_ERR_HANDLER_TIMEOUT');
        const payment = event('payments.received', undefined, { amount: 12.5, tags: ['x'] });
        const second = deadLetter('dl-2', payment, 2);
        await store.addDeadLetter(first);
        await store.addDeadLetter(second);
        assert.deepEqual((await store.listDeadLetters()).sort(byId), [first, second]);
        assert.equal(await store.removeDeadLetter('dl-1'), true);
        assert.equal(await store.removeDeadLetter('dl-1'), false);
        assert.equal(await store.removeDeadLetter('dl-unknown'), false);
        assert.deepEqual(await store.listDeadLetters(), [second]);
      });

      itKeeps('keeps dead letters across a reopen', async (t) => {
        const subject = await openSubject(t);
        assert.ok(subject.reopen, 'a persistent store under test must come with reopen()');
        const letter = deadLetter('dl-1', event(), 1, 'E_SMTP');
        await subject.store.addDeadLetter(letter);
        const store = await reopened(t, subject);
        assert.deepEqual(await store.listDeadLetters(), [letter]);
        assert.equal(await store.removeDeadLetter('dl-1'), true);
      });
    });

    describe('processed ids', () => {
      it('marks an id processed once per consumer', async (t) => {
        const store = await fresh(t);
        assert.equal(await store.markProcessed('mailer', 'evt-1'), true);
        assert.equal(await store.markProcessed('mailer', 'evt-1'), false);
        assert.equal(await store.markProcessed('billing', 'evt-1'), true);
        assert.equal(await store.markProcessed('mailer', 'evt-2'), true);
      });

      it('records ids marked inside a transaction that commits', async (t) => {
        const store = await fresh(t);
        const result = await store.transaction(async (transaction) => {
          assert.equal(await store.markProcessed('mailer', 'evt-1', transaction), true);
          assert.equal(await store.markProcessed('mailer', 'evt-1', transaction), false);
          return 'sent';
        });
        assert.equal(result, 'sent');
        assert.equal(await store.markProcessed('mailer', 'evt-1'), false);
      });

      it('forgets ids marked inside a transaction that throws, and rethrows its error', async (t) => {
        const store = await fresh(t);
        const failure = new Error('handler failed');
        await assert.rejects(
          store.transaction(async (transaction) => {
            assert.equal(await store.markProcessed('mailer', 'evt-1', transaction), true);
            throw failure;
          }),
          (error) => error === failure,
        );
        assert.equal(await store.markProcessed('mailer', 'evt-1'), true);
      });

      it('lets only one of two concurrent transactions mark the same id', async (t) => {
        const store = await fresh(t);
        const handle = (): Promise<boolean> =>
          store.transaction(async (transaction) => {
            const first = await store.markProcessed('mailer', 'evt-1', transaction);
            await sleep(20);
            return first;
          });
        assert.deepEqual((await Promise.all([handle(), handle()])).sort(), [false, true]);
      });

      itKeeps('keeps processed ids across a reopen', async (t) => {
        const subject = await openSubject(t);
        assert.ok(subject.reopen, 'a persistent store under test must come with reopen()');
        const { store: before } = subject;
        await before.markProcessed('mailer', 'evt-1');
        await before.transaction((transaction) => before.markProcessed('mailer', 'evt-2', transaction));
        const store = await reopened(t, subject);
        assert.equal(await store.markProcessed('mailer', 'evt-1'), false);
        assert.equal(await store.markProcessed('mailer', 'evt-2'), false);
      });
    });

    describe('waitForAppend', () => {
      it('resolves at once when the head is already past the position', async (t) => {
        const store = await fresh(t);
        await store.append(events(2));
        assert.equal(await settlesWithin(store.waitForAppend(0), 500), true);
        assert.equal(await settlesWithin(store.waitForAppend(1), 500), true);
      });

      it('resolves after a later append, and not before', async (t) => {
        const store = await fresh(t);
        await store.append([event()]);
        const waiting = store.waitForAppend(1);
        assert.equal(await settlesWithin(waiting, 30), false, 'still waiting with nothing appended');
        await store.append([event()]);
        assert.equal(await settlesWithin(waiting, 1000), true, 'woken by append');
        const waitingForStream = store.waitForAppend(2);
        await store.appendToStream('account-1', [event()]);
        assert.equal(await settlesWithin(waitingForStream, 1000), true, 'woken by appendToStream');
      });

      it('resolves when its signal aborts', async (t) => {
        const store = await fresh(t);
        const controller = new AbortController();
        const waiting = store.waitForAppend(0, controller.signal);
        assert.equal(await settlesWithin(waiting, 30), false, 'still waiting before the abort');
        controller.abort();
        assert.equal(await settlesWithin(waiting, 1000), true, 'released by the abort');
        await waiting;
        const aborted = store.waitForAppend(0, AbortSignal.abort());
        assert.equal(await settlesWithin(aborted, 500), true, 'an aborted signal returns at once');
      });
    });

    describe('concurrent writers', () => {
      it('lets exactly one of 20 concurrent appends at the same expected version through', async (t) => {
        const store = await fresh(t);
        await store.appendToStream('account-1', events(2));
        const contenders = events(20);
        const outcomes = await Promise.allSettled(
          contenders.map((one) => store.appendToStream('account-1', [one], { expectedVersion: 2 })),
        );
        const winners = contenders.filter((_, i) => outcomes[i]!.status === 'fulfilled');
        assert.equal(winners.length, 1, 'one append succeeds');
        for (const outcome of outcomes) {
          if (outcome.status === 'fulfilled') assert.deepEqual(outcome.value, { positions: [3], version: 3 });
          else assertConcurrencyError(outcome.reason, 'account-1', 2, 3);
        }
        assert.equal(await store.head(), 3);
        assert.deepEqual(idsOf(await store.readStream('account-1', { from: 3 })), [winners[0]!.id]);
      });

      it('lets exactly one of 10 concurrent no_stream appends create the stream', async (t) => {
        const store = await fresh(t);
        const outcomes = await Promise.allSettled(
          events(10).map((one) => store.appendToStream('account-1', [one], { expectedVersion: 'no_stream' })),
        );
        assert.equal(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') assertConcurrencyError(outcome.reason, 'account-1', 'no_stream', 1);
        }
        assert.equal(await store.streamVersion('account-1'), 1);
        assert.equal(await store.head(), 1);
      });

      it('gives 200 concurrent appends the distinct positions 1 to 200', async (t) => {
        const store = await fresh(t);
        const written = events(200);
        const results = await Promise.all(written.map((one) => store.append([one])));
        assert.deepEqual(results.flat().sort((a, b) => a - b), span(1, 200));
        assert.equal(await store.head(), 200);
        const { events: read } = await store.readAll();
        assert.deepEqual(positionsOf(read), span(1, 200));
        written.forEach((one, i) => assert.equal(read[results[i]![0]! - 1]!.event.id, one.id));
      });

      it('shows a live reader every event exactly once, in position order, while 8 writers append', async (t) => {
        const store = await fresh(t);
        const written = new Map<string, number>();
        const writer = async (w: number): Promise<void> => {
          for (let i = 0; i < 50; i++) {
            if (i % 5 === 0) {
              const batch = events(3, `writers.w${w}`);
              const positions = await store.append(batch);
              positions.forEach((position, j) => written.set(batch[j]!.id, position));
            } else if (i % 5 === 1) {
              const one = event(`writers.w${w}`);
              const { positions } = await store.appendToStream(`writer-${w}`, [one]);
              written.set(one.id, positions[0]!);
            } else {
              const one = event(`writers.w${w}`);
              written.set(one.id, (await store.append([one]))[0]!);
            }
          }
        };
        const total = 8 * (10 * 3 + 40);
        let writing = true;
        const writers = Promise.all(span(1, 8).map(writer)).finally(() => {
          writing = false;
        });
        // Awaited after the reader; handled now so that a failing reader leaves no unhandled rejection.
        writers.catch(() => undefined);
        const seen: LoggedEvent[] = [];
        const deadline = Date.now() + 15_000;
        let after = 0;
        for (;;) {
          assert.ok(Date.now() < deadline, `the reader saw ${seen.length} of ${total} events in time`);
          const page = await store.readAll({ after, limit: 64 });
          for (const row of page.events) {
            const previous = seen.at(-1)?.position ?? 0;
            assert.ok(row.position > previous, `position ${row.position} read after ${previous}`);
            seen.push(row);
          }
          after = page.last;
          if (page.events.length > 0) continue;
          // The writers are done and nothing is left past the cursor: the reader has seen all it will.
          if (!writing && after >= (await store.head())) break;
          // The timer keeps the loop going, and the deadline checked, should the store never wake it.
          await Promise.race([store.waitForAppend(after, AbortSignal.timeout(250)), sleep(300)]);
        }
        await writers;
        assert.equal(written.size, total);
        assert.deepEqual(positionsOf(seen), span(1, total));
        assert.deepEqual(new Map(seen.map((row) => [row.event.id, row.position])), written);
      });
    });

    describe('hostile input', () => {
      const hostileStreams = [
        "'; DROP TABLE events; --",
        'a"b',
        "a'b",
        'back\\slash',
        '%',
        '_',
        'with space and\ttab',
        'ストリーム-🚌-ñ',
        's'.repeat(256),
      ];

      it('round-trips stream ids with quotes, SQL, wildcards and unicode, each a stream of its own', async (t) => {
        const store = await fresh(t);
        for (const [i, stream] of hostileStreams.entries()) {
          const result = await store.appendToStream(stream, [event()], { expectedVersion: 'no_stream' });
          assert.deepEqual(result, { positions: [i + 1], version: 1 }, stream);
          await store.setStreamMetadata(stream, { maxCount: 5 });
        }
        for (const [i, stream] of hostileStreams.entries()) {
          const read = await store.readStream(stream);
          assert.deepEqual(
            read.map((row) => [row.stream, row.streamVersion, row.position]),
            [[stream, 1, i + 1]],
            stream,
          );
          assert.equal(await store.streamVersion(stream), 1, stream);
          assert.deepEqual(await store.streamMetadata(stream), { maxCount: 5 }, stream);
        }
        assert.deepEqual(await store.readStream('a'), []);
        assert.equal(await store.head(), hostileStreams.length);
        assert.deepEqual(await store.append([event()]), [hostileStreams.length + 1]);
      });

      it('rejects a stream id of 257 characters with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
        const store = await fresh(t);
        const long = 's'.repeat(257);
        const invalid = 'BUSBAR_ERR_INVALID_ARGUMENT';
        await rejectsWith(() => store.appendToStream(long, [event()]), invalid, 'appendToStream');
        await rejectsWith(() => store.readStream(long), invalid, 'readStream');
        await rejectsWith(() => store.streamVersion(long), invalid, 'streamVersion');
        await rejectsWith(() => store.setStreamMetadata(long, { maxCount: 1 }), invalid, 'setStreamMetadata');
        assert.equal(await store.head(), 0);
      });

      it('rejects an empty stream id with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
        const store = await fresh(t);
        const invalid = 'BUSBAR_ERR_INVALID_ARGUMENT';
        await rejectsWith(() => store.appendToStream('', [event()]), invalid, 'appendToStream');
        await rejectsWith(() => store.readStream(''), invalid, 'readStream');
        await rejectsWith(() => store.streamVersion(''), invalid, 'streamVersion');
        assert.equal(await store.head(), 0);
        assert.deepEqual(await store.append([event()]), [1]);
      });

      it('round-trips hostile event ids, checkpoint names, consumer names and dead-letter ids', async (t) => {
        const store = await fresh(t);
        const sql = "x'); DELETE FROM events; --";
        const hostile = event('orders.created', { id: sql, subject: sql });
        assert.deepEqual(await store.append([hostile]), [1]);
        assert.deepEqual((await store.getEvent(sql))?.event, stored(hostile, 1));
        await store.saveCheckpoint(sql, 1);
        assert.equal(await store.loadCheckpoint(sql), 1);
        assert.equal(await store.loadCheckpoint("x'"), undefined);
        assert.equal(await store.markProcessed('"; --', sql), true);
        assert.equal(await store.markProcessed('"; --', sql), false);
        const letter = deadLetter(sql, hostile, 1, sql);
        await store.addDeadLetter(letter);
        assert.deepEqual(await store.listDeadLetters(), [letter]);
        assert.equal(await store.removeDeadLetter(sql), true);
        assert.deepEqual(idsOf((await store.readAll()).events), [sql]);
      });

      it('rejects empty or over-long checkpoint and consumer names with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
        const store = await fresh(t);
        const invalid = 'BUSBAR_ERR_INVALID_ARGUMENT';
        for (const bad of ['', 'n'.repeat(257)]) {
          await rejectsWith(() => store.saveCheckpoint(bad, 1), invalid, 'saveCheckpoint');
          await rejectsWith(() => store.loadCheckpoint(bad), invalid, 'loadCheckpoint');
          await rejectsWith(() => store.markProcessed(bad, 'evt-1'), invalid, 'markProcessed');
        }
      });

      it('stores data with NUL characters or lone surrogates, or refuses it with a clear code, keeping positions gap-free', async (t) => {
        const store = await fresh(t);
        for (const text of ['a\u0000b', 'x\ud800y', '\udfff']) {
          const hostile = event('notes.added', undefined, { text, [text]: text });
          let position: number | undefined;
          try {
            [position] = await store.append([hostile]);
          } catch (error) {
            const clear = ['BUSBAR_ERR_INVALID_EVENT', 'BUSBAR_ERR_INVALID_ARGUMENT'];
            assert.ok(error instanceof BusbarError && clear.includes(error.code), `refused with ${String(error)}`);
          }
          if (position !== undefined) {
            assert.deepEqual((await store.getEvent(hostile.id))?.event, stored(hostile, position));
          }
        }
        const [next] = await store.append([event()]);
        assert.equal(next, await store.head());
        assert.deepEqual(positionsOf((await store.readAll()).events), span(1, next!));
      });
    });

    describe('a closed store', () => {
      it('rejects every operation with BUSBAR_ERR_CLOSED', async (t) => {
        const store = await fresh(t);
        const one = event();
        await store.append([one]);
        await store.close();
        const operations: Record<string, () => Promise<unknown>> = {
          append: () => store.append([event()]),
          appendToStream: () => store.appendToStream('account-1', [event()]),
          readAll: () => store.readAll(),
          readStream: () => store.readStream('account-1'),
          head: () => store.head(),
          positionAt: () => store.positionAt(new Date()),
          streamVersion: () => store.streamVersion('account-1'),
          getEvent: () => store.getEvent(one.id),
          setStreamMetadata: () => store.setStreamMetadata('account-1', { maxCount: 1 }),
          streamMetadata: () => store.streamMetadata('account-1'),
          loadCheckpoint: () => store.loadCheckpoint('projector'),
          saveCheckpoint: () => store.saveCheckpoint('projector', 1),
          addDeadLetter: () => store.addDeadLetter(deadLetter('dl-1', one, 1)),
          listDeadLetters: () => store.listDeadLetters(),
          removeDeadLetter: () => store.removeDeadLetter('dl-1'),
          markProcessed: () => store.markProcessed('mailer', one.id),
          transaction: () => store.transaction(async () => 'ran'),
        };
        for (const [operation, call] of Object.entries(operations)) {
          await rejectsWith(call, 'BUSBAR_ERR_CLOSED', operation);
        }
      });

      it('releases readers waiting for an append when it closes', async (t) => {
        const store = await fresh(t);
        const waiting = store.waitForAppend(0);
        assert.equal(await settlesWithin(waiting, 30), false);
        await store.close();
        assert.equal(await settlesWithin(waiting, 1000), true, 'the waiter is released');
        // Released either way: resolved, or rejected as closed.
        await waiting.catch((error: unknown) => assert.equal((error as BusbarError).code, 'BUSBAR_ERR_CLOSED'));
      });

      it('closes twice without error', async (t) => {
        const store = await fresh(t);
        await store.close();
        await store.close();
      });
    });
  });
}
