import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type CdcTestDatabase, startCdcDatabase, waitFor } from '../cdc/cdc-harness.fixture.ts';
import type { ChangeData } from '../cdc/change.ts';
import { createClient, type ReceivedEvent } from '../client/index.ts';
import type { CdcStatusView } from './cdc-capture.ts';
import { bodyOf, startTestServer, type TestServer } from './test-server.fixture.ts';

type Enabled = Extract<CdcStatusView, { enabled: true }>;

describe('a server that runs change capture', () => {
  let db: CdcTestDatabase;
  before(async () => {
    db = await startCdcDatabase();
    await db.admin.query('CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(10,2))');
    await db.admin.query(`INSERT INTO orders VALUES (1, 'before', 1.00)`);
  });
  after(() => db?.stop());

  it('streams a committed INSERT to an SSE subscriber, reports itself in /v1/cdc, and leaves no active slot after close', async () => {
    const t: TestServer = await startTestServer({
      cdc: { connectionString: db.connectionString, tables: ['orders'], slotName: 'served', publicationName: 'served', retryInterval: 200, watchdogInterval: 300 },
    });
    const status = async (): Promise<Enabled> => bodyOf<Enabled>(await t.call('GET', '/v1/cdc'));
    try {
      assert.equal((await status()).state, 'idle', 'capture starts only once the server listens');
      const { url } = await t.server.listen();
      const received: ReceivedEvent[] = [];
      const subscriber = createClient({ url }).sse('cdc.public.orders.*', (event) => void received.push(event), { from: 'beginning' });
      await subscriber.ready;
      await waitFor('capture to connect and its watchdog to check', async () => (await status()).connected && (await status()).checkedAt !== undefined, 20_000);
      // The row already there arrives first, as a READ of the initial snapshot.
      await waitFor('the snapshot row', () => received.some((event) => (event.data as ChangeData).action === 'READ'));
      await db.admin.query(`INSERT INTO orders VALUES (2, 'Ada', 250.00)`);
      await waitFor('the INSERT at the subscriber', () => received.some((event) => event.type === 'cdc.public.orders.insert'));
      await subscriber.close();
      const insert = received.find((event) => event.type === 'cdc.public.orders.insert')!;
      assert.deepEqual((insert.data as ChangeData).data, { id: 2, customer: 'Ada', total: '250.00' });
      assert.equal(insert.subject, '2');
      assert.ok(insert.sequence > 0, 'a position in the server\'s log');

      const shown = await status();
      assert.deepEqual([shown.enabled, shown.mode, shown.state, shown.connected, shown.allTables, shown.failedAttempts], [true, 'replication', 'streaming', true, false, 0]);
      assert.deepEqual(shown.tables.map((table) => [table.schema, table.name, table.snapshot?.state]), [['public', 'orders', 'done']]);
      assert.equal(shown.tables[0]!.snapshot?.rowsDone, 1);
      assert.equal(shown.delivered, 2);
      assert.equal(shown.lastDelivered?.lsn, (insert.data as ChangeData).lsn);
      assert.match(shown.confirmedPosition ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.equal(typeof shown.lag?.bytes, 'number');
      assert.deepEqual(shown.warnings, []);
      const metrics = (await t.call('GET', '/metrics')).body;
      assert.match(metrics, /^busbar_cdc_connected 1$/m);
      assert.match(metrics, /^busbar_cdc_delivered 2$/m);
    } finally {
      await t.close();
    }
    const { rows } = await db.admin.query(`SELECT active, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = 'served'`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].active, false, 'close() released the slot');
    await db.admin.query(`SELECT pg_drop_replication_slot('served')`);
  });

  it('answers { enabled: false } at /v1/cdc when it runs no capture, and lists the endpoint in its OpenAPI document', async () => {
    const t = await startTestServer();
    try {
      const response = await t.call('GET', '/v1/cdc');
      assert.equal(response.statusCode, 200);
      assert.deepEqual(bodyOf(response), { enabled: false });
      const document = bodyOf<{ paths: Record<string, { get?: { summary?: string } }> }>(await t.call('GET', '/v1/openapi.json'));
      assert.equal(document.paths['/v1/cdc']?.get?.summary, 'Change capture status');
    } finally {
      await t.close();
    }
  });

  it('keeps serving while the captured database is unreachable, showing the failure in /v1/cdc', async () => {
    const t = await startTestServer({
      cdc: { connectionString: 'postgres://postgres@127.0.0.1:1/none', tables: ['orders'], slotName: 'unreachable', retryInterval: 100, timeout: 500 },
    });
    try {
      await t.server.listen();
      await waitFor('a failed attempt', async () => bodyOf<Enabled>(await t.call('GET', '/v1/cdc')).lastError !== undefined, 10_000);
      const shown = bodyOf<Enabled>(await t.call('GET', '/v1/cdc'));
      assert.equal(shown.connected, false);
      assert.ok(shown.failedAttempts >= 1);
      assert.match(shown.lastError!.message, /ECONNREFUSED|connect/);
      assert.equal((await t.call('GET', '/v1/health')).statusCode, 200);
    } finally {
      await t.close();
    }
  });
});
