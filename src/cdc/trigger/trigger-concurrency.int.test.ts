import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ChangeData } from '../change.ts';
import type { CaptureSource } from '../capture-source.ts';
import { type CaptureDatabase, openCaptureDatabase, RecordingSink, type RunningStream, startStream } from './trigger-test.fixture.ts';

const WRITERS = 8;
const TRANSACTIONS_PER_WRITER = 300; // about 2,000 changes per writer
const HOT_ROWS = 16;

let db: CaptureDatabase;
let app: string;
/** Unique, so killing "the reader" never hits another test file's. */
const READER = `reader_${process.pid}_${Date.now()}`;

before(async () => {
  db = await openCaptureDatabase();
  app = db.quotedApp;
  await db.admin.query(`
    CREATE TABLE ${app}.account (id int PRIMARY KEY, writer int NOT NULL, version int NOT NULL, note text);
    INSERT INTO ${app}.account SELECT g, 0, 0, 'hot' FROM generate_series(1, ${HOT_ROWS}) g;
  `);
});

after(async () => {
  await db?.cleanup();
});

/** What the writers committed and rolled back, to reconcile against. */
interface Ledger {
  committedInserts: Set<number>;
  rolledBackInserts: Set<number>;
  committedDeletes: Set<number>;
}

/**
 * One writer: transactions of 1-12 changes — inserts of its own rows, deletes
 * of some of them, and version bumps of shared hot rows (row-lock contention
 * between writers, so commit order matters per row); one in ten rolls back.
 */
async function write(writer: number, ledger: Ledger): Promise<void> {
  const client = await db.connect();
  const mine: number[] = [];
  let next = writer * 1_000_000;
  for (let t = 0; t < TRANSACTIONS_PER_WRITER; t++) {
    const inserted: number[] = [];
    const deleted: number[] = [];
    await client.query('BEGIN');
    const operations = 1 + ((t * 7 + writer) % 12);
    for (let op = 0; op < operations; op++) {
      const choice = (t * 31 + op * 17 + writer) % 10;
      if (choice < 6) {
        const id = ++next;
        await client.query(`INSERT INTO ${app}.account VALUES ($1, $2, 0, repeat('x', $3))`, [id, writer, (id % 50) * 20]);
        inserted.push(id);
      } else if (choice < 8 || mine.length === 0) {
        const hot = 1 + ((t + op + writer) % HOT_ROWS);
        await client.query(`UPDATE ${app}.account SET version = version + 1, writer = $2 WHERE id = $1`, [hot, writer]);
      } else {
        const id = mine.pop()!;
        await client.query(`DELETE FROM ${app}.account WHERE id = $1`, [id]);
        deleted.push(id);
      }
    }
    if (t % 10 === 3) {
      await client.query('ROLLBACK');
      for (const id of inserted) ledger.rolledBackInserts.add(id);
      mine.push(...deleted);
    } else {
      await client.query('COMMIT');
      for (const id of inserted) ledger.committedInserts.add(id);
      for (const id of deleted) ledger.committedDeletes.add(id);
      mine.push(...inserted);
    }
  }
}

/** Kills the reader's connection from the server side, as a crash or a network cut would. */
async function killReader(): Promise<number> {
  const { rowCount } = await db.admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
    [`busbar cdc ${READER}`],
  );
  return rowCount ?? 0;
}

test('8 writers with rollbacks and contended rows, a reader restarted and killed mid-run: every committed change exactly once, in commit order', async () => {
  const source: CaptureSource = db.source({ batchSize: 500, readerName: READER });
  await source.ensureFor([{ schema: db.app, name: 'account' }], { replicaIdentityFull: new Map() });
  const sink = new RecordingSink();
  const ledger: Ledger = { committedInserts: new Set(), rolledBackInserts: new Set(), committedDeletes: new Set() };
  const boundaries: number[] = []; // transactions received before each restart
  const writers = Promise.all(Array.from({ length: WRITERS }, (_, i) => write(i + 1, ledger)));

  let stream: RunningStream = startStream(source, sink);
  await stream.connected;
  await sink.until(() => sink.changes.length > 2000, 'the first changes');
  await stream.stop(); // a clean stop: the checkpoint is written
  boundaries.push(sink.transactions.length);
  await new Promise((resolve) => setTimeout(resolve, 300)); // writers keep writing meanwhile
  stream = startStream(source, sink);
  await stream.connected;
  await sink.until(() => sink.changes.length > 7000, 'more changes after the restart');
  assert.ok((await killReader()) >= 1, "the reader's connection was found and killed");
  await assert.rejects(stream.done, { code: 'BUSBAR_ERR_UNREACHABLE' });
  boundaries.push(sink.transactions.length);
  stream = startStream(source, sink);
  await stream.connected;
  await writers;

  const { rows: finalRows } = await db.admin.query<{ id: number; version: number }>(
    `SELECT id, version FROM ${app}.account WHERE id <= ${HOT_ROWS}`,
  );
  const expectedChanges = countCommittedChanges(ledger, finalRows);
  const unique = (): Map<string, ChangeData> => {
    const seen = new Map<string, ChangeData>();
    for (const change of sink.changes) seen.set(`${change.lsn}/${change.index}`, change);
    return seen;
  };
  await sink.until(() => unique().size >= expectedChanges, `all ${expectedChanges} committed changes`, 60_000);
  await stream.stop();

  // Redelivery may only happen after the kill, and a redelivered change is identical (same lsn, index, content).
  const firstSeen = new Map<string, { change: ChangeData; at: number }>();
  sink.transactions.forEach((transaction, at) => {
    for (const change of transaction.changes) {
      const key = `${change.lsn}/${change.index}`;
      const earlier = firstSeen.get(key);
      if (earlier === undefined) firstSeen.set(key, { change, at });
      else {
        assert.ok(earlier.at < boundaries[1]! && at >= boundaries[1]!, `only the kill may cause a redelivery (${key})`);
        assert.deepEqual(change, earlier.change, `a redelivered change is identical (${key})`);
      }
    }
  });
  assert.equal(firstSeen.size, expectedChanges, 'every committed change, once');

  // In commit order: positions never go back, except where the kill made the reader resume.
  let last = 0;
  sink.transactions.forEach((transaction, at) => {
    const position = transaction.position as number;
    if (at === boundaries[1]) last = Math.min(last, position - 1);
    assert.ok(position > last, `transaction ${position} after ${last}`);
    last = position;
    transaction.changes.forEach((change, index) => {
      assert.equal(change.index, index);
      assert.equal(change.last, index === transaction.changes.length - 1);
      assert.equal(change.lsn, `t:${position}`);
    });
  });

  // By key: inserts of committed transactions only, and each hot row's versions 1, 2, 3… in order.
  const changes = [...firstSeen.values()].sort((a, b) => a.at - b.at || a.change.index - b.change.index).map((each) => each.change);
  const insertedIds = changes.filter((change) => change.action === 'INSERT').map((change) => change.id as number);
  assert.deepEqual(new Set(insertedIds), ledger.committedInserts, 'exactly the committed inserts');
  for (const id of ledger.rolledBackInserts) assert.ok(!insertedIds.includes(id), `rolled-back row ${id} never arrives`);
  const deletedIds = changes.filter((change) => change.action === 'DELETE').map((change) => change.id as number);
  assert.deepEqual(new Set(deletedIds), ledger.committedDeletes);
  for (const { id, version } of finalRows) {
    const versions = changes.filter((change) => change.id === id).map((change) => change.data!.version);
    assert.deepEqual(versions, Array.from({ length: version }, (_, i) => i + 1), `hot row ${id} in commit order`);
  }

  // Acknowledged rows are pruned: once caught up, Busbar's tables are (nearly) empty.
  const restarted = startStream(source, new RecordingSink());
  await restarted.connected;
  await waitFor(async () => {
    const { rows } = await db.admin.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM ${quoted(db.busbarSchema)}.changes)::int AS n`,
    );
    return rows[0]!.n === 0;
  }, 'the change table to be pruned');
  await restarted.stop();
});

/** Committed changes: inserts + deletes + every committed version bump (final version of each hot row). */
function countCommittedChanges(ledger: Ledger, hotRows: readonly { version: number }[]): number {
  return ledger.committedInserts.size + ledger.committedDeletes.size + hotRows.reduce((sum, row) => sum + row.version, 0);
}

function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
