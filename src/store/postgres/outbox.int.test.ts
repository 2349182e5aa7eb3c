import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import pg from 'pg';
import { BusbarError, ConcurrencyError } from '../../core/errors.ts';
import { openTestStore, TEST_DATABASE_URL, type TestStore, testEvent } from './test-database.fixture.ts';

/** A store on a fresh schema with a user table `orders` beside the store's tables. */
async function withOrders(t: TestContext): Promise<TestStore & { orders: string }> {
  const subject = await openTestStore();
  t.after(() => subject.cleanup());
  const orders = `${pg.escapeIdentifier(subject.schema)}.orders`;
  await subject.admin.query(`CREATE TABLE ${orders} (id text PRIMARY KEY)`);
  return { ...subject, orders };
}

async function orderExists(subject: TestStore & { orders: string }, id: string): Promise<boolean> {
  return (await subject.admin.query(`SELECT 1 FROM ${subject.orders} WHERE id = $1`, [id])).rowCount === 1;
}

async function client(t: TestContext): Promise<pg.PoolClient> {
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 2 });
  const connected = await pool.connect();
  t.after(async () => {
    connected.release();
    await pool.end();
  });
  return connected;
}

test('a rolled-back transaction leaves neither the row nor the event, and no gap', async (t) => {
  const subject = await withOrders(t);
  const conn = await client(t);
  const placed = testEvent('orders.placed');
  await conn.query('BEGIN');
  await conn.query(`INSERT INTO ${subject.orders} (id) VALUES ('o-1')`);
  assert.deepEqual(await subject.store.appendWithin(conn, [placed]), [1]);
  await conn.query('ROLLBACK');
  assert.equal(await orderExists(subject, 'o-1'), false);
  assert.equal(await subject.store.getEvent(placed.id), undefined);
  assert.equal(await subject.store.head(), 0);
  assert.deepEqual(await subject.store.append([testEvent()]), [1], 'the next append takes position 1 again');
});

test('a committed transaction keeps both the row and the event, and wakes readers through NOTIFY', async (t) => {
  const subject = await withOrders(t);
  const conn = await client(t);
  const placed = testEvent('orders.placed');
  let woken = false;
  const safety = AbortSignal.timeout(5000);
  const waiting = subject.store.waitForAppend(0, safety).then(() => (woken = true));
  await conn.query('BEGIN');
  await conn.query(`INSERT INTO ${subject.orders} (id) VALUES ('o-1')`);
  const { positions, version } = await subject.store.appendToStreamWithin(conn, 'order-o-1', [placed], { expectedVersion: 'no_stream' });
  assert.deepEqual([positions, version], [[1], 1]);
  assert.equal(await subject.store.head(), 0, 'invisible before the commit');
  assert.equal(woken, false);
  await conn.query('COMMIT');
  await waiting;
  assert.equal(safety.aborted, false, 'woken by the commit, not by the safety timeout');
  assert.equal(await orderExists(subject, 'o-1'), true);
  const logged = await subject.store.getEvent(placed.id);
  assert.deepEqual([logged?.position, logged?.stream, logged?.streamVersion], [1, 'order-o-1', 1]);
});

test('appendWithin refuses a client outside a transaction and appends nothing', async (t) => {
  const subject = await withOrders(t);
  const conn = await client(t);
  await assert.rejects(subject.store.appendWithin(conn, [testEvent()]), (error: unknown) => {
    assert.ok(error instanceof BusbarError);
    assert.equal(error.code, 'BUSBAR_ERR_INVALID_ARGUMENT');
    assert.match(error.message, /open transaction/);
    return true;
  });
  assert.equal(await subject.store.head(), 0);
});

test('a refused expected version leaves the caller transaction usable and the append lock free', async (t) => {
  const subject = await withOrders(t);
  await subject.store.appendToStream('order-o-1', [testEvent()]);
  const conn = await client(t);
  await conn.query('BEGIN');
  await conn.query(`INSERT INTO ${subject.orders} (id) VALUES ('o-1')`);
  await assert.rejects(
    subject.store.appendToStreamWithin(conn, 'order-o-1', [testEvent()], { expectedVersion: 'no_stream' }),
    (error: unknown) => error instanceof ConcurrencyError && error.actual === 1,
  );
  // Another writer is not blocked by the open transaction any more.
  assert.deepEqual(await subject.store.append([testEvent()]), [2]);
  await conn.query(`INSERT INTO ${subject.orders} (id) VALUES ('o-2')`);
  await conn.query('COMMIT');
  assert.equal(await orderExists(subject, 'o-1'), true);
  assert.equal(await orderExists(subject, 'o-2'), true);
  assert.equal(await subject.store.head(), 2);
});

test('an idempotent appendWithin returns the original position and adds nothing', async (t) => {
  const subject = await withOrders(t);
  const placed = testEvent('orders.placed');
  await subject.store.append([testEvent(), placed]);
  const conn = await client(t);
  await conn.query('BEGIN');
  assert.deepEqual(await subject.store.appendWithin(conn, [placed]), [2]);
  await conn.query('COMMIT');
  assert.equal(await subject.store.head(), 2);
});

const fixture = fileURLToPath(new URL('./outbox-child.fixture.ts', import.meta.url));

/** Runs the fixture until it prints `signal`, then SIGKILLs it and waits for it to die. */
async function killChildAfter(schema: string, orderId: string, eventId: string, mode: 'commit' | 'hold'): Promise<void> {
  const child = spawn(process.execPath, [fixture, TEST_DATABASE_URL, schema, orderId, eventId, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  const signal = mode === 'commit' ? 'committed' : 'appended';
  try {
    await new Promise<void>((resolve, reject) => {
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes(signal)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the child exited (${code}) before "${signal}": ${stderr}`)));
      setTimeout(() => reject(new Error(`the child did not print "${signal}" in time: ${stderr}`)), 20_000).unref();
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  assert.equal(child.signalCode, 'SIGKILL', 'the child died by SIGKILL, with no clean shutdown');
}

test('a process SIGKILLed right after COMMIT leaves both the row and the event', async (t) => {
  const subject = await withOrders(t);
  const eventId = testEvent().id;
  await killChildAfter(subject.schema, 'o-1', eventId, 'commit');
  assert.equal(await orderExists(subject, 'o-1'), true);
  const logged = await subject.store.getEvent(eventId);
  assert.equal(logged?.position, 1);
  assert.deepEqual(logged?.event.data, { orderId: 'o-1' });
});

test('a process SIGKILLed inside the transaction leaves neither, and frees the append lock', async (t) => {
  const subject = await withOrders(t);
  const eventId = testEvent().id;
  await killChildAfter(subject.schema, 'o-1', eventId, 'hold');
  // The server rolls back when it sees the connection close; this append would wait on the lock until then.
  assert.deepEqual(await subject.store.append([testEvent()]), [1]);
  assert.equal(await orderExists(subject, 'o-1'), false);
  assert.equal(await subject.store.getEvent(eventId), undefined);
});
