import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import type { ChangeData } from '../change.ts';
import {
  type CaptureDatabase,
  idsOf,
  openCaptureDatabase,
  RecordingSink,
  type RunningStream,
  startStream,
} from './trigger-test.fixture.ts';

let db: CaptureDatabase;
let sink: RecordingSink;
let stream: RunningStream;
let app: string;
/** Advisory lock key the "gate" trigger waits on at commit: holding it pauses a committing transaction. */
const GATE_KEY = 4_242_001;

before(async () => {
  db = await openCaptureDatabase();
  app = db.quotedApp;
  await db.admin.query(`
    CREATE TABLE ${app}.person (id int PRIMARY KEY, age int);
    INSERT INTO ${app}.person VALUES (30, 0);
    -- Not captured: writing a row here makes the transaction wait at COMMIT
    -- (gate) or fail at COMMIT (trap), after all its captured changes.
    CREATE TABLE ${app}.gate (id int);
    CREATE FUNCTION ${app}.wait_at_gate() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_advisory_xact_lock(${GATE_KEY}); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER wait AFTER INSERT ON ${app}.gate DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION ${app}.wait_at_gate();
    CREATE TABLE ${app}.trap (id int);
    CREATE FUNCTION ${app}.spring() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'this transaction fails at commit'; END $$;
    CREATE CONSTRAINT TRIGGER spring AFTER INSERT ON ${app}.trap DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION ${app}.spring();
  `);
  const source = db.source();
  await source.ensureFor([{ schema: db.app, name: 'person' }], { replicaIdentityFull: new Map() });
  sink = new RecordingSink();
  stream = startStream(source, sink);
  await stream.connected;
});

after(async () => {
  await stream?.stop().catch(() => {});
  await db?.cleanup();
});

function arrived(id: number): boolean {
  return idsOf(sink.changes).includes(id);
}

function once(ids: readonly number[]): void {
  for (const id of ids) {
    assert.equal(idsOf(sink.changes).filter((each) => each === id).length, 1, `row ${id} arrives exactly once`);
  }
}

function positionOf(change: ChangeData): number {
  return Number(change.lsn.slice(2));
}

describe('trigger mode delivers in commit order and never skips a late commit', () => {
  test('transactions that commit in the opposite order of their first write arrive in commit order, each once', async () => {
    const first = await db.connect();
    const second = await db.connect();
    await first.query(`BEGIN; INSERT INTO ${app}.person VALUES (1, 1)`); // the smaller change id
    await second.query(`BEGIN; INSERT INTO ${app}.person VALUES (2, 2)`);
    await second.query('COMMIT');
    await sink.until(() => arrived(2), 'the second writer, committed first');
    // A "last seen id" cursor is past row 1's change now; row 1 must still come.
    await first.query('COMMIT');
    await sink.until(() => arrived(1), 'the first writer, committed last');
    const order = idsOf(sink.changes).filter((id) => id === 1 || id === 2);
    assert.deepEqual(order, [2, 1]);
    once([1, 2]);
  });

  test('a transaction paused while committing holds back no one, and arrives once it commits', async () => {
    const holder = await db.connect();
    const paused = await db.connect();
    await holder.query(`SELECT pg_advisory_lock(${GATE_KEY})`);
    const pausedPid = await pidOf(paused);
    await paused.query(`BEGIN; INSERT INTO ${app}.person VALUES (3, 3); INSERT INTO ${app}.gate VALUES (1)`);
    const commit = paused.query('COMMIT'); // waits at the gate, its change already written
    await waitUntilBlocked(pausedPid);
    await db.admin.query(`INSERT INTO ${app}.person VALUES (4, 4)`);
    await sink.until(() => arrived(4), 'the later transaction while the other is paused in its commit');
    assert.equal(arrived(3), false, 'the paused transaction has not committed, so it has not arrived');
    await holder.query(`SELECT pg_advisory_unlock(${GATE_KEY})`);
    await commit;
    await sink.until(() => arrived(3), 'the paused transaction once it committed');
    assert.deepEqual(idsOf(sink.changes).filter((id) => id === 3 || id === 4), [4, 3]);
    once([3, 4]);
  });

  test('a transaction that fails at commit delivers nothing and holds nothing up', async () => {
    const failing = await db.connect();
    await failing.query(`BEGIN; INSERT INTO ${app}.person VALUES (5, 5); INSERT INTO ${app}.trap VALUES (1)`);
    await assert.rejects(failing.query('COMMIT'), /fails at commit/);
    await db.admin.query(`INSERT INTO ${app}.person VALUES (6, 6)`);
    await sink.until(() => arrived(6), 'the transaction after the failed one');
    assert.equal(arrived(5), false, 'nothing from the failed transaction');
  });

  test("one row's changes are never reordered, even when the later writer began first", async () => {
    const early = await db.connect();
    const late = await db.connect();
    await late.query(`BEGIN; INSERT INTO ${app}.person VALUES (31, 31)`); // its first write comes first
    await early.query(`BEGIN; UPDATE ${app}.person SET age = 1 WHERE id = 30`);
    const latePid = await pidOf(late);
    const blocked = late.query(`UPDATE ${app}.person SET age = 2 WHERE id = 30`); // waits for the row lock
    await waitUntilBlocked(latePid);
    await early.query('COMMIT');
    await blocked;
    await late.query('COMMIT');
    await sink.until(() => arrived(31), 'both transactions');
    const row30 = sink.changes.filter((change) => change.id === 30);
    assert.deepEqual(row30.map((change) => change.data!.age), [1, 2], 'row 30 arrives as it was written: 1 then 2');
    assert.ok(positionOf(row30[0]!) < positionOf(row30[1]!));
    const lateTransaction = sink.transactions.find((transaction) => transaction.changes.some((change) => change.id === 31))!;
    assert.deepEqual(idsOf(lateTransaction.changes), [31, 30], 'the later transaction stays whole and in order');
  });
});

async function pidOf(session: pg.PoolClient): Promise<number> {
  const { rows } = await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

/** Resolves once the session `pid` waits for a lock another session holds. */
async function waitUntilBlocked(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { rows } = await db.admin.query<{ n: number }>('SELECT cardinality(pg_blocking_pids($1))::int AS n', [pid]);
    if (rows[0]!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`session ${pid} never started waiting for the lock`);
}
