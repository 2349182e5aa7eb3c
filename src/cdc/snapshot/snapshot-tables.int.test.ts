import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createBus } from '../../core/bus.ts';
import { createMemoryStore } from '../../store/memory/index.ts';
import { type CdcTestDatabase, dropAllSlots, startCdcDatabase, storedChanges, waitFor } from '../cdc-harness.fixture.ts';
import { createPostgresCdc } from '../postgres-cdc.ts';
import { decodeInt8 } from '../values.ts';
import { assertReadsNeverStale, assertSameRows, replayByKey, snapshotCapture, stopCaptures, tableByKey } from './snapshot-test.fixture.ts';

let db: CdcTestDatabase;

before(async () => {
  db = await startCdcDatabase();
});

afterEach(stopCaptures);

after(async () => {
  await dropAllSlots(db.admin);
  await db.stop();
});

async function freshSchema(name: string): Promise<void> {
  await db.admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE; CREATE SCHEMA ${name}`);
}

/** A handler that makes each chunk take a while, so a test can act in the middle of a snapshot. */
const slowChunks = (ms: number) => ({
  onEvent: async (event: { data: { action: string; index: number } }) => {
    if (event.data.action === 'READ' && event.data.index === 0) await new Promise((resolve) => setTimeout(resolve, ms));
  },
});

describe('what the initial snapshot reads', () => {
  test('composite, text, uuid and timestamp keys are read in the order PostgreSQL sorts them, each row once, across chunk boundaries', async () => {
    await freshSchema('keys');
    await db.admin.query(`CREATE TABLE keys.line (order_id int8, line_no int, qty int, PRIMARY KEY (order_id, line_no))`);
    await db.admin.query(`INSERT INTO keys.line SELECT o, l, (o % 7)::int + l FROM unnest(ARRAY[1, 2, 9007199254740993]::int8[]) o, generate_series(1, 5) l`);
    await db.admin.query(`CREATE TABLE keys.word (word text PRIMARY KEY, n int)`);
    await db.admin.query(
      `INSERT INTO keys.word SELECT w, ordinality FROM unnest(ARRAY['a', 'B', 'ä', 'Zebra', 'zebra', 'émile', '', ' space', 'x"y', 'it''s', '名前', 'a b']) WITH ORDINALITY w`,
    );
    await db.admin.query(`CREATE TABLE keys.token (id uuid PRIMARY KEY, n int)`);
    await db.admin.query(`INSERT INTO keys.token SELECT gen_random_uuid(), i FROM generate_series(1, 20) i`);
    await db.admin.query(`CREATE TABLE keys.moment (at timestamptz, seq numeric, PRIMARY KEY (at, seq))`);
    await db.admin.query(
      `INSERT INTO keys.moment SELECT '2024-02-29 13:45:00.000001+00'::timestamptz + (i % 3) * interval '1 microsecond', i / 2.0
         FROM generate_series(1, 9) i`,
    );
    const run = snapshotCapture(db.connectionString, { tables: ['keys.line', 'keys.word', 'keys.token', 'keys.moment'], snapshotChunkSize: 4 });
    run.cdc.start();
    for (const table of ['line', 'word', 'token', 'moment']) assert.equal((await run.settled(`keys.${table}`)).state, 'done');
    const reads = (table: string) => run.seen.filter((event) => event.data.table === table && event.data.action === 'READ');

    const lines = await db.admin.query(`SELECT order_id::text AS o, line_no FROM keys.line ORDER BY order_id, line_no`);
    assert.deepEqual(
      reads('line').map((event) => event.data.id),
      lines.rows.map((row) => ({ order_id: decodeInt8(row.o), line_no: row.line_no })),
    );
    assert.equal(reads('line')[14]!.subject, '{"order_id":"9007199254740993","line_no":5}');
    const words = await db.admin.query(`SELECT word FROM keys.word ORDER BY word`);
    assert.deepEqual(reads('word').map((event) => event.data.id), words.rows.map((row) => row.word));
    const tokens = await db.admin.query(`SELECT id FROM keys.token ORDER BY id`);
    assert.deepEqual(reads('token').map((event) => event.data.id), tokens.rows.map((row) => row.id));
    const moments = await db.admin.query(`SELECT seq::text FROM keys.moment ORDER BY at, seq`);
    assert.deepEqual(reads('moment').map((event) => (event.data.data as { seq: string }).seq), moments.rows.map((row) => row.seq));
    assert.match(String((reads('moment')[0]!.data.id as { at: string }).at), /^2024-02-29T13:45:00\.00000\dZ$/);
    for (const table of ['line', 'word', 'token', 'moment']) assertReadsNeverStale(run.seen, 'keys', table);
    await run.stop();
  });

  test('hostile schema, table and key column names are snapshotted and inject nothing', async () => {
    await db.admin.query(`DROP SCHEMA IF EXISTS "Evil"";Schema" CASCADE; CREATE SCHEMA "Evil"";Schema"`);
    await db.admin.query(`DROP TABLE IF EXISTS public.y; CREATE TABLE public.y (id int)`);
    await db.admin.query(`CREATE TABLE "Evil"";Schema"."x""; DROP TABLE y; --" ("we""ird id" int PRIMARY KEY, "名前" text)`);
    await db.admin.query(`INSERT INTO "Evil"";Schema"."x""; DROP TABLE y; --" SELECT i, 'ë' || i FROM generate_series(1, 10) i`);
    await db.admin.query(`CREATE TABLE public."Mixed Case" ("Key Col" text, "Other Key" int, PRIMARY KEY ("Key Col", "Other Key"))`);
    await db.admin.query(`INSERT INTO public."Mixed Case" VALUES ('a', 1), ('a', 2), ('b''; --', 1)`);
    const run = snapshotCapture(db.connectionString, {
      tables: [{ schema: 'Evil";Schema', name: 'x"; DROP TABLE y; --' }, 'Mixed Case'],
      snapshotChunkSize: 3,
    });
    run.cdc.start();
    await run.settled('Evil";Schema.x"; DROP TABLE y; --');
    await run.settled('public.Mixed Case');
    const evil = run.seen.filter((event) => event.data.schema === 'Evil";Schema');
    assert.equal(evil.length, 10);
    assert.equal(evil[0]!.type, 'cdc.Evil-22-3bSchema.x-22-3b-20DROP-20TABLE-20y-3b-20-2d-2d.read');
    assert.deepEqual(evil[9]!.data.data, { 'we"ird id': 10, 名前: 'ë10' });
    const mixed = run.seen.filter((event) => event.data.table === 'Mixed Case');
    assert.deepEqual(mixed.map((event) => event.data.id), [
      { 'Key Col': 'a', 'Other Key': 1 },
      { 'Key Col': 'a', 'Other Key': 2 },
      { 'Key Col': "b'; --", 'Other Key': 1 },
    ]);
    assert.equal((await db.admin.query(`SELECT to_regclass('public.y') IS NOT NULL AS present`)).rows[0].present, true);
    await run.stop();
  });

  test('an empty table finishes with no READ; a keyless table is skipped with a warning while its changes are still captured', async () => {
    await freshSchema('odd');
    await db.admin.query(`CREATE TABLE odd.empty (id int PRIMARY KEY); CREATE TABLE odd.keyless (v text)`);
    await db.admin.query(`INSERT INTO odd.keyless VALUES ('existing')`);
    const run = snapshotCapture(db.connectionString, { tables: ['odd.empty', 'odd.keyless'] });
    run.cdc.start();
    const empty = await run.settled('odd.empty');
    assert.deepEqual([empty.state, empty.rowsDone, empty.chunks], ['done', 0, 1]);
    const keyless = await run.settled('odd.keyless');
    assert.equal(keyless.state, 'skipped');
    assert.match(keyless.reason!, /no primary key/);
    assert.ok(run.warnings.some((warning) => /"odd\.keyless" has no primary key: its existing rows are not snapshotted/.test(warning)), run.warnings.join('\n'));
    await db.admin.query(`INSERT INTO odd.keyless VALUES ('new'); INSERT INTO odd.empty VALUES (1)`);
    await waitFor('the two inserts', () => run.seen.length >= 2);
    assert.deepEqual(run.seen.map((event) => [event.data.table, event.data.action]), [['keyless', 'INSERT'], ['empty', 'INSERT']]);
    await run.stop();
  });

  test('a chunk of wide rows stops at 32 MB of text, and the next one goes on from its last key', async () => {
    await freshSchema('wide');
    await db.admin.query(`CREATE TABLE wide.doc (id int PRIMARY KEY, body text)`);
    await db.admin.query(`INSERT INTO wide.doc SELECT i, repeat(md5(i::text), 10000) FROM generate_series(1, 120) i`); // 320 kB each
    const run = snapshotCapture(db.connectionString, { tables: ['wide.doc'] });
    run.cdc.start();
    const status = await run.settled('wide.doc');
    assert.ok(status.chunks >= 2, `${status.chunks} chunks of at most 2000 rows for 120 rows`);
    assert.deepEqual(run.seen.map((event) => event.data.id), Array.from({ length: 120 }, (_, i) => i + 1));
    assert.ok(run.seen.every((event) => (event.data.data as { body: string }).body.length === 320_000));
    await run.stop();
  });

  test('a partitioned table is read partition by partition, under the names its changes carry', async () => {
    await freshSchema('parts');
    await db.admin.query(`CREATE TABLE parts.m (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)`);
    await db.admin.query(`CREATE TABLE parts.m_low PARTITION OF parts.m FOR VALUES FROM (0) TO (100)`);
    await db.admin.query(`CREATE TABLE parts.m_high PARTITION OF parts.m FOR VALUES FROM (100) TO (200)`);
    await db.admin.query(`INSERT INTO parts.m SELECT i, 'v' FROM generate_series(95, 104) i`);
    const run = snapshotCapture(db.connectionString, { tables: ['parts.m'] });
    run.cdc.start();
    await run.settled('parts.m_low');
    await run.settled('parts.m_high');
    await db.admin.query(`UPDATE parts.m SET v = 'w' WHERE id = 99`);
    await waitFor('the update', () => run.seen.some((event) => event.data.action === 'UPDATE'));
    assert.deepEqual(
      run.seen.map((event) => `${event.data.table}:${event.data.action}:${String(event.data.id)}`).sort(),
      [
        ...[95, 96, 97, 98, 99].map((id) => `m_low:READ:${id}`),
        ...[100, 101, 102, 103, 104].map((id) => `m_high:READ:${id}`),
        'm_low:UPDATE:99',
      ].sort(),
    );
    await run.stop();
  });
});

describe('capturing every table', () => {
  test('ensureCdcForAllTables snapshots every table, and Busbar’s own bookkeeping never becomes an event', async () => {
    await freshSchema('whole');
    await db.admin.query(`CREATE TABLE whole.a (id int PRIMARY KEY); INSERT INTO whole.a SELECT generate_series(1, 5)`);
    await db.admin.query(`CREATE TABLE whole.b (id text PRIMARY KEY); INSERT INTO whole.b VALUES ('x'), ('y')`);
    const run = snapshotCapture(db.connectionString, { allTables: true, snapshotChunkSize: 2 });
    run.cdc.start();
    await run.settled('whole.a');
    await run.settled('whole.b');
    await db.admin.query(`CREATE TABLE whole.later (id int PRIMARY KEY); INSERT INTO whole.later VALUES (1)`);
    await waitFor('the table created later', () => run.seen.some((event) => event.data.table === 'later'));
    const whole = run.seen.filter((event) => event.data.schema === 'whole');
    assert.deepEqual(whole.map((event) => `${event.data.table}:${event.data.action}:${String(event.data.id)}`), [
      'a:READ:1', 'a:READ:2', 'a:READ:3', 'a:READ:4', 'a:READ:5', 'b:READ:x', 'b:READ:y', 'later:INSERT:1',
    ]);
    assert.ok(run.cdc.status().snapshots.length > 2, 'the other tables of the database too');
    assert.deepEqual(run.seen.filter((event) => event.data.schema === 'busbar_replication'), []);
    await run.stop();
  });
});

describe('running, asking for and following a snapshot', () => {
  test('status shows a running snapshot’s rows done against the estimate, and handlers can tell READ rows from live changes', async () => {
    await freshSchema('watch');
    await db.admin.query(`CREATE TABLE watch.t (id int PRIMARY KEY, v text)`);
    await db.admin.query(`INSERT INTO watch.t SELECT i, 'v' || i FROM generate_series(1, 5000) i; ANALYZE watch.t`);
    const run = snapshotCapture(db.connectionString, { tables: ['watch.t'], snapshotChunkSize: 250, handlers: [slowChunks(40)] });
    run.cdc.start();
    const running = await waitFor('a running snapshot', () => {
      const status = run.cdc.status().snapshots[0];
      return status?.state === 'running' && status.rowsDone > 0 ? status : undefined;
    });
    assert.ok(running.rowsEstimate !== undefined && running.rowsEstimate > 4000 && running.rowsEstimate < 6000, `estimate ${running.rowsEstimate}`);
    assert.ok(running.rowsDone < 5000 && running.chunks > 0);
    const done = await run.settled('watch.t');
    assert.deepEqual([done.state, done.rowsDone, done.chunks], ['done', 5000, 21]);
    assert.match(done.finishedAt!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    await db.admin.query(`INSERT INTO watch.t VALUES (5001, 'live')`);
    await waitFor('the live insert', () => run.seen.some((event) => event.data.action === 'INSERT'));
    const read = run.seen[0]!;
    const live = run.seen.at(-1)!;
    assert.equal(read.type, 'cdc.watch.t.read');
    assert.deepEqual(
      { action: read.data.action, id: read.data.id, data: read.data.data, old: read.data.old, changes: read.data.changes, lsn: read.data.lsn },
      { action: 'READ', id: 1, data: { id: 1, v: 'v1' }, old: null, changes: null, lsn: `snapshot:${done.snapshotId}` },
    );
    assert.equal(read.id, `${read.id.split(':')[0]}:snapshot:${done.snapshotId}:1`);
    assert.equal(read.subject, '1');
    assert.equal(read.partitionkey, 'watch.t:1');
    assert.match(read.data.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.deepEqual([live.type, live.data.action], ['cdc.watch.t.insert', 'INSERT']);
    assert.equal(run.cdc.status().lastDelivered?.lsn, live.data.lsn, 'the last delivered position is the stream’s');
    await run.stop();
  });

  test('cdc.snapshot(table) reads every row again under a new snapshot id; a table not captured and trigger mode are refused', async () => {
    await freshSchema('again');
    await db.admin.query(`CREATE TABLE again.t (id int PRIMARY KEY); INSERT INTO again.t SELECT generate_series(1, 30)`);
    await db.admin.query(`CREATE TABLE again.other (id int PRIMARY KEY)`);
    const run = snapshotCapture(db.connectionString, { tables: ['again.t'], snapshotChunkSize: 7 });
    run.cdc.start();
    const first = await run.settled('again.t');
    await run.cdc.snapshot('again.t');
    assert.equal(run.cdc.status().snapshots[0]?.state, 'pending');
    const second = await run.settled('again.t');
    assert.notEqual(second.snapshotId, first.snapshotId);
    const stored = await storedChanges(run.store);
    assert.equal(stored.length, 60, 'every row twice, once per snapshot');
    assert.equal(new Set(stored.map((event) => event.id)).size, 60);
    await assert.rejects(run.cdc.snapshot('again.other'), { code: 'BUSBAR_ERR_INVALID_ARGUMENT', message: /not captured: ensureCdcFor it first/ });

    const trigger = createPostgresCdc({ connectionString: db.connectionString, mode: 'trigger', trigger: { schema: 'busbar_cdc_snapshot_test' } });
    await assert.rejects(trigger.snapshot('again.t'), { code: 'BUSBAR_ERR_INVALID_ARGUMENT', message: /trigger mode does not snapshot/ });
    await trigger.close();
    await run.stop();
  });

  test("snapshot: 'never' captures changes only", async () => {
    await freshSchema('never');
    await db.admin.query(`CREATE TABLE never.t (id int PRIMARY KEY); INSERT INTO never.t SELECT generate_series(1, 10)`);
    const run = snapshotCapture(db.connectionString, { tables: ['never.t'], snapshot: 'never' });
    let connected = false;
    run.cdc.addHandler({ onConnect: () => void (connected = true) });
    run.cdc.start();
    await waitFor('streaming', () => connected);
    await db.admin.query(`INSERT INTO never.t VALUES (11)`);
    await waitFor('the insert', () => run.seen.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(run.seen.map((event) => [event.data.action, event.data.id]), [['INSERT', 11]]);
    assert.deepEqual(run.cdc.status().snapshots, []);
    await run.stop();
  });

  test('a table truncated during its snapshot ends equal to the table; one dropped during it is skipped and capture goes on', async () => {
    await freshSchema('midway');
    await db.admin.query(`CREATE TABLE midway.truncated (id int PRIMARY KEY, v text); CREATE TABLE midway.doomed (id int PRIMARY KEY)`);
    await db.admin.query(`INSERT INTO midway.truncated SELECT i, 'before' FROM generate_series(1, 2000) i`);
    await db.admin.query(`INSERT INTO midway.doomed SELECT generate_series(1, 2000)`);
    const run = snapshotCapture(db.connectionString, { tables: ['midway.truncated', 'midway.doomed'], snapshotChunkSize: 50, handlers: [slowChunks(30)] });
    run.cdc.start();
    // Tables registered together are read in name order: doomed, then truncated.
    await waitFor('three chunks of the dropped table', () => (run.cdc.status().snapshots.find((each) => each.table === 'doomed')?.chunks ?? 0) >= 3);
    await db.admin.query(`DROP TABLE midway.doomed`);
    const doomed = await run.settled('midway.doomed');
    assert.deepEqual([doomed.state, doomed.reason], ['skipped', 'the table no longer exists']);

    await waitFor('three chunks of the truncated table', () => (run.cdc.status().snapshots.find((each) => each.table === 'truncated')?.chunks ?? 0) >= 3);
    await db.admin.query(`BEGIN; TRUNCATE midway.truncated; INSERT INTO midway.truncated SELECT i, 'after' FROM generate_series(1500, 1600) i; COMMIT`);
    await db.admin.query(`UPDATE midway.truncated SET v = 'updated' WHERE id = 1550`);
    const truncated = await run.settled('midway.truncated');
    assert.equal(truncated.state, 'done');

    await db.admin.query(`INSERT INTO midway.truncated VALUES (1, 'still streaming')`);
    await waitFor('the insert after the drop', () => run.seen.some((event) => event.data.action === 'INSERT' && event.data.id === 1));
    const events = await storedChanges(run.store);
    assertSameRows(replayByKey(events, 'midway', 'truncated'), await tableByKey(db.admin, 'midway.truncated'));
    assertReadsNeverStale(events, 'midway', 'truncated');
    assert.equal(run.cdc.status().state, 'streaming');
    await run.stop();
  });

  test('removeCdcFor forgets a table’s snapshot, dropSlot forgets them all and removes Busbar’s schema', async () => {
    await freshSchema('forget');
    await db.admin.query(`CREATE TABLE forget.a (id int PRIMARY KEY); CREATE TABLE forget.b (id int PRIMARY KEY)`);
    const run = snapshotCapture(db.connectionString, { tables: ['forget.a', 'forget.b'] });
    run.cdc.start();
    await run.settled('forget.a');
    await run.settled('forget.b');
    await run.cdc.removeCdcFor('forget.b');
    assert.deepEqual(run.cdc.status().snapshots.map((each) => each.table), ['a']);
    await run.cdc.ensureCdcFor('forget.b');
    assert.equal(run.cdc.status().snapshots.find((each) => each.table === 'b')?.state !== 'done', true, 'captured again: snapshotted again');
    await run.settled('forget.b');
    await stopCaptures(); // this file's other captures too: the schema goes with the last slot's rows
    assert.equal((await db.admin.query(`SELECT to_regnamespace('busbar_replication') IS NULL AS gone`)).rows[0].gone, true);
  });

  test('an unusable snapshot option is refused with the option named', () => {
    const bus = createBus({ store: createMemoryStore() });
    assert.throws(() => createPostgresCdc({ connectionString: db.connectionString, snapshot: 'always' as 'initial', bus }), {
      code: 'BUSBAR_ERR_INVALID_ARGUMENT',
      message: /"snapshot" must be 'initial' or 'never'/,
    });
    assert.throws(() => createPostgresCdc({ connectionString: db.connectionString, snapshotChunkSize: 0, bus }), { message: /snapshotChunkSize/ });
  });
});
