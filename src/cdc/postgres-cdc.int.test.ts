import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BusbarEvent } from '../core/event.ts';
import type { EventLog } from '../core/event-log.ts';
import { createSqliteStore } from '../store/sqlite/index.ts';
import {
  type CdcTestDatabase,
  dropAllSlots,
  durableBus,
  startCdcDatabase,
  storedChanges,
  waitFor,
  warningLog,
} from './cdc-harness.fixture.ts';
import type { ChangeData } from './change.ts';
import type { PostgresCdcOptions } from './cdc-options.ts';
import { createPostgresCdc, type PostgresCdc } from './postgres-cdc.ts';

let db: CdcTestDatabase;
let slots = 0;

before(async () => {
  db = await startCdcDatabase();
});

after(async () => {
  await dropAllSlots(db.admin);
  await db.stop();
});

/** A capture into a durable bus on its own slot, with a handler recording what it sees. */
async function capture(options: Partial<PostgresCdcOptions> & { store?: EventLog } = {}) {
  const { bus, store } = durableBus(options.store);
  const seen: BusbarEvent<ChangeData>[] = [];
  const log = warningLog();
  const slotName = `test_${++slots}`;
  const cdc = createPostgresCdc({
    connectionString: db.connectionString,
    slotName,
    publicationName: slotName,
    bus,
    retryInterval: 50,
    onWarning: log.onWarning,
    ...options,
    handlers: [{ onEvent: (event) => void seen.push(event) }, ...(options.handlers ?? [])],
  });
  let connected = false;
  cdc.addHandler({ onConnect: () => void (connected = true) });
  return {
    cdc,
    bus,
    store,
    seen,
    warnings: log.warnings,
    slotName,
    async started() {
      cdc.start();
      await waitFor('capture to connect', () => connected);
    },
    /** Waits until `count` events were handled. */
    async events(count: number) {
      await waitFor(`${count} change events (have ${seen.length})`, () => seen.length >= count);
      return seen.slice(0, count);
    },
    async stop() {
      await cdc.dropSlot();
      await bus.close();
    },
  };
}

async function freshSchema(name: string): Promise<void> {
  await db.admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE; CREATE SCHEMA ${name}`);
}

describe('capturing row changes into a durable bus', () => {
  test('INSERT, UPDATE, DELETE and TRUNCATE arrive as events with every field', async () => {
    await freshSchema('shop');
    await db.admin.query(`CREATE TABLE shop.person (id int PRIMARY KEY, name text, score numeric(6,2))`);
    const run = await capture({ tables: ['shop.person'] });
    await run.started();
    await db.admin.query(`INSERT INTO shop.person VALUES (1, 'Ada', 12.5)`);
    await db.admin.query(`UPDATE shop.person SET name = 'Grace' WHERE id = 1`);
    await db.admin.query(`DELETE FROM shop.person WHERE id = 1`);
    await db.admin.query(`TRUNCATE shop.person`);
    const [inserted, updated, deleted, truncated] = await run.events(4);

    assert.equal(inserted!.type, 'cdc.shop.person.insert');
    assert.equal(inserted!.subject, '1');
    assert.match(inserted!.source, /^postgresql:\/\/127\.0\.0\.1:\d+\/postgres$/);
    assert.equal(inserted!.partitionkey, 'shop.person:1');
    assert.equal(inserted!.transactionid, inserted!.data.txid);
    assert.equal(inserted!.time, inserted!.data.timestamp);
    assert.match(inserted!.data.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.match(inserted!.data.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.equal(inserted!.id, `${inserted!.id.split(':')[0]}:${inserted!.data.lsn}:0`);
    assert.deepEqual(
      { ...inserted!.data, timestamp: undefined, txid: undefined, lsn: undefined },
      {
        timestamp: undefined,
        schema: 'shop',
        table: 'person',
        action: 'INSERT',
        id: 1,
        data: { id: 1, name: 'Ada', score: '12.50' },
        old: null,
        changes: null,
        unchanged: [],
        txid: undefined,
        lsn: undefined,
        index: 0,
        last: true,
      },
    );
    assert.equal(updated!.type, 'cdc.shop.person.update');
    assert.deepEqual(updated!.data.data, { id: 1, name: 'Grace', score: '12.50' });
    assert.deepEqual(updated!.data.old, { id: 1, name: 'Ada', score: '12.50' });
    assert.deepEqual(updated!.data.changes, [{ column: 'name', old: 'Ada', new: 'Grace' }]);
    assert.equal(deleted!.type, 'cdc.shop.person.delete');
    assert.deepEqual([deleted!.data.id, deleted!.data.data], [1, { id: 1, name: 'Grace', score: '12.50' }]);
    assert.equal(truncated!.type, 'cdc.shop.person.truncate');
    assert.deepEqual([truncated!.data.action, truncated!.data.id, truncated!.data.data, truncated!.subject], ['TRUNCATE', null, null, undefined]);

    // The store holds exactly these four, in commit order.
    assert.deepEqual((await storedChanges(run.store)).map((event) => event.id), run.seen.map((event) => event.id));
    await run.stop();
  });

  test('transactions arrive together and in commit order, with index and last, and rolled-back ones never', async () => {
    await freshSchema('tx');
    await db.admin.query(`CREATE TABLE tx.item (id int PRIMARY KEY, v text)`);
    const run = await capture({ tables: ['tx.item'] });
    await run.started();
    const first = await db.admin.connect();
    const second = await db.admin.connect();
    try {
      // First to write, last to commit: commit order wins.
      await first.query(`BEGIN; INSERT INTO tx.item VALUES (1, 'a'); INSERT INTO tx.item VALUES (2, 'a')`);
      await second.query(`BEGIN; INSERT INTO tx.item VALUES (10, 'b'); INSERT INTO tx.item VALUES (11, 'b'); INSERT INTO tx.item VALUES (12, 'b')`);
      await second.query('COMMIT');
      await first.query('COMMIT');
      await db.admin.query(`BEGIN; INSERT INTO tx.item VALUES (99, 'never'); ROLLBACK`);
      await db.admin.query(`BEGIN; INSERT INTO tx.item VALUES (3, 'c'); SAVEPOINT s; INSERT INTO tx.item VALUES (98, 'never'); ROLLBACK TO s; COMMIT`);
    } finally {
      first.release();
      second.release();
    }
    const events = await run.events(6);
    await new Promise((resolve) => setTimeout(resolve, 200)); // room for anything that should not come
    assert.deepEqual(
      run.seen.map((event) => [event.data.id, event.data.index, event.data.last]),
      [[10, 0, false], [11, 1, false], [12, 2, true], [1, 0, false], [2, 1, true], [3, 0, true]],
    );
    assert.equal(new Set(events.slice(0, 3).map((event) => event.data.txid)).size, 1);
    assert.equal(new Set(events.slice(0, 3).map((event) => event.data.lsn)).size, 1);
    assert.notEqual(events[0]!.data.txid, events[3]!.data.txid);
    await run.stop();
  });

  test('composite keys become an id object and a table without a primary key has id null and a warning', async () => {
    await freshSchema('keys');
    await db.admin.query(`CREATE TABLE keys.line (order_id int8, line_no int, qty int, PRIMARY KEY (order_id, line_no))`);
    await db.admin.query(`CREATE TABLE keys.log (message text)`);
    const run = await capture({ tables: ['keys.line', 'keys.log'] });
    await run.started();
    await db.admin.query(`INSERT INTO keys.line VALUES (9007199254740993, 2, 5); INSERT INTO keys.log VALUES ('hello')`);
    await db.admin.query(`UPDATE keys.log SET message = 'bye'; DELETE FROM keys.log`);
    const [line, logged, updated, deleted] = await run.events(4);
    assert.deepEqual(line!.data.id, { order_id: '9007199254740993', line_no: 2 });
    assert.equal(line!.subject, '{"order_id":"9007199254740993","line_no":2}');
    assert.equal(logged!.data.id, null);
    assert.equal(logged!.subject, undefined);
    // REPLICA IDENTITY FULL makes UPDATE and DELETE of a keyless table work and carry the old row.
    assert.deepEqual(updated!.data.changes, [{ column: 'message', old: 'hello', new: 'bye' }]);
    assert.deepEqual(deleted!.data.data, { message: 'bye' });
    assert.ok(run.warnings.some((warning) => warning.includes('"keys.log" has no primary key')), run.warnings.join('\n'));
    await run.stop();
  });

  test('hostile table and schema names work and inject nothing', async () => {
    await db.admin.query(`DROP SCHEMA IF EXISTS "Evil"";Schema" CASCADE; CREATE SCHEMA "Evil"";Schema"`);
    await db.admin.query(`DROP TABLE IF EXISTS public.y; CREATE TABLE public.y (id int)`);
    await db.admin.query(`CREATE TABLE public."x""; DROP TABLE y; --" (id int PRIMARY KEY, "we""ird col" text)`);
    await db.admin.query(`CREATE TABLE public."Mixed Case" (id int PRIMARY KEY)`);
    await db.admin.query(`CREATE TABLE public."ünïcødé" (id int PRIMARY KEY, "名前" text)`);
    await db.admin.query(`CREATE TABLE "Evil"";Schema"."t" (id int PRIMARY KEY)`);
    const run = await capture({
      tables: ['x"; DROP TABLE y; --', 'Mixed Case', 'ünïcødé', { schema: 'Evil";Schema', name: 't' }],
    });
    await run.started();
    await db.admin.query(`INSERT INTO public."x""; DROP TABLE y; --" VALUES (1, 'v')`);
    await db.admin.query(`INSERT INTO public."Mixed Case" VALUES (2)`);
    await db.admin.query(`INSERT INTO public."ünïcødé" VALUES (3, 'ë')`);
    await db.admin.query(`INSERT INTO "Evil"";Schema".t VALUES (4)`);
    const events = await run.events(4);
    assert.deepEqual(
      events.map((event) => [event.type, event.data.schema, event.data.table, event.data.id]),
      [
        ['cdc.public.x-22-3b-20DROP-20TABLE-20y-3b-20-2d-2d.insert', 'public', 'x"; DROP TABLE y; --', 1],
        ['cdc.public.Mixed-20Case.insert', 'public', 'Mixed Case', 2],
        ['cdc.public.-c3-bcn-c3-afc-c3-b8d-c3-a9.insert', 'public', 'ünïcødé', 3],
        ['cdc.Evil-22-3bSchema.t.insert', 'Evil";Schema', 't', 4],
      ],
    );
    assert.deepEqual(events[0]!.data.data, { id: 1, 'we"ird col': 'v' });
    assert.deepEqual(events[2]!.data.data, { id: 3, 名前: 'ë' });
    assert.equal((await db.admin.query(`SELECT to_regclass('public.y') IS NOT NULL AS exists`)).rows[0].exists, true);
    await run.stop();
  });

  test('a table that does not exist is a clear error and nothing is set up', async () => {
    const run = await capture();
    await assert.rejects(run.cdc.ensureCdcFor('no_such_table'), { code: 'BUSBAR_ERR_NOT_FOUND', message: /"no_such_table" does not exist/ });
    await assert.rejects(run.cdc.ensureCdcFor(''), { code: 'BUSBAR_ERR_INVALID_ARGUMENT' });
    assert.equal((await db.admin.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [run.slotName])).rowCount, 0);
    await run.stop();
  });

  test('ADD COLUMN, DROP COLUMN and ALTER TYPE mid-stream are reflected in the next changes', async () => {
    await freshSchema('ddl');
    await db.admin.query(`CREATE TABLE ddl.t (id int PRIMARY KEY, a int)`);
    const run = await capture({ tables: ['ddl.t'] });
    await run.started();
    await db.admin.query(`INSERT INTO ddl.t VALUES (1, 10)`);
    await db.admin.query(`ALTER TABLE ddl.t ADD COLUMN b jsonb`);
    await db.admin.query(`INSERT INTO ddl.t VALUES (2, 20, '{"x": 1}')`);
    await db.admin.query(`ALTER TABLE ddl.t DROP COLUMN a`);
    await db.admin.query(`INSERT INTO ddl.t VALUES (3, '[1]')`);
    await db.admin.query(`ALTER TABLE ddl.t ALTER COLUMN id TYPE int8`);
    await db.admin.query(`INSERT INTO ddl.t VALUES (9007199254740993, null)`);
    const events = await run.events(4);
    assert.deepEqual(events.map((event) => event.data.data), [
      { id: 1, a: 10 },
      { id: 2, a: 20, b: { x: 1 } },
      { id: 3, b: [1] },
      { id: '9007199254740993', b: null },
    ]);
    await run.stop();
  });

  test('rows over 8 kB and over 1 MB arrive whole', async () => {
    await freshSchema('big');
    await db.admin.query(`CREATE TABLE big.doc (id int PRIMARY KEY, body text, payload jsonb)`);
    const run = await capture({ tables: ['big.doc'] });
    await run.started();
    const medium = 'm'.repeat(9000);
    const large = Array.from({ length: 1_200_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    await db.admin.query(`INSERT INTO big.doc VALUES (1, $1, $2)`, [medium, JSON.stringify({ list: Array.from({ length: 2000 }, (_, i) => i) })]);
    await db.admin.query(`INSERT INTO big.doc VALUES (2, $1, null)`, [large]);
    const [first, second] = await run.events(2);
    assert.equal((first!.data.data as { body: string }).body, medium);
    assert.equal(((first!.data.data as { payload: { list: number[] } }).payload.list).length, 2000);
    assert.equal((second!.data.data as { body: string }).body, large);
    await run.stop();
  });

  test('with REPLICA IDENTITY DEFAULT an unchanged TOASTed column is listed in unchanged, never undefined', async () => {
    await freshSchema('toast');
    await db.admin.query(`CREATE TABLE toast.doc (id int PRIMARY KEY, title text, body text)`);
    await db.admin.query(`ALTER TABLE toast.doc ALTER COLUMN body SET STORAGE EXTERNAL`); // out of line, uncompressed
    const run = await capture({ tables: [{ schema: 'toast', name: 'doc', replicaIdentityFull: false }] });
    await run.started();
    const body = 'b'.repeat(20_000);
    await db.admin.query(`INSERT INTO toast.doc VALUES (1, 'first', $1)`, [body]);
    await db.admin.query(`UPDATE toast.doc SET title = 'second' WHERE id = 1`);
    await db.admin.query(`DELETE FROM toast.doc WHERE id = 1`);
    const [, updated, deleted] = await run.events(3);
    assert.deepEqual(updated!.data.data, { id: 1, title: 'second' });
    assert.ok(!Object.hasOwn(updated!.data.data!, 'body'));
    assert.deepEqual(updated!.data.unchanged, ['body']);
    assert.equal(updated!.data.old, null);
    assert.equal(updated!.data.changes, null);
    assert.deepEqual(JSON.parse(JSON.stringify(updated!.data)).data, { id: 1, title: 'second' });
    // DEFAULT identity: a DELETE carries the key only.
    assert.deepEqual(deleted!.data.data, { id: 1 });
    await run.stop();
  });

  test('a large transaction arrives in order, each change once, through a small in-flight bound', async () => {
    await freshSchema('bulk');
    await db.admin.query(`CREATE TABLE bulk.n (id int PRIMARY KEY)`);
    const run = await capture({ tables: ['bulk.n'], maxInFlight: 100 });
    await run.started();
    await db.admin.query(`INSERT INTO bulk.n SELECT generate_series(1, 5000)`);
    const events = await run.events(5000);
    assert.deepEqual(events.map((event) => event.data.id), Array.from({ length: 5000 }, (_, i) => i + 1));
    assert.deepEqual(events.map((event) => event.data.index), Array.from({ length: 5000 }, (_, i) => i));
    assert.deepEqual(events.filter((event) => event.data.last).map((event) => event.data.index), [4999]);
    assert.equal(new Set((await storedChanges(run.store)).map((event) => event.id)).size, 5000);
    await run.stop();
  });

  test('a SQLite-backed bus stores each change once, and removeCdcFor stops capturing a table', async () => {
    await freshSchema('lite');
    await db.admin.query(`CREATE TABLE lite.a (id int PRIMARY KEY); CREATE TABLE lite.b (id int PRIMARY KEY)`);
    const dir = mkdtempSync(join(tmpdir(), 'busbar-cdc-'));
    const store = createSqliteStore({ path: join(dir, 'cdc.db') });
    try {
      const run = await capture({ tables: ['lite.a', 'lite.b'], store });
      await run.started();
      await db.admin.query(`INSERT INTO lite.a VALUES (1); INSERT INTO lite.b VALUES (1)`);
      await run.events(2);
      await run.cdc.removeCdcFor('lite.b');
      assert.deepEqual(run.cdc.status().tables, [{ schema: 'lite', name: 'a' }]);
      await db.admin.query(`INSERT INTO lite.b VALUES (2); INSERT INTO lite.a VALUES (2)`);
      await run.events(3);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stored = await storedChanges(store);
      assert.deepEqual(stored.map((event) => `${event.data.table}:${String(event.data.id)}`), ['a:1', 'b:1', 'a:2']);
      assert.deepEqual(stored.map((event) => event.sequence), [1, 2, 3]);
      await run.stop();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('handlers see start, connect, each event and close in order, and status reports the capture', async () => {
    await freshSchema('life');
    await db.admin.query(`CREATE TABLE life.t (id int PRIMARY KEY)`);
    const calls: string[] = [];
    const run = await capture({
      tables: ['life.t'],
      handlers: [
        {
          onStart: () => void calls.push('start'),
          onConnect: () => void calls.push('connect'),
          onEvent: async (event) => {
            await new Promise((resolve) => setTimeout(resolve, 5)); // async handlers are awaited in order
            calls.push(`event ${String(event.data.id)}`);
          },
          onClose: () => void calls.push('close'),
        },
      ],
    });
    await run.started();
    assert.equal(run.cdc.status().state, 'streaming');
    await db.admin.query(`INSERT INTO life.t VALUES (1), (2), (3)`);
    await waitFor('three handled events', () => calls.length >= 5);
    const status = run.cdc.status();
    assert.equal(status.mode, 'replication');
    assert.equal(status.connected, true);
    assert.deepEqual(status.tables, [{ schema: 'life', name: 't' }]);
    assert.equal(status.delivered, 3);
    assert.equal(status.lastDelivered?.lsn, run.seen[2]!.data.lsn);
    await run.cdc.close();
    assert.deepEqual(calls, ['start', 'connect', 'event 1', 'event 2', 'event 3', 'close']);
    assert.equal(run.cdc.status().state, 'stopped');
    await run.stop();
  });

  test('dropSlot removes the slot and the publication', async () => {
    await freshSchema('drop');
    await db.admin.query(`CREATE TABLE drop.t (id int PRIMARY KEY)`);
    const run = await capture({ tables: ['drop.t'] });
    await run.started();
    assert.equal((await db.admin.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [run.slotName])).rowCount, 1);
    await run.cdc.dropSlot();
    assert.equal((await db.admin.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [run.slotName])).rowCount, 0);
    assert.equal((await db.admin.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [run.slotName])).rowCount, 0);
    await run.bus.close();
  });

  test('bad options are refused with the option named', () => {
    assert.throws(() => createPostgresCdc({ connectionString: '' }), { code: 'BUSBAR_ERR_INVALID_ARGUMENT', message: /connectionString/ });
    assert.throws(() => createPostgresCdc({ connectionString: db.connectionString, slotName: 'Bad-Name' }), {
      code: 'BUSBAR_ERR_INVALID_ARGUMENT',
      message: /slotName/,
    });
    assert.throws(() => createPostgresCdc({ connectionString: db.connectionString, retryInterval: -1 }), { message: /retryInterval/ });
    assert.throws(() => createPostgresCdc({ connectionString: db.connectionString, tables: ['a'], allTables: true }), {
      message: /either "tables" or "allTables"/,
    });
  });
});

describe('trigger mode through the same API', () => {
  test('mode trigger captures changes into the bus with the same event shape', async () => {
    await freshSchema('triggered');
    await db.admin.query(`CREATE TABLE triggered.t (id int PRIMARY KEY, v numeric)`);
    const { bus, store } = durableBus();
    let connected = false;
    const cdc = createPostgresCdc({
      connectionString: db.connectionString,
      mode: 'trigger',
      tables: ['triggered.t'],
      trigger: { schema: 'busbar_cdc_facade', pollInterval: 50 },
      bus,
      onWarning: () => {},
      handlers: [{ onConnect: () => void (connected = true) }],
    });
    try {
      cdc.start();
      await waitFor('capture to connect', () => connected);
      assert.equal(cdc.status().mode, 'trigger');
      await db.admin.query(`INSERT INTO triggered.t VALUES (1, 12.50); UPDATE triggered.t SET v = 13 WHERE id = 1`);
      const events = await waitFor('two changes', async () => {
        const stored = await storedChanges(store);
        return stored.length >= 2 ? stored : undefined;
      });
      assert.deepEqual(events.map((event) => [event.type, event.data.id, event.data.index, event.data.last]), [
        ['cdc.triggered.t.insert', 1, 0, false],
        ['cdc.triggered.t.update', 1, 1, true],
      ]);
      assert.deepEqual(events[0]!.data.data, { id: 1, v: '12.50' });
      assert.match(events[0]!.data.lsn, /^t:\d+$/);
    } finally {
      await cdc.dropSlot();
      await bus.close();
    }
  });
});

describe('capturing every table', () => {
  let cdc: PostgresCdc | undefined;
  after(() => cdc?.dropSlot());

  test('ensureCdcForAllTables captures tables created later and makes keyless tables updatable', async () => {
    await freshSchema('everything');
    await db.admin.query(`CREATE TABLE everything.keyless (v text)`);
    const { bus, store } = durableBus();
    const log = warningLog();
    cdc = createPostgresCdc({ connectionString: db.connectionString, allTables: true, slotName: 'all_tables', publicationName: 'all_tables', bus, onWarning: log.onWarning });
    let connected = false;
    cdc.addHandler({ onConnect: () => void (connected = true) });
    cdc.start();
    await waitFor('capture to connect', () => connected);
    assert.equal(cdc.status().tables, 'all');
    await db.admin.query(`CREATE TABLE everything.later (id int PRIMARY KEY)`);
    await db.admin.query(`INSERT INTO everything.later VALUES (1); INSERT INTO everything.keyless VALUES ('x')`);
    await db.admin.query(`UPDATE everything.keyless SET v = 'y'`); // fails without a replica identity
    const events = await waitFor('three changes', async () => {
      const stored = (await storedChanges(store)).filter((event) => event.data.schema === 'everything');
      return stored.length >= 3 ? stored : undefined;
    });
    assert.deepEqual(events.map((event) => [event.data.table, event.data.action]), [['later', 'INSERT'], ['keyless', 'INSERT'], ['keyless', 'UPDATE']]);
    assert.ok(log.warnings.some((warning) => warning.includes('"everything.keyless" has no primary key')));
    await cdc.dropSlot();
    cdc = undefined;
    await bus.close();
  });

  test('a table created and written in one transaction has its primary key in every event, however soon it is decoded', async () => {
    // PostgreSQL may send a commit before other sessions can see it: the key
    // must not be looked up in a catalog that does not show the table yet.
    await freshSchema('born');
    const { bus, store } = durableBus();
    cdc = createPostgresCdc({ connectionString: db.connectionString, allTables: true, slotName: 'born_tables', publicationName: 'born_tables', bus, snapshot: 'never' });
    let connected = false;
    cdc.addHandler({ onConnect: () => void (connected = true) });
    cdc.start();
    await waitFor('capture to connect', () => connected);
    const tables = Array.from({ length: 25 }, (_, n) => `t${n}`);
    await Promise.all(
      tables.map((table, n) =>
        db.admin.query(`CREATE TABLE born.${table} (id int PRIMARY KEY, v text); INSERT INTO born.${table} VALUES (${n + 1}, 'first')`),
      ),
    );
    const events = await waitFor('one insert per table', async () => {
      const stored = (await storedChanges(store)).filter((event) => event.data.schema === 'born');
      return stored.length >= tables.length ? stored : undefined;
    });
    assert.deepEqual(events.map((event) => [event.data.table, event.data.id]).sort(), tables.map((table, n) => [table, n + 1]).sort());
    await cdc.dropSlot();
    cdc = undefined;
    await bus.close();
  });
});
