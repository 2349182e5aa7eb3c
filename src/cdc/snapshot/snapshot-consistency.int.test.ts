import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { type CdcTestDatabase, dropAllSlots, startCdcDatabase, storedChanges, waitFor } from '../cdc-harness.fixture.ts';
import { assertReadsNeverStale, assertSameRows, replayByKey, snapshotCapture, stopCaptures, tableByKey } from './snapshot-test.fixture.ts';

let db: CdcTestDatabase;
let writers: pg.Pool;

before(async () => {
  db = await startCdcDatabase();
  writers = new pg.Pool({ connectionString: db.connectionString, max: 4 });
  writers.on('error', () => {});
});

afterEach(stopCaptures);

after(async () => {
  await writers.end();
  await dropAllSlots(db.admin);
  await db.stop();
});

/**
 * One writer until `stop()`: single-row UPDATEs, DELETEs and upserts
 * (re-inserting deleted keys, adding new ones past the end) and now and then
 * a transaction doing all three, on random keys across the whole table.
 */
async function write(table: string, stop: () => boolean, range: number): Promise<number> {
  let writes = 0;
  const key = () => 1 + Math.floor(Math.random() * range);
  while (!stop()) {
    const choice = Math.random();
    if (choice < 0.45) await writers.query(`UPDATE ${table} SET v = v + 1, note = 'updated' WHERE id = $1`, [key()]);
    else if (choice < 0.65) await writers.query(`DELETE FROM ${table} WHERE id = $1`, [key()]);
    else if (choice < 0.9) {
      await writers.query(`INSERT INTO ${table} VALUES ($1, 0, 'inserted') ON CONFLICT (id) DO UPDATE SET v = ${table}.v + 1`, [key()]);
    } else {
      const client = await writers.connect();
      try {
        await client.query('BEGIN');
        await client.query(`UPDATE ${table} SET v = v + 1, note = 'in a transaction' WHERE id = $1`, [key()]);
        await client.query(`DELETE FROM ${table} WHERE id = $1`, [key()]);
        await client.query(`INSERT INTO ${table} VALUES ($1, 0, 'in a transaction') ON CONFLICT (id) DO NOTHING`, [key()]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }
    writes++;
  }
  return writes;
}

/** Writes a marker row and waits until the store holds it: everything committed before has arrived. */
async function caughtUp(run: ReturnType<typeof snapshotCapture>, marker: string): Promise<void> {
  const { rows } = await db.admin.query(`INSERT INTO ${marker} DEFAULT VALUES RETURNING id`);
  const id = (rows[0] as { id: number }).id;
  await waitFor(
    `marker ${id} to arrive`,
    async () => (await storedChanges(run.store)).some((event) => event.data.table === marker && event.data.id === id),
    30_000,
  );
}

describe('the initial snapshot under concurrent writes', () => {
  test('20,000 rows snapshotted while 4 writers update, delete and insert: the store replayed by key equals the table, and no READ is older than a change before it', async () => {
    await db.admin.query(`CREATE TABLE busy (id int PRIMARY KEY, v int NOT NULL, note text)`);
    await db.admin.query(`INSERT INTO busy SELECT i, 0, 'initial' FROM generate_series(1, 20000) i`);
    await db.admin.query(`CREATE TABLE marker (id serial PRIMARY KEY)`);
    const run = snapshotCapture(db.connectionString, { tables: ['busy', 'marker'], snapshotChunkSize: 500 });
    let stop = false;
    run.cdc.start();
    const writing = Promise.all([1, 2, 3, 4].map(() => write('busy', () => stop, 21_000)));
    let status;
    try {
      status = await run.settled('public.busy', 60_000);
    } finally {
      stop = true;
    }
    const writes = (await writing).reduce((sum, count) => sum + count, 0);
    await caughtUp(run, 'marker');

    assert.equal(status.state, 'done');
    assert.ok(status.chunks >= 40, `read in chunks of 500 (${status.chunks} chunks)`);
    const events = await storedChanges(run.store);
    const busy = events.filter((event) => event.data.table === 'busy');
    const firstRead = busy.findIndex((event) => event.data.action === 'READ');
    const lastRead = busy.findLastIndex((event) => event.data.action === 'READ');
    const during = busy.slice(firstRead, lastRead).filter((event) => event.data.action !== 'READ').length;
    assert.ok(during > 100, `the writers wrote during the snapshot (${during} stream changes between the first and last READ, ${writes} writes)`);

    assertSameRows(replayByKey(events, 'public', 'busy'), await tableByKey(db.admin, 'busy'));
    const reads = assertReadsNeverStale(events, 'public', 'busy');
    assert.ok(reads > 15_000 && reads <= 20_000, `most rows arrive as READ (${reads}); rows changed while their chunk was read come from the stream`);
    assert.equal(new Set(busy.filter((event) => event.data.action === 'READ').map((event) => event.data.lsn)).size, 1, 'one snapshot id');
    await run.stop();
  });

  test('ensureCdcFor a second table on a running capture snapshots it while the first keeps streaming', async () => {
    await db.admin.query(`CREATE TABLE streaming (id serial PRIMARY KEY, v int)`);
    await db.admin.query(`CREATE TABLE added (id int PRIMARY KEY, v int NOT NULL, note text)`);
    await db.admin.query(`INSERT INTO added SELECT i, 0, 'initial' FROM generate_series(1, 5000) i`);
    const run = snapshotCapture(db.connectionString, { tables: ['streaming'], snapshotChunkSize: 250 });
    run.cdc.start();
    await run.settled('public.streaming');
    let stop = false;
    const streamingWrites = (async () => {
      let count = 0;
      while (!stop) {
        await writers.query(`INSERT INTO streaming (v) VALUES ($1)`, [++count]);
      }
      return count;
    })();
    const addedWrites = write('added', () => stop, 5500);
    try {
      await waitFor('some streamed rows', async () => (await storedChanges(run.store)).length > 20);
      await run.cdc.ensureCdcFor('added');
      assert.equal(run.cdc.status().snapshots.find((each) => each.table === 'added')?.state !== undefined, true);
      await run.settled('public.added');
    } finally {
      stop = true;
    }
    const inserted = await streamingWrites;
    await addedWrites;
    await db.admin.query(`CREATE TABLE marker2 (id serial PRIMARY KEY)`);
    await run.cdc.ensureCdcFor('marker2');
    await caughtUp(run, 'marker2');

    const events = await storedChanges(run.store);
    const streamed = events.filter((event) => event.data.table === 'streaming');
    assert.deepEqual(streamed.map((event) => event.data.id), Array.from({ length: inserted }, (_, i) => i + 1), 'every streamed row once, in order');
    const firstRead = events.findIndex((event) => event.data.action === 'READ' && event.data.table === 'added');
    const lastRead = events.findLastIndex((event) => event.data.action === 'READ' && event.data.table === 'added');
    const interleaved = events.slice(firstRead, lastRead).filter((event) => event.data.table === 'streaming').length;
    assert.ok(interleaved > 0, 'the first table kept streaming during the second one’s snapshot');
    assertSameRows(replayByKey(events, 'public', 'added'), await tableByKey(db.admin, 'added'));
    assertReadsNeverStale(events, 'public', 'added');
    await run.stop();
  });
});
