// Stores: one contract, three stores. The same calls run on the memory
// store, a SQLite file and PostgreSQL; then what only SQLite (group commit,
// schema versions) and only PostgreSQL (the outbox) add.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { BusbarError, ConcurrencyError, createEventId, parseCloudEvent } from '../src/index.ts';
import { createMemoryStore, type EventStore } from '../src/store/index.ts';
import { createPostgresStore, type PostgresStore } from '../src/store/postgres/index.ts';
import { createSqliteStore } from '../src/store/sqlite/index.ts';

/** A new event, as a store takes it (a bus builds these for you). */
function event(type: string, data: unknown, id = createEventId()) {
  return parseCloudEvent({ specversion: '1.0', id, source: 'examples/stores', type, data, time: new Date().toISOString() });
}

/** Only the EventStore contract: this runs unchanged on every store. */
async function tour<T>(store: EventStore<T>): Promise<void> {
  // Positions start at 1 and have no gaps; an id already stored is not appended again.
  const created = event('order.created', { id: 'o-1' });
  assert.deepEqual(await store.append([created, event('order.paid', { id: 'o-1' })]), [1, 2]);
  assert.deepEqual(await store.append([created]), [1]); // a retried append: the original position
  // Routing by name is kept with the event (the bus uses it for `to`).
  assert.deepEqual(await store.append([event('order.refunded', { id: 'o-1' })], { recipients: ['billing'] }), [3]);

  // Streams: each append states the version it expects.
  const opened = await store.appendToStream('account-1', [event('account.opened', { owner: 'Ada' })], {
    expectedVersion: 'no_stream',
  });
  assert.deepEqual(opened, { positions: [4], version: 1 });
  await assert.rejects(
    store.appendToStream('account-1', [event('account.opened', { owner: 'Eve' })], { expectedVersion: 'no_stream' }),
    (error) => error instanceof ConcurrencyError && error.actual === 1,
  );
  const deposits = [10, 20, 30].map((amount) => event('account.deposited', { amount }));
  assert.deepEqual(await store.appendToStream('account-1', deposits, { expectedVersion: 1 }), {
    positions: [5, 6, 7],
    version: 4,
  });

  // readAll pages forward; `last` is where the next page starts.
  const page = await store.readAll({ limit: 3 });
  assert.deepEqual(page.events.map((logged) => logged.position), [1, 2, 3]);
  assert.equal(page.last, 3);
  const next = await store.readAll({ after: page.last, limit: 3 });
  assert.deepEqual(next.events.map((logged) => [logged.stream, logged.streamVersion]), [
    ['account-1', 1],
    ['account-1', 2],
    ['account-1', 3],
  ]);
  // A topic filter keeps matches and events addressed by name; `last` moves past the rest.
  const accounts = await store.readAll({ topics: ['account.>'] });
  assert.deepEqual(accounts.events.map((logged) => logged.position), [3, 4, 5, 6, 7]);
  assert.deepEqual(accounts.events[0]!.recipients, ['billing']);
  assert.equal(accounts.last, 7);

  // Retention: keep the newest two events of the stream. Versions and
  // positions are never reused: the next event still gets position 8.
  await store.setStreamMetadata('account-1', { maxCount: 2 });
  const kept = await store.readStream('account-1');
  assert.deepEqual(kept.map((logged) => logged.streamVersion), [3, 4]);
  assert.equal(await store.streamVersion('account-1'), 4);
  assert.deepEqual(await store.append([event('order.shipped', { id: 'o-1' })]), [8]);

  // Checkpoints: where a named reader got to.
  assert.equal(await store.loadCheckpoint('projector'), undefined);
  await store.saveCheckpoint('projector', 8);
  assert.equal(await store.loadCheckpoint('projector'), 8);

  // Processed ids: true the first time a consumer marks an id, then false.
  assert.equal(await store.markProcessed('mailer', created.id), true);
  assert.equal(await store.markProcessed('mailer', created.id), false);
  // Inside a transaction the mark commits or rolls back with the rest.
  const paid = (await store.readAll({ after: 1, limit: 1 })).events[0]!.event;
  await assert.rejects(
    store.transaction(async (transaction) => {
      assert.equal(await store.markProcessed('mailer', paid.id, transaction), true);
      throw new Error('the mail server refused it');
    }),
    /refused/,
  );
  assert.equal(await store.markProcessed('mailer', paid.id), true); // the mark was rolled back

  // The live tail: waitForAppend resolves on the next commit past a position.
  const woken = store.waitForAppend(await store.head());
  await store.append([event('order.delivered', { id: 'o-1' })]);
  await woken;
}

const dir = mkdtempSync(join(tmpdir(), 'busbar-stores-'));
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `busbar_example_${process.pid}_${Date.now()}`;
const admin = new pg.Pool({ connectionString: url, max: 2 });
let postgres: PostgresStore | undefined;
try {
  // ---- The contract on each store -----------------------------------------
  const memory = createMemoryStore();
  await tour(memory);
  await memory.close();

  const sqlite = createSqliteStore({ path: join(dir, 'tour.db') });
  await tour(sqlite);
  await sqlite.close();

  postgres = await createPostgresStore({ connectionString: url, schema });
  await tour(postgres);

  // ---- SQLite: group commit and schema versions ---------------------------
  const fast = createSqliteStore({ path: join(dir, 'fast.db'), synchronous: 'normal' });
  const before = fast.commits;
  const positions = await Promise.all(
    Array.from({ length: 100 }, (_, i) => fast.append([event('reading.taken', { i })])),
  );
  assert.deepEqual(positions.flat(), Array.from({ length: 100 }, (_, i) => i + 1));
  console.log(`100 concurrent appends, ${fast.commits - before} SQLite commit(s)`);
  assert.ok(fast.commits - before < 100);
  // A file migrated by a newer Busbar is refused, never written to.
  await fast.transaction(async (db) => {
    db.exec('PRAGMA user_version = 99');
  });
  await fast.close();
  assert.throws(
    () => createSqliteStore({ path: join(dir, 'fast.db') }),
    (error) => error instanceof BusbarError && error.code === 'BUSBAR_ERR_STORE_SCHEMA',
  );

  // ---- PostgreSQL: the outbox ----------------------------------------------
  // The order row and its event commit together, on the caller's connection.
  const orders = `${pg.escapeIdentifier(schema)}.orders`;
  await admin.query(`CREATE TABLE ${orders} (id text PRIMARY KEY)`);
  const client = await admin.connect();
  try {
    const head = await postgres.head();
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${orders} (id) VALUES ('o-2')`);
    assert.deepEqual(await postgres.appendWithin(client, [event('order.created', { id: 'o-2' })]), [head + 1]);
    // Until the transaction ends it holds the append lock: other appends
    // wait, so no reader can ever see position head + 2 without head + 1.
    let appended: readonly number[] | undefined;
    const other = postgres.append([event('order.created', { id: 'o-3' })]).then((done) => (appended = done));
    await sleep(50);
    assert.equal(appended, undefined);
    assert.equal(await postgres.head(), head); // not visible before the commit
    await client.query('ROLLBACK'); // no order row, no event…
    await other;
    assert.deepEqual(appended, [head + 1]); // …and no hole in the positions
    assert.equal((await admin.query(`SELECT 1 FROM ${orders}`)).rowCount, 0);

    const woken = postgres.waitForAppend(head + 1);
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${orders} (id) VALUES ('o-2')`);
    await postgres.appendWithin(client, [event('order.created', { id: 'o-2' })]);
    await client.query('COMMIT'); // the row and the event; NOTIFY wakes the readers
    await woken;
    assert.equal(await postgres.head(), head + 2);
  } finally {
    client.release();
  }
} finally {
  await postgres?.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`).catch(() => {});
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
