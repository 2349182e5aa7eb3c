import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createPostgresStore, type PostgresStore } from './index.ts';
import { openTestStore, TEST_DATABASE_URL, type TestStore, testEvent } from './test-database.fixture.ts';

async function subjectFor(t: TestContext): Promise<TestStore> {
  const subject = await openTestStore();
  t.after(() => subject.cleanup());
  return subject;
}

/** Waits past `after` and reports whether a commit (not the safety timeout) ended the wait. */
async function wokenByCommit(store: PostgresStore, after: number, work: () => Promise<unknown>): Promise<boolean> {
  const safety = AbortSignal.timeout(5000);
  const waiting = store.waitForAppend(after, safety);
  await sleep(20);
  await work();
  await waiting;
  return !safety.aborted;
}

test('an append by another store on the schema wakes this store readers through NOTIFY', async (t) => {
  const subject = await subjectFor(t);
  const other = await subject.reopen();
  assert.equal(await wokenByCommit(other, 0, () => subject.store.append([testEvent()])), true);
  assert.equal(await wokenByCommit(subject.store, 1, () => other.appendToStream('s', [testEvent()])), true);
  assert.equal(await other.head(), 2);
});

test('a reader is not woken by an append that does not pass its position', async (t) => {
  const subject = await subjectFor(t);
  const other = await subject.reopen();
  await subject.store.append([testEvent(), testEvent()]);
  const controller = new AbortController();
  let woken = false;
  const waiting = other.waitForAppend(3, controller.signal).then(() => (woken = true));
  await subject.store.append([testEvent()]);
  await sleep(100);
  assert.equal(woken, false, 'head 3 does not pass 3');
  await subject.store.append([testEvent()]);
  await waiting;
});

test('the listener reconnects after its connection is killed and wakes readers to re-read', async (t) => {
  const subject = await subjectFor(t);
  // A pool of our own, named, so the test can find and kill the listener's connection.
  const application_name = `busbar-listener-${randomBytes(4).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, application_name });
  pool.on('error', () => {});
  const reader = await createPostgresStore({ pool, schema: subject.schema });
  // In this order: the pool waits for the listener's connection to come back before it ends.
  t.after(async () => {
    await reader.close();
    await pool.end();
  });

  const safety = AbortSignal.timeout(10_000);
  const waiting = reader.waitForAppend(0, safety);
  const killed = await subject.admin.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
    [application_name],
  );
  assert.ok((killed.rowCount ?? 0) >= 1, 'the listener connection was found');
  await waiting;
  assert.equal(safety.aborted, false, 'the reconnect woke the reader, so it re-reads what it may have missed');

  // Listening again: another store's commit wakes the reader.
  await sleep(50);
  assert.equal(await wokenByCommit(reader, 0, () => subject.store.append([testEvent()])), true);
  assert.deepEqual((await reader.readAll()).events.map((row) => row.position), [1]);
});

test('without notify, a store wakes its own readers and checks the database head before waiting', async (t) => {
  const subject = await subjectFor(t);
  const quiet = await subject.reopen({ notify: false });
  await subject.store.append([testEvent()]);
  // Nobody told `quiet` of position 1, but the head it reads when parking is past 0.
  assert.equal(await wokenByCommit(quiet, 0, async () => {}), true);
  assert.equal(await wokenByCommit(quiet, 1, () => quiet.append([testEvent()])), true);
});

test('close releases the listener connection and, for a pool it was given, leaves the pool open', async (t) => {
  const subject = await subjectFor(t);
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL });
  t.after(() => pool.end());
  const store = await createPostgresStore({ pool, schema: subject.schema });
  assert.equal(pool.totalCount - pool.idleCount, 1, 'the listener holds one connection');
  await store.close();
  assert.equal(pool.totalCount - pool.idleCount, 0, 'and gives it up on close');
  assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the pool still works');
});
