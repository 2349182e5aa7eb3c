import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { captureNames } from './capture-schema.ts';
import { type CaptureDatabase, idsOf, openCaptureDatabase, RecordingSink, startStream } from './trigger-test.fixture.ts';

let db: CaptureDatabase;
let app: string;
let nextId = 0;
/** Counts NOTIFYs on Busbar's channel, as a test listener sees them. */
let listener: pg.PoolClient;
let notifications = 0;
const READER = `waker_${process.pid}`;

before(async () => {
  db = await openCaptureDatabase();
  app = db.quotedApp;
  await db.admin.query(`CREATE TABLE ${app}.item (id int PRIMARY KEY)`);
  await db.source().ensureFor([{ schema: db.app, name: 'item' }], { replicaIdentityFull: new Map() });
  listener = await db.connect();
  listener.on('notification', () => notifications++);
  await listener.query(`LISTEN ${captureNames(db.busbarSchema, pg).channel}`);
});

after(async () => {
  await db?.cleanup();
});

async function insert(): Promise<number> {
  const id = ++nextId;
  await db.admin.query(`INSERT INTO ${app}.item VALUES ($1)`, [id]);
  return id;
}

/** The reader's idle mark: epoch ms until which it waits for a NOTIFY, 0 while busy. */
async function idleMark(): Promise<number> {
  const { rows } = await db.admin.query<{ mark: string }>(`SELECT last_value::text AS mark FROM "${db.busbarSchema}".idle_until`);
  return Number(rows[0]!.mark);
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Lets notifications in flight reach the listener. */
async function settle(): Promise<void> {
  await listener.query('SELECT 1');
  await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('trigger mode wakes its reader with NOTIFY only when it is idle', () => {
  test('an idle reader is woken by one NOTIFY per transaction, long before its fallback poll', async (t) => {
    const sink = new RecordingSink();
    const stream = startStream(db.source({ readerName: READER, pollInterval: 10_000 }), sink);
    t.after(() => stream.stop().catch(() => {}));
    await stream.connected;
    await until(async () => (await idleMark()) > Date.now(), 'the reader to go idle');
    await settle();
    const heard = notifications;
    const started = Date.now();
    const id = await insert();
    await sink.until(() => idsOf(sink.changes).includes(id), 'the row', 2000);
    assert.ok(Date.now() - started < 2000, `woken in ${Date.now() - started} ms, not after the 10 s poll`);
    await settle();
    assert.equal(notifications - heard, 1, 'one wake-up');
    await stream.stop();
    assert.equal(await idleMark(), 0, 'a stopped reader clears its mark, so writers stop notifying');
  });

  test('writers do not NOTIFY while the reader is busy', async (t) => {
    const sink = new RecordingSink();
    sink.delayMs = 20; // a slow bus keeps the reader busy
    const stream = startStream(db.source({ readerName: READER, pollInterval: 10_000 }), sink);
    t.after(() => stream.stop().catch(() => {}));
    await stream.connected;
    await until(async () => (await idleMark()) > Date.now(), 'the reader to go idle');
    await settle();
    const heard = notifications;
    const ids: number[] = [];
    for (let i = 0; i < 50; i++) ids.push(await insert());
    await sink.until(() => idsOf(sink.changes).includes(ids.at(-1)), 'all 50 rows');
    await settle();
    const sent = notifications - heard;
    assert.ok(sent >= 1 && sent <= 5, `${sent} NOTIFYs for 50 transactions: only while the reader was idle`);
    await stream.stop();
  });

  test('a writer that looked at the idle mark just before it was set still arrives at once, not after the poll', async (t) => {
    const sink = new RecordingSink();
    sink.delayMs = 400;
    const stream = startStream(db.source({ readerName: READER, pollInterval: 10_000 }), sink);
    t.after(() => stream.stop().catch(() => {}));
    await stream.connected;
    const first = await insert(); // wakes the reader, which is then busy with it for 400 ms
    await until(async () => (await idleMark()) === 0, 'the reader to be busy');
    const writer = await db.connect();
    const late = ++nextId;
    await writer.query(`BEGIN; INSERT INTO ${app}.item VALUES (${late})`); // sees "busy": no NOTIFY at its commit
    await sink.until(() => idsOf(sink.changes).includes(first), 'the first row');
    await until(async () => (await idleMark()) > Date.now(), 'the reader to go idle while the writer is open');
    await settle();
    const heard = notifications;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const committed = Date.now();
    await writer.query('COMMIT');
    await sink.until(() => idsOf(sink.changes).includes(late), 'the late writer', 5000);
    const latency = Date.now() - committed;
    await settle();
    assert.equal(notifications - heard, 0, 'the late writer sent no NOTIFY');
    assert.ok(latency < 3000, `arrived ${latency} ms after its commit (the fallback poll is 10 s)`);
    await stream.stop();
  });

  test('a reader that dies while idle stops wake-ups once its mark expires', async (t) => {
    const stream = startStream(db.source({ readerName: READER, pollInterval: 200 }), new RecordingSink());
    t.after(() => stream.stop().catch(() => {}));
    await stream.connected;
    await until(async () => (await idleMark()) > Date.now(), 'the reader to go idle');
    await db.admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
      [`busbar cdc ${READER}`],
    );
    await assert.rejects(stream.done, { code: 'BUSBAR_ERR_UNREACHABLE' });
    assert.ok((await idleMark()) > 0, 'the dead reader left its mark');
    await until(async () => (await idleMark()) < Date.now(), 'the mark to expire', 2000);
    await settle();
    const heard = notifications;
    for (let i = 0; i < 5; i++) await insert();
    await settle();
    assert.equal(notifications - heard, 0, 'no NOTIFY once the mark expired');
  });
});
