import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openTestStore, TEST_DATABASE_URL, testPool, type TestStore } from '../store/postgres/test-database.fixture.ts';
import { bodyOf, startTestServer, type TestServer } from './test-server.fixture.ts';

describe('the server on a PostgreSQL store', () => {
  let database: TestStore;
  let t: TestServer;
  before(async () => {
    database = await openTestStore();
    t = await startTestServer({ store: database.store });
  });
  after(async () => {
    await t?.close();
    await database?.cleanup();
  });

  it('publishes single events and batches and reads them back at their positions', async () => {
    const single = await t.call('POST', '/v1/events', { type: 'order.created', id: 'pg-1', data: { id: 'o-1' } });
    assert.equal(single.statusCode, 201, single.body);
    const { position } = bodyOf(single);
    const batch = await t.call('POST', '/v1/events', [
      { type: 'order.paid', id: 'pg-2', data: { id: 'o-1' } },
      { type: 'order.shipped', id: 'pg-3', data: { id: 'o-1' } },
    ]);
    assert.equal(batch.statusCode, 201, batch.body);
    const read = bodyOf(await t.call('GET', `/v1/events?after=${position - 1}`));
    assert.deepEqual(
      read.events.map((event: { id: string }) => event.id),
      ['pg-1', 'pg-2', 'pg-3'],
    );
    assert.equal(read.events[0].sequence, position);
    assert.deepEqual(bodyOf(await t.call('GET', '/v1/events/pg-2')).data, { id: 'o-1' });
    const logged = await database.store.getEvent('pg-3');
    assert.equal(logged?.position, bodyOf(batch).events[1].position);
  });

  it('answers a retried event with its original position and keeps one copy', async () => {
    const event = { type: 'payment.made', id: 'pg-retry', data: { amount: 3 } };
    const first = bodyOf(await t.call('POST', '/v1/events', event));
    const head = await database.store.head();
    assert.deepEqual(bodyOf(await t.call('POST', '/v1/events', event)), first);
    assert.equal(await database.store.head(), head);
  });

  it('appends to streams with expected versions and answers 409 on a conflict', async () => {
    const append = (expectedVersion: unknown) =>
      t.call('POST', '/v1/streams/pg-account/events', { expectedVersion, events: [{ type: 'account.deposited', data: { amount: 1 } }] });
    assert.equal((await append('no_stream')).statusCode, 201);
    const conflict = await append('no_stream');
    assert.equal(conflict.statusCode, 409);
    assert.equal(bodyOf(conflict).error.code, 'BUSBAR_ERR_CONCURRENCY');
    assert.equal(bodyOf(await t.call('GET', '/v1/streams/pg-account')).version, 1);
  });
});

describe('the server opening PostgreSQL from a URL', () => {
  const name = `busbar_server_${randomBytes(6).toString('hex')}`;
  let admin: pg.Pool;
  let url: string;
  before(async () => {
    admin = await testPool(2);
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    const address = new URL(TEST_DATABASE_URL);
    address.pathname = `/${name}`;
    url = address.toString();
  });
  after(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    await admin.end();
  });

  it('keeps topic registrations in the database across a restart and closes the store it opened', async () => {
    const first = await startTestServer({ postgres: url });
    const schema = { type: 'object', required: ['id'] };
    assert.equal((await first.call('PUT', '/v1/topics/order.created', { schema })).statusCode, 201);
    assert.equal((await first.call('POST', '/v1/events', { type: 'order.created', data: { id: 'o-1' } })).statusCode, 201);
    const second = await first.restart();
    try {
      assert.deepEqual(bodyOf(await second.call('GET', '/v1/topics/order.created')).schema, schema);
      assert.equal((await second.call('POST', '/v1/events', { type: 'order.created', data: {} })).statusCode, 400);
      assert.equal(bodyOf(await second.call('GET', '/v1/events?topics=order.*')).events.length, 1);
    } finally {
      await second.close();
    }
    const { rows } = await admin.query('SELECT count(*)::int AS open FROM pg_stat_activity WHERE datname = $1', [name]);
    assert.equal(rows[0].open, 0, 'the server left connections open');
  });
});
