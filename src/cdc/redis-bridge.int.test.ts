import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { type ChangeData, changeEvent } from './change.ts';
import { createRedisBridge, type RedisChangeMessage } from './redis-bridge.ts';
import { openCaptureDatabase, startStream } from './trigger/trigger-test.fixture.ts';

const REDIS_URL = process.env.BUSBAR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const origin = { source: 'postgresql://127.0.0.1/test', idPrefix: 'test' };

type Client = ReturnType<typeof createClient>;
let subscriber: Client;
/** Unique per run, so parallel runs never hear each other. */
const run = randomBytes(4).toString('hex');

before(async () => {
  subscriber = createClient({ url: REDIS_URL, socket: { reconnectStrategy: false } });
  subscriber.on('error', () => {});
  try {
    await subscriber.connect();
  } catch (error) {
    throw new Error(`Redis is not reachable at ${REDIS_URL} (${(error as Error).message}). Start it (see /work/shared/services.md); these tests do not skip.`, {
      cause: error,
    });
  }
});

after(async () => {
  await subscriber?.close();
});

/** Subscribes to `channel` and collects the parsed messages. */
async function listen(channel: string): Promise<RedisChangeMessage[]> {
  const heard: RedisChangeMessage[] = [];
  await subscriber.subscribe(channel, (message) => heard.push(JSON.parse(message) as RedisChangeMessage));
  return heard;
}

async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ready()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function change(schema: string, table: string, index: number): ChangeData {
  return {
    timestamp: '2024-05-01T10:00:00.123456Z',
    schema,
    table,
    action: 'INSERT',
    id: index,
    data: { id: index, big: '9223372036854775807' },
    old: null,
    changes: null,
    unchanged: [],
    txid: '77',
    lsn: 't:5',
    index,
    last: index === 2,
  };
}

describe('the Redis bridge against a real Redis', () => {
  test('publishes each change, in order, to <schema>.<table>.cdc_events with the names as they are', async () => {
    const schema = `shop_${run}`;
    const table = 'Mixed Case "ünï"';
    const heard = await listen(`${schema}.${table}.cdc_events`);
    const bridge = createRedisBridge({ url: REDIS_URL });
    await bridge.onStart();
    for (let i = 0; i < 3; i++) await bridge.onEvent(changeEvent(change(schema, table, i), origin));
    await until(() => heard.length === 3, 'three messages');
    await bridge.onClose();
    assert.deepEqual(heard.map((message) => [message.index, message.last, message.id]), [[0, false, 0], [1, false, 1], [2, true, 2]]);
    const { unchanged: _none, ...expected } = change(schema, table, 0);
    assert.deepEqual(heard[0], expected, 'the payload, without an empty unchanged list');
  });

  test('a client you pass is used as it is and left open; a channel function picks the channel', async () => {
    const client = createClient({ url: REDIS_URL });
    client.on('error', () => {});
    await client.connect();
    const heard = await listen(`all-changes-${run}`);
    const bridge = createRedisBridge({ client, channel: () => `all-changes-${run}` });
    await bridge.onEvent(changeEvent(change('a', 'b', 0), origin));
    await until(() => heard.length === 1, 'the message');
    await bridge.onClose();
    assert.equal(client.isOpen, true, 'your client stays open');
    await client.close();
  });

  test('a wrong address fails at start with BUSBAR_ERR_UNREACHABLE instead of retrying for ever', async () => {
    const bridge = createRedisBridge({ url: 'redis://127.0.0.1:1' });
    await assert.rejects(bridge.onStart(), { code: 'BUSBAR_ERR_UNREACHABLE' });
  });

  test('end to end: rows written in PostgreSQL reach a Redis subscriber through trigger capture', async (t) => {
    const db = await openCaptureDatabase();
    t.after(() => db.cleanup());
    await db.admin.query(`CREATE TABLE ${db.quotedApp}.person (id int PRIMARY KEY, name text)`);
    const source = db.source();
    await source.ensureFor([{ schema: db.app, name: 'person' }], { replicaIdentityFull: new Map() });
    const heard = await listen(`${db.app}.person.cdc_events`);
    const bridge = createRedisBridge({ url: REDIS_URL });
    await bridge.onStart();
    const stream = startStream(source, {
      async deliver(transaction) {
        for (const each of transaction.changes) await bridge.onEvent(changeEvent(each, origin));
      },
    });
    t.after(async () => {
      await stream.stop().catch(() => {});
      await bridge.onClose();
    });
    await stream.connected;
    await db.admin.query(`INSERT INTO ${db.quotedApp}.person VALUES (1, 'Ada')`);
    await db.admin.query(`UPDATE ${db.quotedApp}.person SET name = 'Ada L.' WHERE id = 1`);
    await until(() => heard.length === 2, 'both changes on the channel');
    assert.deepEqual(
      heard.map((message) => [message.action, message.id, message.data]),
      [
        ['INSERT', 1, { id: 1, name: 'Ada' }],
        ['UPDATE', 1, { id: 1, name: 'Ada L.' }],
      ],
    );
    assert.deepEqual(heard[1]!.changes, [{ column: 'name', old: 'Ada', new: 'Ada L.' }]);
  });
});
