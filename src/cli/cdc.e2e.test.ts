import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createClient as createRedisClient } from 'redis';
import { type CdcTestDatabase, startCdcDatabase, storedChanges, waitFor } from '../cdc/cdc-harness.fixture.ts';
import type { ChangeData } from '../cdc/change.ts';
import { parseLsn } from '../cdc/replication/lsn.ts';
import { createClient } from '../client/index.ts';
import { type LiveServer, startLiveServer } from '../client/live-server.fixture.ts';
import type { BusbarEvent } from '../core/event.ts';
import { secretFor } from '../server/test-server.fixture.ts';
import { dropSchema, TEST_DATABASE_URL, testPool } from '../store/postgres/test-database.fixture.ts';
import { type CliProcess, runCli, startCli } from './cli-process.fixture.ts';

type Change = BusbarEvent<ChangeData>;

function printed(stdout: string): Change[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Change);
}

/** Resolves once the process said on stderr that it streams (or fails, with its output). */
async function streaming(cli: CliProcess): Promise<void> {
  await waitFor(`"streaming changes" on stderr\nstderr: ${cli.stderr}`, () => {
    if (cli.child.exitCode !== null) throw new Error(`busbar cdc exited ${cli.child.exitCode}: ${cli.stderr}`);
    return /busbar: streaming changes of /.test(cli.stderr);
  }, 20_000);
}

async function interrupt(cli: CliProcess): Promise<string> {
  cli.child.kill('SIGINT');
  const finished = await cli.exited;
  assert.equal(finished.code, 0, `exit ${finished.code}\nstderr: ${finished.stderr}`);
  return finished.stdout;
}

// A broken capture would wait for ever: each test has a deadline instead.
describe('busbar cdc', { timeout: 90_000 }, () => {
  let db: CdcTestDatabase;
  before(async () => {
    db = await startCdcDatabase();
  });
  after(() => db?.stop());

  /** Drops a slot once no reader holds it. */
  const dropSlot = async (slot: string): Promise<void> => {
    await waitFor(`slot ${slot} to be released`, async () => (await db.admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [slot])).rowCount === 0);
    await db.admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  };

  it('prints the rows a table holds, then every committed change, one JSON line each when piped, and resumes after them once restarted', async () => {
    await db.admin.query('CREATE TABLE a_orders (id int PRIMARY KEY, customer text, total numeric(10,2))');
    await db.admin.query(`INSERT INTO a_orders VALUES (1, 'Ada', 250.00), (2, 'Grace', 12.50)`);
    const args = ['cdc', '--postgres', db.connectionString, '--tables', 'a_orders', '--slot', 'cli_stdout', '--publication', 'cli_stdout'];
    const first = startCli(args);
    try {
      await streaming(first);
      await first.line(/"action":"READ".*"id":2|"id":2.*"action":"READ"/);
      await first.line(/"action":"READ".*"id":1|"id":1.*"action":"READ"/);
      await db.admin.query(`BEGIN; INSERT INTO a_orders VALUES (3, 'Linus', 1); INSERT INTO a_orders VALUES (4, 'Ken', 2); COMMIT`);
      await db.admin.query('UPDATE a_orders SET total = 15.00 WHERE id = 2');
      await db.admin.query(`BEGIN; INSERT INTO a_orders VALUES (99, 'never', 0); ROLLBACK`);
      await db.admin.query('DELETE FROM a_orders WHERE id = 1');
      await first.line(/"type":"cdc\.public\.a_orders\.delete"/);
    } finally {
      first.child.kill('SIGINT');
    }
    const lines = printed((await first.exited).stdout);
    assert.equal((await first.exited).code, 0, first.stderr);
    assert.deepEqual(lines.filter((event) => event.data.action === 'READ').map((event) => event.data.id).sort(), [1, 2]);
    const changes = lines.filter((event) => event.data.action !== 'READ');
    assert.deepEqual(changes.map((event) => [event.type, event.data.id]), [
      ['cdc.public.a_orders.insert', 3],
      ['cdc.public.a_orders.insert', 4],
      ['cdc.public.a_orders.update', 2],
      ['cdc.public.a_orders.delete', 1],
    ]);
    assert.equal(changes[0]!.data.lsn, changes[1]!.data.lsn, 'one transaction, one commit position');
    assert.deepEqual(changes.slice(0, 2).map((event) => [event.data.index, event.data.last]), [[0, false], [1, true]]);
    assert.deepEqual(changes[2]!.data.changes, [{ column: 'total', old: '12.50', new: '15.00' }]);
    assert.equal(changes[2]!.subject, '2');

    // Stopped with SIGINT, it confirmed what it printed: a restart prints only what is new.
    const second = startCli(args);
    try {
      await streaming(second);
      await db.admin.query(`INSERT INTO a_orders VALUES (5, 'Barbara', 3)`);
      await second.line(/"type":"cdc\.public\.a_orders\.insert"/);
    } finally {
      const again = printed(await interrupt(second));
      assert.deepEqual(again.map((event) => [event.data.action, event.data.id]), [['INSERT', 5]]);
      await dropSlot('cli_stdout');
    }
  });

  it('publishes to a server: after a kill -9 mid-burst and a restart, every committed change is in its log exactly once, in commit order', async () => {
    await db.admin.query('CREATE TABLE b_burst (writer int, n int, payload text, PRIMARY KEY (writer, n))');
    const live: LiveServer = await startLiveServer();
    const args = [
      'cdc', '--postgres', db.connectionString, '--tables', 'b_burst', '--slot', 'cli_server', '--publication', 'cli_server',
      '--snapshot', 'never', '--server', live.url, '--quiet', '--retry-interval', '200',
    ];
    const changesInLog = async (): Promise<Change[]> => (await storedChanges(live.server.context.store)).filter((event) => event.type.startsWith('cdc.public.b_burst.'));
    let second: CliProcess | undefined;
    try {
      const first = startCli(args);
      await streaming(first);
      // Four writers, transactions of 1-3 rows, every seventh rolled back.
      const committed = new Set<string>();
      const write = async (writer: number): Promise<void> => {
        const client = new pg.Client({ connectionString: db.connectionString });
        await client.connect();
        try {
          let n = 0;
          for (let transaction = 0; transaction < 150; transaction++) {
            const rows = Array.from({ length: 1 + (transaction % 3) }, () => n++);
            await client.query('BEGIN');
            for (const row of rows) await client.query('INSERT INTO b_burst VALUES ($1, $2, $3)', [writer, row, `w${writer}-${row}`]);
            const rollback = transaction % 7 === 6;
            await client.query(rollback ? 'ROLLBACK' : 'COMMIT');
            if (!rollback) for (const row of rows) committed.add(`${writer}:${row}`);
          }
        } finally {
          await client.end();
        }
      };
      const writers = Promise.all([1, 2, 3, 4].map(write));
      await waitFor('the first changes in the server log', async () => (await live.server.context.store.head()) >= 100, 30_000);
      first.child.kill('SIGKILL');
      const committedAtKill = committed.size;
      const killed = await first.exited;
      assert.equal(killed.signal, 'SIGKILL');
      second = startCli(args);
      await writers;
      assert.ok(committedAtKill < committed.size, `the kill came mid-burst (${committedAtKill} of ${committed.size} committed)`);
      await waitFor(`all ${committed.size} committed changes in the log`, async () => (await changesInLog()).length >= committed.size, 60_000);

      const logged = await changesInLog();
      assert.equal(logged.length, committed.size, 'each committed change once');
      assert.equal(new Set(logged.map((event) => event.id)).size, logged.length, 'no id twice');
      assert.deepEqual(new Set(logged.map((event) => `${(event.data.id as { writer: number }).writer}:${(event.data.id as { n: number }).n}`)), committed);
      for (let k = 1; k < logged.length; k++) {
        const [previous, current] = [logged[k - 1]!.data, logged[k]!.data];
        const order = parseLsn(current.lsn) - parseLsn(previous.lsn);
        assert.ok(order > 0n || (order === 0n && current.index === previous.index + 1), `commit order broken at ${k}: ${previous.lsn}/${previous.index} then ${current.lsn}/${current.index}`);
        if (order > 0n) assert.ok(previous.last && current.index === 0, `a transaction was split at ${k}`);
      }
      assert.match(second.stderr, /busbar: streaming changes of b_burst/);
      await interrupt(second);
    } finally {
      if (second !== undefined && second.child.exitCode === null) second.child.kill('SIGKILL');
      await live.close();
      await dropSlot('cli_server');
    }
  });

  it('stops with exit 1 when the server refuses the changes, confirming none of them, so a run with the right key delivers them', async () => {
    await db.admin.query('CREATE TABLE c_refused (id int PRIMARY KEY)');
    const live = await startLiveServer({
      apiKeys: [
        { name: 'reader', key: secretFor('reader'), subscribe: ['>'] },
        { name: 'capture', key: secretFor('capture'), publish: ['cdc.>'], admin: true },
      ],
    });
    const args = ['cdc', '--postgres', db.connectionString, '--tables', 'c_refused', '--slot', 'cli_refused', '--publication', 'cli_refused', '--snapshot', 'never', '--server', live.url, '--retry-interval', '200'];
    try {
      const refused = startCli([...args, '--api-key', secretFor('reader')]);
      await streaming(refused);
      await db.admin.query('INSERT INTO c_refused VALUES (1)');
      const finished = await refused.exited;
      assert.equal(finished.code, 1, finished.stderr);
      assert.match(finished.stderr, /^busbar: BUSBAR_ERR_FORBIDDEN: .*may not publish to "cdc\.public\.c_refused\.insert"$/m);
      assert.equal(finished.stdout, '', 'nothing printed: the server did not take it');

      const accepted = startCli([...args, '--api-key', secretFor('capture')]);
      const line = await accepted.line(/"type":"cdc\.public\.c_refused\.insert"/);
      assert.equal((JSON.parse(line) as Change).data.id, 1);
      await interrupt(accepted);
      const page = await createClient({ url: live.url, apiKey: secretFor('capture') }).read({ topics: ['cdc.>'] });
      assert.deepEqual(page.events.map((event) => (event.data as ChangeData).id), [1]);
    } finally {
      await live.close();
      await dropSlot('cli_refused');
    }
  });

  it('publishes each change to Redis on <schema>.<table>.cdc_events, where a subscriber gets it as JSON', async () => {
    const table = `d_redis_${randomBytes(4).toString('hex')}`;
    await db.admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text)`);
    const subscriber = createRedisClient({ url: 'redis://127.0.0.1:6379' });
    await subscriber.connect().catch((error: unknown) => {
      throw new Error(`Redis is not reachable at 127.0.0.1:6379 (${String(error)}): start it; this test does not skip`);
    });
    const messages: { action: string; id: unknown; index: number; last: boolean; data: unknown }[] = [];
    await subscriber.subscribe(`public.${table}.cdc_events`, (message) => messages.push(JSON.parse(message)));
    const cli = startCli([
      'cdc', '--postgres', db.connectionString, '--tables', table, '--slot', 'cli_redis', '--publication', 'cli_redis',
      '--snapshot', 'never', '--redis', 'redis://127.0.0.1:6379', '--quiet',
    ]);
    try {
      await streaming(cli);
      await db.admin.query(`BEGIN; INSERT INTO ${table} VALUES (1, 'a'); INSERT INTO ${table} VALUES (2, 'b'); COMMIT`);
      await db.admin.query(`UPDATE ${table} SET name = 'c' WHERE id = 1`);
      await waitFor('three messages on the Redis channel', () => messages.length >= 3);
      assert.deepEqual(messages.map((message) => [message.action, message.id, message.index, message.last]), [
        ['INSERT', 1, 0, false],
        ['INSERT', 2, 1, true],
        ['UPDATE', 1, 0, true],
      ]);
      assert.deepEqual(messages[2]!.data, { id: 1, name: 'c' });
      assert.equal(await interrupt(cli), '', '--quiet prints nothing');
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await subscriber.quit();
      await dropSlot('cli_redis');
    }
  });

  it('captures in trigger mode from the shared PostgreSQL, which has no logical replication', async () => {
    const admin = await testPool(2);
    const suffix = randomBytes(5).toString('hex');
    const app = `cli_app_${suffix}`;
    const busbarSchema = `cli_busbar_${suffix}`;
    await admin.query(`CREATE SCHEMA ${app}; CREATE TABLE ${app}.people (id int PRIMARY KEY, name text)`);
    const cli = startCli(['cdc', '--postgres', TEST_DATABASE_URL, '--tables', `${app}.people`, '--mode', 'trigger', '--trigger-schema', busbarSchema, '--slot', 'cli_reader']);
    try {
      await streaming(cli);
      await admin.query(`INSERT INTO ${app}.people VALUES (1, 'Ada'), (2, 'Grace')`);
      await admin.query(`DELETE FROM ${app}.people WHERE id = 2`);
      await cli.line(new RegExp(`"type":"cdc\\.${app}\\.people\\.delete"`));
      const lines = printed(await interrupt(cli));
      assert.deepEqual(lines.map((event) => [event.data.action, event.data.id, event.data.lsn.startsWith('t:')]), [
        ['INSERT', 1, true],
        ['INSERT', 2, true],
        ['DELETE', 2, true],
      ]);
      assert.match(cli.stderr, /trigger mode, reader cli_reader/);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await cli.exited;
      await dropSchema(admin, app);
      await dropSchema(admin, busbarSchema);
      await admin.end();
    }
  });

  it('exits 1 with what to change when the database\'s wal_level is not logical, instead of retrying for ever', async () => {
    const admin = await testPool(2);
    const name = `cli_setup_${randomBytes(5).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${name}; CREATE TABLE ${name}.t (id int PRIMARY KEY)`);
    try {
      const { code, stdout, stderr } = await runCli([
        'cdc', '--postgres', TEST_DATABASE_URL, '--tables', `${name}.t`, '--slot', name, '--publication', name, '--snapshot', 'never', '--retry-interval', '100',
      ]);
      assert.equal(code, 1, stderr);
      assert.equal(stdout, '');
      assert.match(stderr, /^busbar: BUSBAR_ERR_CDC_SETUP: logical replication needs wal_level = logical .*ALTER SYSTEM SET wal_level = logical/m);
    } finally {
      await admin.query(`DROP PUBLICATION IF EXISTS ${name}`);
      await dropSchema(admin, name);
      await admin.end();
    }
  });

  it('busbar serve --cdc-postgres publishes changes into its own log, shows them in /v1/cdc, and leaves the slot inactive after SIGTERM', async () => {
    await db.admin.query('CREATE TABLE e_served (id int PRIMARY KEY, name text)');
    const directory = mkdtempSync(join(tmpdir(), 'busbar-cli-cdc-'));
    const serve = startCli([
      'serve', '--port', '0', '--data', join(directory, 'events.db'), '--cdc-postgres', db.connectionString, '--cdc-tables', 'e_served',
      '--cdc-slot', 'cli_serve', '--cdc-publication', 'cli_serve', '--cdc-snapshot', 'never',
    ]);
    try {
      const { url } = JSON.parse(await serve.line(/"msg":"busbar listening on /)) as { url: string };
      const status = async () => (await (await fetch(`${url}/v1/cdc`)).json()) as { enabled: boolean; connected: boolean; state: string; tables: unknown; delivered: number };
      await waitFor('capture to connect', async () => (await status()).connected, 20_000);
      await db.admin.query(`INSERT INTO e_served VALUES (7, 'served')`);
      const client = createClient({ url });
      const event = await waitFor('the change in the log', async () => (await client.read({ topics: ['cdc.public.e_served.*'] })).events[0]);
      assert.deepEqual([event.type, (event.data as ChangeData).data], ['cdc.public.e_served.insert', { id: 7, name: 'served' }]);
      const shown = await status();
      assert.deepEqual([shown.enabled, shown.state, shown.tables, shown.delivered], [true, 'streaming', [{ schema: 'public', name: 'e_served' }], 1]);
      serve.child.kill('SIGTERM');
      const finished = await serve.exited;
      assert.equal(finished.code, 0, finished.stderr);
      const { rows } = await db.admin.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', ['cli_serve']);
      assert.deepEqual(rows, [{ active: false }]);
    } finally {
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
      await serve.exited;
      rmSync(directory, { recursive: true, force: true });
      await dropSlot('cli_serve');
    }
  });

  it('exits 1 naming a table that does not exist or a server it cannot reach, and 2 for a command line that does not say what to capture', async () => {
    const missing = await runCli(['cdc', '--postgres', db.connectionString, '--tables', 'no_such_table', '--slot', 'cli_missing']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^busbar: BUSBAR_ERR_NOT_FOUND: .*no_such_table/);
    const usage = await runCli(['cdc', '--postgres', db.connectionString]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^busbar: BUSBAR_ERR_INVALID_ARGUMENT: say what to capture: --tables a,b or --all-tables\nrun "busbar cdc --help" for usage\n$/);
    const quiet = await runCli(['cdc', '--postgres', db.connectionString, '--tables', 'x', '--quiet']);
    assert.equal(quiet.code, 2);
    assert.match(quiet.stderr, /--quiet without --server or --redis/);
    const noServer = await runCli(['cdc', '--postgres', db.connectionString, '--tables', 'x', '--server', 'http://127.0.0.1:1']);
    assert.equal(noServer.code, 1);
    assert.match(noServer.stderr, /^busbar: BUSBAR_ERR_UNREACHABLE: cannot reach the Busbar server at http:\/\/127\.0\.0\.1:1/);
    const { rows } = await db.admin.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'cli_missing'`);
    assert.deepEqual(rows, [], 'a failed start leaves no slot behind');
  });
});
