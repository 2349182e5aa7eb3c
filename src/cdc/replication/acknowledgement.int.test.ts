import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createBus } from '../../core/bus.ts';
import type { BusbarEvent } from '../../core/event.ts';
import { createMemoryStore } from '../../store/memory/index.ts';
import {
  type CdcTestDatabase,
  confirmedLsn,
  currentLsn,
  dropAllSlots,
  gatedStore,
  startCdcDatabase,
  storedChanges,
  waitFor,
} from '../cdc-harness.fixture.ts';
import type { CapturedTransaction, ChangeData } from '../change.ts';
import type { PostgresCdcOptions } from '../cdc-options.ts';
import { createPostgresCdc } from '../postgres-cdc.ts';
import { createReplicationSource, type ReplicationSourceOptions } from './replication-source.ts';

let db: CdcTestDatabase;

before(async () => {
  db = await startCdcDatabase();
});

afterEach(async () => {
  await Promise.all([...running].map((cdc) => cdc.close()));
  running.clear();
});

after(async () => {
  await dropAllSlots(db.admin);
  await db.stop();
});

const running = new Set<{ close(): Promise<void> }>();

/** A capture on `slot` that reports its position every 50 ms, so tests need not wait a second. */
function capture(slot: string, options: Partial<PostgresCdcOptions> & { source?: Partial<ReplicationSourceOptions> }) {
  let connected = 0;
  const seen: BusbarEvent<ChangeData>[] = [];
  const { source: sourceOptions, ...rest } = options;
  const cdc = createPostgresCdc({
    connectionString: db.connectionString,
    slotName: slot,
    publicationName: slot,
    retryInterval: 50,
    onWarning: () => {},
    source: createReplicationSource({
      connectionString: db.connectionString,
      slotName: slot,
      publicationName: slot,
      statusInterval: 50,
      onWarning: () => {},
      ...sourceOptions,
    }),
    ...rest,
    handlers: [{ onConnect: () => void connected++, onEvent: (event) => void seen.push(event) }],
  });
  running.add(cdc); // closed after each test, passed or failed
  return { cdc, seen, connected: () => connected };
}

describe('confirming positions to the server', () => {
  test('the slot position does not move while the store has not committed, and moves once it has', async () => {
    await db.admin.query(`CREATE TABLE gated (id int PRIMARY KEY)`);
    const gated = gatedStore();
    gated.release();
    const bus = createBus({ store: gated.store });
    const run = capture('gated', { tables: ['gated'], bus });
    run.cdc.start();
    await waitFor('streaming', () => run.connected() > 0);
    gated.block();
    const before = await currentLsn(db.admin);
    await db.admin.query(`INSERT INTO gated VALUES (1)`);
    const committed = await currentLsn(db.admin);
    await waitFor('the append to start', () => gated.appends > 0);
    await new Promise((resolve) => setTimeout(resolve, 500)); // ten status intervals
    assert.ok((await confirmedLsn(db.admin, 'gated')) <= before, 'confirmed past a change the store has not committed');
    assert.equal((await storedChanges(gated.store)).length, 0);
    gated.release();
    await waitFor('the slot to confirm the change', async () => (await confirmedLsn(db.admin, 'gated')) >= committed);
    assert.equal((await storedChanges(gated.store)).length, 1);
    await run.cdc.dropSlot();
    await bus.close();
  });

  test('an idle captured table does not pin WAL while another table is written', async () => {
    await db.admin.query(`CREATE TABLE idle_captured (id int PRIMARY KEY); CREATE TABLE busy_other (id serial PRIMARY KEY, v text)`);
    const bus = createBus({ store: createMemoryStore() });
    const run = capture('idle', { tables: ['idle_captured'], bus });
    run.cdc.start();
    await waitFor('streaming', () => run.connected() > 0);
    const start = await confirmedLsn(db.admin, 'idle');
    for (let i = 0; i < 20; i++) await db.admin.query(`INSERT INTO busy_other (v) SELECT repeat('x', 1000) FROM generate_series(1, 50)`);
    const written = await currentLsn(db.admin);
    await waitFor('the idle slot to confirm past the other table\'s writes', async () => (await confirmedLsn(db.admin, 'idle')) >= written, 15_000);
    assert.ok((await confirmedLsn(db.admin, 'idle')) > start);
    assert.equal(run.seen.length, 0);
    await run.cdc.dropSlot();
    await bus.close();
  });
});

describe('slot health', () => {
  test('health reports lag in bytes and seconds while the store is stalled, and a slot nobody reads', async () => {
    await db.admin.query(`CREATE TABLE watched (id int PRIMARY KEY, v text)`);
    const gated = gatedStore();
    gated.release();
    const bus = createBus({ store: gated.store });
    const run = capture('watched', { tables: ['watched'], bus, watchdogInterval: 100 });
    run.cdc.start();
    await waitFor('streaming', () => run.connected() > 0);
    const caughtUp = await waitFor('a health check', () => run.cdc.status().health);
    assert.equal(caughtUp.walStatus, 'reserved');
    assert.equal(caughtUp.lagSeconds, 0);
    assert.deepEqual(caughtUp.warnings, []);
    assert.match(String(caughtUp.confirmedPosition), /^[0-9A-F]+\/[0-9A-F]+$/);
    gated.block();
    await db.admin.query(`INSERT INTO watched SELECT i, repeat('x', 100) FROM generate_series(1, 100) i`);
    const behind = await waitFor('lag to show', () => {
      const health = run.cdc.status().health;
      return health !== undefined && (health.lagSeconds ?? 0) > 0.2 && (health.lagBytes ?? 0) > 0 ? health : undefined;
    });
    assert.ok((behind.retainedBytes ?? 0) >= (behind.lagBytes ?? 0));
    gated.release();
    await run.cdc.close();
    // Another process looking at the slot nobody reads any more.
    const observer = createReplicationSource({ connectionString: db.connectionString, slotName: 'watched', publicationName: 'watched' });
    const forgotten = await observer.health();
    assert.equal(forgotten.lagSeconds, undefined);
    assert.ok(forgotten.warnings.some((warning) => /"watched" is not being read/.test(warning)), forgotten.warnings.join('\n'));
    await observer.drop();
    await observer.close();
    await bus.close();
  });
});

describe('restarting the reader', () => {
  test('a new reader resumes from the slot: nothing lost, the unconfirmed tail redelivered and stored once', async () => {
    await db.admin.query(`CREATE TABLE resumed (id int PRIMARY KEY, v text)`);
    const gated = gatedStore();
    gated.release();
    // One store outlives both readers, as a SQLite file or PostgreSQL store would.
    const firstBus = createBus({ store: gated.store });
    const first = capture('resume', { tables: ['resumed'], bus: firstBus });
    first.cdc.start();
    await waitFor('streaming', () => first.connected() > 0);
    for (let i = 1; i <= 20; i++) await db.admin.query(`INSERT INTO resumed VALUES ($1, 'first')`, [i]);
    await waitFor('20 stored', async () => (await storedChanges(gated.store)).length === 20);
    // The store stalls: these reach the reader but are not committed when it stops.
    gated.block();
    const appendsBefore = gated.appends;
    for (let i = 21; i <= 30; i++) await db.admin.query(`INSERT INTO resumed VALUES ($1, 'tail')`, [i]);
    await waitFor('the tail to reach the store', () => gated.appends > appendsBefore);
    await first.cdc.close();
    // Their appends complete after the reader confirmed what it had: the
    // store holds them, the slot does not know.
    gated.release();
    await firstBus.idle();
    await firstBus.close();
    for (let i = 31; i <= 40; i++) await db.admin.query(`INSERT INTO resumed VALUES ($1, 'while away')`, [i]);
    await db.admin.query(`UPDATE resumed SET v = 'updated while away' WHERE id = 5`);

    const secondBus = createBus({ store: gated.store });
    const second = capture('resume', { tables: ['resumed'], bus: secondBus });
    second.cdc.start();
    await waitFor('everything stored', async () => (await storedChanges(gated.store)).length === 41);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stored = await storedChanges(gated.store);
    assert.equal(stored.length, 41);
    assert.equal(new Set(stored.map((event) => event.id)).size, 41, 'each change stored once by id');
    const inserts = stored.filter((event) => event.data.action === 'INSERT');
    assert.deepEqual(inserts.map((event) => event.data.id), Array.from({ length: 40 }, (_, i) => i + 1), 'every key once, in order');
    assert.deepEqual(stored.at(-1)!.data.data, { id: 5, v: 'updated while away' });
    // The second reader saw the unconfirmed tail again: at-least-once into the store, once in it.
    assert.ok(second.seen.some((event) => event.data.id === 21), 'the tail was redelivered');
    assert.ok(!second.seen.some((event) => event.data.id === 1), 'confirmed changes were not');
    await second.cdc.dropSlot();
    await secondBus.close();
  });
});

describe('logical decoding messages', () => {
  test('pg_logical_emit_message reaches onMessage, in and outside transactions, without disturbing them', async () => {
    await db.admin.query(`CREATE TABLE messaged (id int PRIMARY KEY)`);
    const messages: string[] = [];
    const source = createReplicationSource({
      connectionString: db.connectionString,
      slotName: 'messaged',
      publicationName: 'messaged',
      onWarning: () => {},
      onMessage: (message) => messages.push(`${message.prefix}:${message.content.toString()}:${message.transactional}`),
    });
    await source.ensureFor([{ schema: 'public', name: 'messaged' }], { replicaIdentityFull: new Map() });
    const changes: unknown[] = [];
    const controller = new AbortController();
    let connected = false;
    const streaming = source.stream(
      { deliver: async (transaction: CapturedTransaction) => void changes.push(...transaction.changes.map((change) => change.id)) },
      controller.signal,
      () => (connected = true),
    );
    await waitFor('streaming', () => connected);
    await db.admin.query(`SELECT pg_logical_emit_message(false, 'busbar', 'heartbeat')`);
    await db.admin.query(`BEGIN; INSERT INTO messaged VALUES (1); SELECT pg_logical_emit_message(true, 'busbar', 'watermark'); INSERT INTO messaged VALUES (2); COMMIT`);
    await waitFor('both rows', () => changes.length === 2);
    controller.abort();
    await streaming;
    assert.deepEqual(messages, ['busbar:heartbeat:false', 'busbar:watermark:true']);
    assert.deepEqual(changes, [1, 2]);
    await source.drop();
    await source.close();
  });
});

describe('backpressure', () => {
  test('a slow sink pauses reading: changes in flight stay within the bound and all arrive in order', async () => {
    await db.admin.query(`CREATE TABLE pressed (id int PRIMARY KEY)`);
    const source = createReplicationSource({
      connectionString: db.connectionString,
      slotName: 'pressed',
      publicationName: 'pressed',
      maxInFlight: 50,
      statusInterval: 50,
      onWarning: () => {},
    });
    await source.ensureFor([{ schema: 'public', name: 'pressed' }], { replicaIdentityFull: new Map() });
    const received: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let chain = Promise.resolve();
    const sink = {
      deliver(transaction: CapturedTransaction): Promise<void> {
        inFlight += transaction.changes.length;
        maxInFlight = Math.max(maxInFlight, inFlight);
        chain = chain.then(async () => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          received.push(...transaction.changes.map((change) => change.id as number));
          inFlight -= transaction.changes.length;
        });
        return chain;
      },
    };
    const controller = new AbortController();
    let connected = false;
    const streaming = source.stream(sink, controller.signal, () => (connected = true));
    await waitFor('streaming', () => connected);
    // 600 single-row transactions, committed before the reader could keep up.
    await db.admin.query(`DO $$ BEGIN FOR i IN 1..600 LOOP INSERT INTO pressed VALUES (i); COMMIT; END LOOP; END $$`);
    await waitFor('all 600', () => received.length === 600, 20_000);
    controller.abort();
    await streaming;
    assert.deepEqual(received, Array.from({ length: 600 }, (_, i) => i + 1));
    assert.ok(maxInFlight <= 50, `at most 50 changes in flight, saw ${maxInFlight}`);
    await source.drop();
    await source.close();
  });
});
