import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import type { EventLog } from '../../core/event-log.ts';
import { createSqliteStore } from '../../store/sqlite/index.ts';
import { type CdcTestDatabase, dropAllSlots, startCdcDatabase, storedChanges, waitFor } from '../cdc-harness.fixture.ts';
import { assertReadsNeverStale, assertSameRows, replayByKey, snapshotCapture, stopCaptures, tableByKey } from './snapshot-test.fixture.ts';

let db: CdcTestDatabase;
let directory: string;
const children = new Set<ChildProcess>();

before(async () => {
  db = await startCdcDatabase();
  directory = mkdtempSync(join(tmpdir(), 'busbar-snapshot-'));
});

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await stopCaptures();
});

after(async () => {
  await dropAllSlots(db.admin);
  await db.stop();
  rmSync(directory, { recursive: true, force: true });
});

/** The snapshot's progress row as the database has it. */
async function progress(table: string): Promise<{ state: string; chunks: number; rows_done: string; snapshot_id: string } | undefined> {
  const { rows } = await db.admin.query(
    `SELECT state, chunks, rows_done::text, snapshot_id FROM busbar_replication.snapshots WHERE table_name = $1`,
    [table],
  );
  return rows[0];
}

async function caughtUp(store: EventLog, marker: string): Promise<void> {
  const { rows } = await db.admin.query(`INSERT INTO ${marker} DEFAULT VALUES RETURNING id`);
  const id = (rows[0] as { id: number }).id;
  await waitFor(`marker ${id}`, async () => (await storedChanges(store)).some((event) => event.data.table === marker && event.data.id === id), 30_000);
}

describe('a snapshot interrupted by a crash', () => {
  test('a capture process SIGKILLed half-way through a snapshot resumes from its last chunk, and the store holds each READ once', async () => {
    await db.admin.query(`CREATE TABLE crashed (id int PRIMARY KEY, v int NOT NULL, note text)`);
    await db.admin.query(`INSERT INTO crashed SELECT i, 0, 'initial' FROM generate_series(1, 20000) i`);
    await db.admin.query(`CREATE TABLE crashed_marker (id serial PRIMARY KEY)`);
    const path = join(directory, 'crash.db');
    const chunkSize = 200;
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, 'snapshot-child.fixture.ts'), db.connectionString, 'crashed', path, 'crashed', 'crashed_marker', String(chunkSize)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.add(child);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitFor('ten chunks done in the child', async () => ((await progress('crashed'))?.chunks ?? 0) >= 10, 30_000);
    child.kill('SIGKILL');
    await exited;
    const before = (await progress('crashed'))!;
    assert.equal(before.state, 'running', 'killed half-way');

    // Changes while no capture runs: in rows already read and rows not yet read.
    await db.admin.query(`UPDATE crashed SET v = v + 1, note = 'while down' WHERE id IN (1, 2, 19999, 20000)`);
    await db.admin.query(`DELETE FROM crashed WHERE id IN (3, 19998)`);
    await db.admin.query(`INSERT INTO crashed VALUES (20001, 0, 'while down')`);

    const store = createSqliteStore({ path });
    try {
      const run = snapshotCapture(db.connectionString, { slotName: 'crashed', publicationName: 'crashed', tables: ['crashed', 'crashed_marker'], store, snapshotChunkSize: chunkSize });
      run.cdc.start();
      const status = await run.settled('public.crashed');
      await caughtUp(store, 'crashed_marker');

      assert.equal(status.state, 'done');
      assert.equal(status.snapshotId, before.snapshot_id, 'the same snapshot, continued');
      const readsAfterRestart = run.seen.filter((event) => event.data.action === 'READ').length;
      const left = 20_000 - Number(before.rows_done);
      assert.ok(readsAfterRestart > 0 && readsAfterRestart <= left + chunkSize, `resumed, not restarted: ${readsAfterRestart} READs after the restart, ${left} rows were left`);
      const events = await storedChanges(store);
      const reads = assertReadsNeverStale(events, 'public', 'crashed');
      assert.ok(reads >= 19_990 && reads <= 20_000, `each row READ once (${reads})`);
      assert.equal(new Set(events.map((event) => event.id)).size, events.length, 'no event stored twice');
      assertSameRows(replayByKey(events, 'public', 'crashed'), await tableByKey(db.admin, 'crashed'));
      await run.stop();
    } finally {
      await store.close();
    }
  });

  test('a capture closed half-way through a snapshot continues with the next chunk when started again', async () => {
    await db.admin.query(`CREATE TABLE closed (id int PRIMARY KEY, v text)`);
    await db.admin.query(`INSERT INTO closed SELECT i, 'v' || i FROM generate_series(1, 3000) i`);
    const first = snapshotCapture(db.connectionString, {
      tables: ['closed'],
      snapshotChunkSize: 100,
      handlers: [{ onEvent: async (event) => void (event.data.index === 0 && (await new Promise((resolve) => setTimeout(resolve, 20)))) }],
    });
    first.cdc.start();
    await waitFor('five chunks', () => (first.cdc.status().snapshots[0]?.chunks ?? 0) >= 5);
    await first.cdc.close();
    const stoppedAt = (await progress('closed'))!;
    assert.equal(stoppedAt.state, 'running');

    const second = snapshotCapture(db.connectionString, {
      slotName: first.slotName,
      publicationName: first.slotName,
      tables: ['closed'],
      snapshotChunkSize: 100,
      store: first.store,
    });
    second.cdc.start();
    const status = await second.settled('public.closed');
    assert.equal(status.rowsDone, 3000);
    const reread = second.seen.filter((event) => event.data.action === 'READ').length;
    assert.ok(reread <= 3000 - Number(stoppedAt.rows_done) + 100, `continued after ${stoppedAt.rows_done} rows: ${reread} READs`);
    assert.equal(assertReadsNeverStale(await storedChanges(first.store), 'public', 'closed'), 3000);
    await second.stop();
    await first.bus.close();
  });
});
