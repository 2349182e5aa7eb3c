import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { BusbarError } from '../../core/errors.ts';
import { captureNames } from './capture-schema.ts';
import { type CaptureDatabase, idsOf, openCaptureDatabase, RecordingSink, startStream } from './trigger-test.fixture.ts';

let db: CaptureDatabase;
let app: string;
let nextId = 0;

before(async () => {
  db = await openCaptureDatabase();
  app = db.quotedApp;
  await db.admin.query(`CREATE TABLE ${app}.item (id int PRIMARY KEY, label text)`);
  await db.source().ensureFor([{ schema: db.app, name: 'item' }], { replicaIdentityFull: new Map() });
});

after(async () => {
  await db?.cleanup();
});

/** Inserts `count` rows, one transaction each, and returns their ids. */
async function insert(count: number): Promise<number[]> {
  const ids = Array.from({ length: count }, () => ++nextId);
  for (const id of ids) await db.admin.query(`INSERT INTO ${app}.item VALUES ($1, 'row')`, [id]);
  return ids;
}

/**
 * A stream for a new reader, caught up with everything before it (a new
 * reader starts from the oldest kept change), its sink emptied.
 */
async function caughtUp(readerName: string, options: { staleReaderAfter?: number } = {}) {
  const source = db.source({ readerName, ...options });
  const sink = new RecordingSink();
  const stream = startStream(source, sink);
  await stream.connected;
  const [marker] = await insert(1);
  await sink.until(() => idsOf(sink.changes).includes(marker), `reader ${readerName} to catch up`);
  sink.transactions.length = 0;
  return { source, sink, stream };
}

describe('trigger mode across stops, failures and several readers', () => {
  test('a reader stopped while writers run resumes after its checkpoint: nothing lost, nothing twice', async () => {
    const { sink, stream: first } = await caughtUp('resumer');
    let stream = first;
    const before = await insert(20);
    await sink.until(() => idsOf(sink.changes).includes(before.at(-1)), 'the rows before the stop');
    await stream.stop();
    const during = await insert(30); // written while no reader runs
    stream = startStream(db.source({ readerName: 'resumer' }), sink);
    await stream.connected;
    await sink.until(() => idsOf(sink.changes).includes(during.at(-1)), 'the rows written while stopped');
    await stream.stop();
    assert.deepEqual(idsOf(sink.changes), [...before, ...during]);
  });

  test('a second stream as the same reader is refused while the first runs', async () => {
    const first = startStream(db.source({ readerName: 'single' }), new RecordingSink());
    await first.connected;
    const second = startStream(db.source({ readerName: 'single' }), new RecordingSink());
    await assert.rejects(second.done, (error: unknown) => error instanceof BusbarError && error.code === 'BUSBAR_ERR_CDC_SLOT');
    await first.stop();
  });

  test('a delivery that fails stops the stream, and the transaction comes again on the next one', async () => {
    const { source, sink, stream: first } = await caughtUp('failing');
    let stream = first;
    const [ok] = await insert(1);
    await sink.until(() => idsOf(sink.changes).includes(ok), 'the first row');
    sink.failNext = new Error('the bus is down');
    const [failed, later] = await insert(2);
    await assert.rejects(stream.done, /the bus is down/);
    assert.equal(idsOf(sink.changes).includes(failed), false);
    sink.recover();
    stream = startStream(source, sink);
    await stream.connected;
    await sink.until(() => idsOf(sink.changes).includes(later), 'the rows after the failure');
    await stream.stop();
    assert.deepEqual(idsOf(sink.changes), [ok, failed, later]);
  });

  test('two readers each get every change; rows are pruned only once both acknowledged them', async () => {
    const { stream: slowStart, source: slowSource } = await caughtUp('slow', { staleReaderAfter: 1 });
    await slowStart.stop();
    const { sink: fast, stream: fastStream } = await caughtUp('fast');
    // Readers of the earlier tests are gone for good: forget them, as an operator would.
    await db.admin.query(`DELETE FROM ${busbar('readers')} WHERE name NOT IN ('fast', 'slow')`);
    const ids = await insert(10);
    await fast.until(() => idsOf(fast.changes).includes(ids.at(-1)), "the fast reader's rows");
    await fastStream.stop();
    const kept = await db.admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${busbar('changes')} c WHERE (c.new_row ->> 'id')::int = ANY($1)`,
      [ids],
    );
    assert.equal(kept.rows[0]!.n, ids.length, 'the slow reader has not read them: they are kept');

    await new Promise((resolve) => setTimeout(resolve, 1100)); // older than staleReaderAfter
    const health = await slowSource.health();
    assert.ok(health.lagBytes! >= ids.length, `rows waiting: ${health.lagBytes}`);
    assert.ok(health.lagSeconds! >= 1, `lag: ${health.lagSeconds}`);
    assert.ok(
      health.warnings.some((warning) => warning.includes('"slow"') && warning.includes('not advanced')),
      `a stale reader warning: ${health.warnings.join(' | ')}`,
    );

    const slow = new RecordingSink();
    const slowStream = startStream(slowSource, slow);
    await slowStream.connected;
    await slow.until(() => idsOf(slow.changes).includes(ids.at(-1)), "the slow reader's rows");
    await slowStream.stop();
    assert.deepEqual(idsOf(slow.changes).slice(-ids.length), ids);
    const after = await db.admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${busbar('changes')} c WHERE (c.new_row ->> 'id')::int = ANY($1)`,
      [ids],
    );
    assert.equal(after.rows[0]!.n, 0, 'pruned once both readers acknowledged them');
    const healthy = await slowSource.health();
    assert.equal(healthy.lagSeconds, 0);
  });

  test('stopping a stream stuck in a query that never ends still returns, within a few seconds', async () => {
    const { stream } = await caughtUp('stuck');
    const blocker = await db.connect();
    // Holding the tick lock makes the reader's next tick wait for ever.
    await blocker.query(`SELECT pg_advisory_lock(${captureNames(db.busbarSchema, pg).tickLock})`);
    await insert(1);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the reader is waiting on the lock now
    const started = Date.now();
    await stream.stop();
    assert.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`);
    await blocker.query(`SELECT pg_advisory_unlock(${captureNames(db.busbarSchema, pg).tickLock})`);
  });

  test('health reports change rows waiting and their age while no reader runs, and retained bytes', async () => {
    const { source, stream } = await caughtUp('watched');
    await stream.stop();
    await insert(5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const health = await source.health();
    assert.equal(health.lagBytes, 5, 'five rows waiting');
    assert.ok(health.lagSeconds! > 0 && health.lagSeconds! < 60, `age of the oldest: ${health.lagSeconds}`);
    assert.equal(health.walStatus, undefined);
    assert.ok(health.retainedBytes! > 0);
  });
});

function busbar(table: string): string {
  return `"${db.busbarSchema}".${table}`;
}
