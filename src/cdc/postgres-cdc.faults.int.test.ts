import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { createBus } from '../core/bus.ts';
import type { BusbarError } from '../core/errors.ts';
import { createMemoryStore } from '../store/memory/index.ts';
import { type CdcTestDatabase, dropAllSlots, startCdcDatabase, storedChanges, waitFor, warningLog } from './cdc-harness.fixture.ts';
import type { PostgresCdcOptions } from './cdc-options.ts';
import { createPostgresCdc, type PostgresCdc } from './postgres-cdc.ts';
import { startPrivatePostgres } from './private-postgres.fixture.ts';

const SHARED_POSTGRES_URL = process.env.BUSBAR_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let db: CdcTestDatabase;
const running = new Set<PostgresCdc>();

before(async () => {
  db = await startCdcDatabase();
});

afterEach(async () => {
  await Promise.all([...running].map((cdc) => cdc.close()));
  running.clear();
});

after(async () => {
  await dropAllSlots(db.admin);
  await db.stop();
});

function capture(options: Partial<PostgresCdcOptions> & { connectionString?: string }) {
  const store = createMemoryStore();
  const bus = createBus({ store });
  const log = warningLog();
  let connects = 0;
  const cdc = createPostgresCdc({
    connectionString: db.connectionString,
    bus,
    retryInterval: 50,
    onWarning: log.onWarning,
    // These faults hit the stream; the initial snapshot's own are in snapshot/.
    snapshot: 'never',
    ...options,
    handlers: [{ onConnect: () => void connects++ }],
  });
  running.add(cdc);
  return { cdc, bus, store, warnings: log.warnings, connects: () => connects };
}

/** `count` single-row transactions into `table`, a few milliseconds apart. */
async function writeSlowly(table: string, from: number, count: number): Promise<void> {
  for (let id = from; id < from + count; id++) {
    await db.admin.query(`INSERT INTO ${table} VALUES ($1)`, [id]);
    if (id % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function assertStoredOnceInOrder(store: ReturnType<typeof createMemoryStore>, count: number): Promise<void> {
  const stored = await waitFor(`${count} stored changes`, async () => {
    const changes = await storedChanges(store);
    return changes.length >= count ? changes : undefined;
  }, 20_000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const final = await storedChanges(store);
  assert.equal(final.length, stored.length);
  assert.equal(new Set(final.map((event) => event.id)).size, count, 'each change stored once by id');
  assert.deepEqual(final.map((event) => event.data.id), Array.from({ length: count }, (_, i) => i + 1), 'each key once, in commit order');
}

describe('losing the replication connection', () => {
  test('pg_terminate_backend on the walsender: capture reconnects and nothing is lost or doubled', async () => {
    await db.admin.query(`CREATE TABLE terminated (id int PRIMARY KEY)`);
    const run = capture({ tables: ['terminated'], slotName: 'terminated', publicationName: 'terminated' });
    run.cdc.start();
    await waitFor('streaming', () => run.connects() === 1);
    const writing = writeSlowly('terminated', 1, 400);
    await waitFor('some changes stored', async () => (await storedChanges(run.store)).length > 50);
    await db.admin.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'terminated'`);
    await writing;
    await assertStoredOnceInOrder(run.store, 400);
    assert.ok(run.connects() >= 2, 'reconnected');
    assert.ok(run.warnings.some((warning) => /reconnecting/.test(warning)), run.warnings.join('\n'));
    await run.cdc.dropSlot();
  });

  test('the watchdog notices a frozen server, drops the link and capture resumes after it thaws', async () => {
    await db.admin.query(`CREATE TABLE frozen (id int PRIMARY KEY)`);
    const run = capture({
      tables: ['frozen'],
      slotName: 'frozen',
      publicationName: 'frozen',
      watchdogInterval: 200,
      timeout: 400,
    });
    run.cdc.start();
    await waitFor('streaming', () => run.connects() === 1);
    await writeSlowly('frozen', 1, 100);
    await waitFor('the first hundred stored', async () => (await storedChanges(run.store)).length === 100);
    db.postgres.kill('SIGSTOP');
    try {
      await waitFor('the watchdog to call the link dead', () => run.warnings.some((warning) => /did not answer the watchdog/.test(warning)), 5000);
      await waitFor('the capture to count itself disconnected', () => !run.cdc.status().connected);
      await new Promise((resolve) => setTimeout(resolve, 600)); // longer than watchdogInterval + timeout
    } finally {
      db.postgres.kill('SIGCONT');
    }
    await writeSlowly('frozen', 101, 100);
    await assertStoredOnceInOrder(run.store, 200);
    await waitFor('streaming again', () => run.cdc.status().state === 'streaming');
    assert.ok(run.connects() >= 2, 'reconnected after the thaw');
    await run.cdc.dropSlot();
  });
});

describe('a slow bus', () => {
  test('a reader paused longer than wal_sender_timeout keeps its connection and then catches up', async () => {
    const strict = await startCdcDatabase({ wal_sender_timeout: '1s' });
    const gate = { open: false };
    const run = capture({
      connectionString: strict.connectionString,
      tables: ['public.paused'],
      slotName: 'paused',
      publicationName: 'paused',
      maxInFlight: 10,
    });
    run.cdc.addHandler({
      onEvent: async () => {
        while (!gate.open) await new Promise((resolve) => setTimeout(resolve, 20));
      },
    });
    try {
      await strict.admin.query(`CREATE TABLE public.paused (id int PRIMARY KEY)`);
      run.cdc.start();
      await waitFor('streaming', () => run.connects() === 1);
      await strict.admin.query(`DO $$ BEGIN FOR i IN 1..100 LOOP INSERT INTO public.paused VALUES (i); COMMIT; END LOOP; END $$`);
      await new Promise((resolve) => setTimeout(resolve, 3000)); // three timeouts with reading paused
      gate.open = true;
      await assertStoredOnceInOrder(run.store, 100);
      assert.equal(run.connects(), 1, `the server dropped the paused reader: ${run.warnings.join('; ')}`);
      await run.cdc.dropSlot();
    } finally {
      await run.cdc.close();
      await strict.stop();
    }
  });
});

describe('giving up and setup errors', () => {
  test('with retryAttempts 2 against a stopped server, onError gets BUSBAR_ERR_CDC_GAVE_UP with the last error', async () => {
    const stopped = await startPrivatePostgres();
    try {
      await stopped.stopServer();
      const errors: BusbarError[] = [];
      const run = capture({ connectionString: stopped.connectionString, retryAttempts: 2, retryInterval: 20, onError: (error) => errors.push(error) });
      await run.cdc.run(); // resolves: onError took the error
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.code, 'BUSBAR_ERR_CDC_GAVE_UP');
      assert.match(errors[0]!.message, /after 2 failed connection attempts/);
      assert.match(String((errors[0]!.cause as Error).message), /ECONNREFUSED|connect/);
      assert.equal(run.cdc.status().state, 'gave-up');
      assert.equal(run.cdc.status().failedAttempts, 2);
      // Without onError, run() rejects with it.
      const bare = capture({ connectionString: stopped.connectionString, retryAttempts: 1, retryInterval: 20 });
      await assert.rejects(bare.cdc.run(), { code: 'BUSBAR_ERR_CDC_GAVE_UP' });
    } finally {
      await stopped.stop();
    }
  });

  test('wal_level = replica is a setup error that names the fix', async () => {
    const shared = new pg.Pool({ connectionString: SHARED_POSTGRES_URL, max: 1 });
    const schema = `cdc_setup_${randomBytes(4).toString('hex')}`;
    try {
      await shared.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (id int PRIMARY KEY)`).catch((error: Error) => {
        throw new Error(`the shared PostgreSQL at ${SHARED_POSTGRES_URL} is not reachable (${error.message}); these tests do not skip`);
      });
      const level = (await shared.query(`SHOW wal_level`)).rows[0].wal_level;
      assert.notEqual(level, 'logical', 'this test needs a server without wal_level=logical');
      const run = capture({ connectionString: SHARED_POSTGRES_URL, retryAttempts: 1 });
      await assert.rejects(run.cdc.ensureCdcFor(`${schema}.t`), {
        code: 'BUSBAR_ERR_CDC_SETUP',
        message: /wal_level = logical .*ALTER SYSTEM SET wal_level = logical/,
      });
      await assert.rejects(run.cdc.run(), (error: BusbarError) => {
        assert.equal(error.code, 'BUSBAR_ERR_CDC_GAVE_UP');
        assert.equal((error.cause as BusbarError).code, 'BUSBAR_ERR_CDC_SETUP');
        return true;
      });
      assert.equal((await shared.query(`SELECT 1 FROM pg_publication WHERE pubname = 'busbar'`)).rowCount, 0, 'nothing was set up');
    } finally {
      await shared.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await shared.end();
    }
  });

  test('a user without the REPLICATION right gets a setup error that names the fix', async () => {
    await db.admin.query(`CREATE ROLE plain LOGIN; GRANT CREATE ON DATABASE postgres TO plain`);
    const url = new URL(db.connectionString);
    url.username = 'plain';
    const run = capture({ connectionString: url.toString(), retryAttempts: 1, slotName: 'plain', publicationName: 'plain' });
    await assert.rejects(run.cdc.run(), (error: BusbarError) => {
      assert.equal(error.code, 'BUSBAR_ERR_CDC_GAVE_UP');
      assert.equal((error.cause as BusbarError).code, 'BUSBAR_ERR_CDC_SETUP');
      assert.match((error.cause as Error).message, /ALTER ROLE <user> REPLICATION/);
      return true;
    });
  });

  test('a slot another reader holds is a slot error', async () => {
    await db.admin.query(`CREATE TABLE contested (id int PRIMARY KEY)`);
    const holder = capture({ tables: ['contested'], slotName: 'contested', publicationName: 'contested' });
    holder.cdc.start();
    await waitFor('the first reader streaming', () => holder.connects() === 1);
    const second = capture({ slotName: 'contested', publicationName: 'contested', retryAttempts: 1, timeout: 300 });
    await assert.rejects(second.cdc.run(), (error: BusbarError) => {
      assert.equal((error.cause as BusbarError).code, 'BUSBAR_ERR_CDC_SLOT');
      assert.match((error.cause as Error).message, /in use by another reader/);
      return true;
    });
    await holder.cdc.dropSlot();
  });

  test('a slot made for another plugin is a slot error', async () => {
    await db.admin.query(`SELECT pg_create_logical_replication_slot('other_plugin', 'test_decoding')`);
    const run = capture({ slotName: 'other_plugin', publicationName: 'other_plugin', retryAttempts: 1 });
    await assert.rejects(run.cdc.run(), (error: BusbarError) => {
      assert.equal((error.cause as BusbarError).code, 'BUSBAR_ERR_CDC_SLOT');
      assert.match((error.cause as Error).message, /for plugin test_decoding, not a logical pgoutput slot/);
      return true;
    });
  });

  test('no free replication slot is a setup error that names the fix', async () => {
    const small = await startPrivatePostgres({ settings: { max_replication_slots: '1' } });
    const admin = new pg.Client({ connectionString: small.connectionString });
    try {
      await admin.connect();
      await admin.query(`SELECT pg_create_logical_replication_slot('taken', 'pgoutput')`);
      const run = capture({ connectionString: small.connectionString, retryAttempts: 1 });
      await assert.rejects(run.cdc.run(), (error: BusbarError) => {
        assert.equal((error.cause as BusbarError).code, 'BUSBAR_ERR_CDC_SETUP');
        assert.match((error.cause as Error).message, /max_replication_slots/);
        return true;
      });
      await admin.query(`SELECT pg_drop_replication_slot('taken')`);
    } finally {
      await admin.end().catch(() => {});
      await small.stop();
    }
  });
});
