import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BusbarError } from '../core/errors.ts';
import { type ChangeData, changeEvent } from './change.ts';
import { createRedisBridge, messageOf, redisBridge, redisLoader } from './redis-bridge.ts';

const change: ChangeData = {
  timestamp: '2024-05-01T10:00:00.123456Z',
  schema: 'public',
  table: 'person',
  action: 'UPDATE',
  id: 7,
  data: { id: 7, name: 'Ada' },
  old: { id: 7, name: 'Ad' },
  changes: [{ column: 'name', old: 'Ad', new: 'Ada' }],
  unchanged: [],
  txid: '901',
  lsn: 't:12',
  index: 0,
  last: true,
};
const origin = { source: 'postgresql://db/shop', idPrefix: 'db' };

describe('the Redis bridge, without Redis', () => {
  test("a missing redis package fails at start with BUSBAR_ERR_MISSING_DRIVER naming it", async () => {
    const missing = Object.assign(new Error("Cannot find package 'redis'"), { code: 'ERR_MODULE_NOT_FOUND' });
    const bridge = redisBridge({ url: 'redis://127.0.0.1:6379' }, redisLoader(() => Promise.reject(missing)));
    await assert.rejects(bridge.onStart(), (error: unknown) => {
      return error instanceof BusbarError && error.code === 'BUSBAR_ERR_MISSING_DRIVER' && error.details?.package === 'redis';
    });
  });

  test('it needs exactly one of url and client, and a sensible timeout', () => {
    assert.throws(() => createRedisBridge({} as never), { code: 'BUSBAR_ERR_INVALID_ARGUMENT' });
    assert.throws(() => createRedisBridge({ url: 'redis://x', client: { publish: async () => 0 } } as never), {
      code: 'BUSBAR_ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => createRedisBridge({ url: 'redis://x', timeout: 0 }), { code: 'BUSBAR_ERR_INVALID_ARGUMENT' });
  });

  test("publishes the seed's payload plus where the change sits, to <schema>.<table>.cdc_events, through a client you own", async () => {
    const published: [string, string][] = [];
    const client = { publish: async (channel: string, message: string) => published.push([channel, message]) };
    const bridge = createRedisBridge({ client });
    await bridge.onStart();
    await bridge.onEvent(changeEvent(change, origin));
    await bridge.onClose();
    assert.equal(published.length, 1);
    assert.equal(published[0]![0], 'public.person.cdc_events');
    assert.deepEqual(JSON.parse(published[0]![1]), {
      timestamp: change.timestamp,
      schema: 'public',
      table: 'person',
      action: 'UPDATE',
      id: 7,
      data: change.data,
      changes: change.changes,
      old: change.old,
      txid: '901',
      lsn: 't:12',
      index: 0,
      last: true,
    });
    assert.deepEqual(messageOf({ ...change, unchanged: ['big'] }).unchanged, ['big']);
  });

  test('a publish Redis never confirms fails after the timeout, so capture delivers it again', async () => {
    const bridge = createRedisBridge({ client: { publish: () => new Promise(() => {}) }, timeout: 50 });
    await assert.rejects(bridge.onEvent(changeEvent(change, origin)), { code: 'BUSBAR_ERR_UNREACHABLE' });
  });
});
