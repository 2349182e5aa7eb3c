import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BusbarError } from '../../core/errors.ts';
import { buildEvent } from '../../core/event.ts';
import { eventStoreContract } from '../../testing/index.ts';
import { SCHEMA_VERSION } from './schema.ts';
import { createSqliteStore } from './sqlite-store.ts';

const directory = mkdtempSync(join(tmpdir(), 'busbar-sqlite-'));
after(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(directory, `store-${++files}.db`);
const event = (n: number) => buildEvent('test.happened', { n }, undefined, 'test');

eventStoreContract('the SQLite store', async () => {
  const path = freshPath();
  return { store: createSqliteStore({ path }), reopen: async () => createSqliteStore({ path }) };
});

describe('the SQLite store on its own', () => {
  it('commits appends made in the same turn of the event loop together, in one transaction', async () => {
    const store = createSqliteStore({ path: freshPath() });
    try {
      const before = store.commits;
      const positions = await Promise.all(Array.from({ length: 16 }, (_, n) => store.append([event(n)])));
      assert.deepEqual(positions.flat(), Array.from({ length: 16 }, (_, n) => n + 1));
      assert.equal(store.commits - before, 1);
    } finally {
      await store.close();
    }
  });

  it('fails only the append whose expected version is wrong when it shares a commit with others', async () => {
    const store = createSqliteStore({ path: freshPath() });
    try {
      const [ok, conflict, other] = await Promise.allSettled([
        store.appendToStream('s', [event(1)], { expectedVersion: 'no_stream' }),
        store.appendToStream('s', [event(2)], { expectedVersion: 'no_stream' }),
        store.append([event(3)]),
      ]);
      assert.equal(ok.status, 'fulfilled');
      assert.equal(conflict.status, 'rejected');
      assert.equal((conflict as PromiseRejectedResult).reason.code, 'BUSBAR_ERR_CONCURRENCY');
      assert.deepEqual((other as PromiseFulfilledResult<readonly number[]>).value, [2]);
      assert.equal(await store.head(), 2);
    } finally {
      await store.close();
    }
  });

  it('keeps what it acknowledged when reopened', async () => {
    const path = freshPath();
    const first = createSqliteStore({ path });
    const written = event(1);
    await first.append([written]);
    await first.close();
    const second = createSqliteStore({ path });
    try {
      assert.deepEqual((await second.getEvent(written.id))?.event.data, { n: 1 });
      assert.deepEqual(await second.append([event(2)]), [2]);
    } finally {
      await second.close();
    }
  });

  it('never hands out a position twice, even after retention deleted the newest events', async () => {
    const store = createSqliteStore({ path: freshPath() });
    try {
      await store.appendToStream('s', [event(1), event(2)]);
      await store.setStreamMetadata('s', { truncateBefore: 3 });
      assert.equal((await store.readAll()).events.length, 0);
      assert.deepEqual(await store.append([event(3)]), [3]);
    } finally {
      await store.close();
    }
  });

  it('refuses a database migrated by a newer Busbar, naming both versions', () => {
    const path = freshPath();
    createSqliteStore({ path }).close();
    const database = new DatabaseSync(path);
    database.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    database.close();
    assert.throws(
      () => createSqliteStore({ path }),
      (error: unknown) =>
        error instanceof BusbarError &&
        error.code === 'BUSBAR_ERR_STORE_SCHEMA' &&
        error.message.includes(`version ${SCHEMA_VERSION + 1}`) &&
        error.message.includes(`up to ${SCHEMA_VERSION}`),
    );
  });

  it('explains a path it cannot open', () => {
    assert.throws(
      () => createSqliteStore({ path: join(directory, 'missing-dir', 'x.db') }),
      (error: unknown) => error instanceof BusbarError && error.code === 'BUSBAR_ERR_STORE_UNAVAILABLE' && error.message.includes('missing-dir'),
    );
  });

  it('rejects an unknown synchronous mode', () => {
    assert.throws(
      () => createSqliteStore({ path: freshPath(), synchronous: 'off' as 'full' }),
      (error: unknown) => error instanceof BusbarError && error.code === 'BUSBAR_ERR_INVALID_ARGUMENT',
    );
  });

  it('runs a transaction alone: appends requested meanwhile wait for it and then commit', async () => {
    const store = createSqliteStore({ path: freshPath() });
    try {
      let appended: Promise<readonly number[]> | undefined;
      await store.transaction(async (database) => {
        appended = store.append([event(1)]);
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal((database.prepare('SELECT count(*) AS n FROM busbar_events').get() as { n: number }).n, 0);
        assert.equal(await store.markProcessed('c', 'e-1', database), true);
      });
      assert.deepEqual(await appended, [1]);
      assert.equal(await store.markProcessed('c', 'e-1'), false);
    } finally {
      await store.close();
    }
  });
});
