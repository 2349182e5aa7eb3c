// Change data capture: every committed change of a PostgreSQL table becomes
// an event on a durable bus. The example creates a table in a schema of its
// own, streams its changes to the terminal and to Redis (the channel
// <schema>.orders.cdc_events), checks what it saw, and cleans up (slot,
// publication, schema). It needs a server with wal_level=logical, and Redis:
//   BUSBAR_CDC_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres npx node examples/cdc.ts
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createClient } from 'redis';
import { type BusbarEvent, createBus } from '../src/index.ts';
import { createMemoryStore } from '../src/store/index.ts';
import { type ChangeData, createPostgresCdc, createRedisBridge } from '../src/cdc/index.ts';

const url = process.env.BUSBAR_CDC_POSTGRES_URL;
if (url === undefined) {
  console.error('Set BUSBAR_CDC_POSTGRES_URL to a PostgreSQL server with wal_level=logical.');
  process.exit(1);
}

const suffix = randomBytes(4).toString('hex');
const schema = `cdc_example_${suffix}`;
const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
await admin.query(`CREATE TABLE ${schema}.orders (id int PRIMARY KEY, customer text, total numeric(10,2), items jsonb)`);

// A durable bus: a change is confirmed to PostgreSQL only once the store holds it.
const store = createMemoryStore();
const bus = createBus({ store });

const seen: BusbarEvent<ChangeData>[] = [];
let sawAll!: () => void;
const allSeen = new Promise<void>((resolve) => (sawAll = resolve));
bus.subscribe('terminal', `cdc.${schema}.orders.*`, (event) => {
  const change = event as BusbarEvent<ChangeData>; // every cdc.* event carries a change
  const { id, data, changes } = change.data;
  console.log(`${event.type}  id=${JSON.stringify(id)}  ${JSON.stringify(changes ?? data)}`);
  seen.push(change);
  if (seen.length === 4) sawAll();
});
// "ON INSERT orders EXECUTE …": a subscription with a row filter.
const bigOrders: unknown[] = [];
bus.subscribe('big-orders', `cdc.${schema}.orders.insert`, (event) => {
  const { data, id } = event.data as ChangeData;
  if (Number(data?.total) >= 100) bigOrders.push(id);
});

// Redis: anyone subscribed to the table's channel gets each change as JSON.
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const listener = createClient({ url: redisUrl });
await listener.connect();
const fromRedis: { action: string; id: unknown }[] = [];
await listener.subscribe(`${schema}.orders.cdc_events`, (message) => {
  const change = JSON.parse(message) as { action: string; id: unknown };
  fromRedis.push({ action: change.action, id: change.id });
});

let connected!: () => void;
const streaming = new Promise<void>((resolve) => (connected = resolve));
const cdc = createPostgresCdc({
  connectionString: url,
  tables: [`${schema}.orders`],
  slotName: `example_${suffix}`,
  publicationName: `example_${suffix}`,
  bus,
  handlers: [{ onConnect: () => connected() }, createRedisBridge({ url: redisUrl })],
  onError: (error) => console.error('capture gave up:', error),
});

try {
  cdc.start();
  await streaming;

  await admin.query('BEGIN');
  await admin.query(`INSERT INTO ${schema}.orders VALUES (1, 'Ada', 250.00, '["lamp", "desk"]')`);
  await admin.query(`INSERT INTO ${schema}.orders VALUES (2, 'Grace', 12.50, '["pen"]')`);
  await admin.query('COMMIT');
  await admin.query(`UPDATE ${schema}.orders SET total = 15.00 WHERE id = 2`);
  await admin.query(`DELETE FROM ${schema}.orders WHERE id = 1`);
  await admin.query(`BEGIN; INSERT INTO ${schema}.orders VALUES (3, 'never', 1, '[]'); ROLLBACK`);

  await allSeen;
  await bus.idle();
  assert.deepEqual(seen.map((event) => [event.data.action, event.data.id]), [
    ['INSERT', 1],
    ['INSERT', 2],
    ['UPDATE', 2],
    ['DELETE', 1],
  ]);
  // One transaction: the same commit position, numbered, the last one marked.
  assert.equal(seen[0]!.data.lsn, seen[1]!.data.lsn);
  assert.deepEqual(seen.slice(0, 2).map((event) => [event.data.index, event.data.last]), [[0, false], [1, true]]);
  // Values keep their types: numeric stays exact, jsonb is parsed.
  assert.deepEqual(seen[0]!.data.data, { id: 1, customer: 'Ada', total: '250.00', items: ['lamp', 'desk'] });
  assert.deepEqual(seen[2]!.data.changes, [{ column: 'total', old: '12.50', new: '15.00' }]);
  assert.deepEqual(bigOrders, [1]);
  // The same changes reach Redis (a change is confirmed only once Redis took it).
  for (let waited = 0; fromRedis.length < 4 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(fromRedis, seen.map((event) => ({ action: event.data.action, id: event.data.id })));
  // Every change is in the log, once (its id is derived from where it committed).
  assert.equal((await store.readAll()).events.length, 4);
  console.log('status:', cdc.status().state, 'delivered', cdc.status().delivered);
} finally {
  await cdc.dropSlot(); // a forgotten slot makes the server keep WAL for ever
  await bus.close();
  await listener.quit();
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}
