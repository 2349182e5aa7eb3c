import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { BusbarError, ConcurrencyError } from '../../core/errors.ts';
import { eventStoreContract } from '../../testing/store-contract.ts';
import { createPostgresStore } from './index.ts';
import { dropSchema, freshSchemaName, openTestStore, TEST_DATABASE_URL, type TestStore, testEvent, testPool } from './test-database.fixture.ts';

const schemas: string[] = [];
after(async () => {
  const admin = await testPool();
  for (const schema of schemas) await dropSchema(admin, schema);
  await admin.end();
});

eventStoreContract('PostgreSQL store', async () => {
  const schema = freshSchemaName('busbar_contract');
  schemas.push(schema);
  const open = () => createPostgresStore({ connectionString: TEST_DATABASE_URL, schema });
  return { store: await open(), reopen: open };
});

async function subjectFor(t: TestContext): Promise<TestStore> {
  const subject = await openTestStore();
  t.after(() => subject.cleanup());
  return subject;
}

function code(expected: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof BusbarError, `expected a BusbarError, got ${String(error)}`);
    assert.equal(error.code, expected, error.message);
    return true;
  };
}

describe('PostgreSQL store specifics', () => {
  it('groups 50 concurrent appends into a few transactions with positions 1 to 50', async (t) => {
    const { store } = await subjectFor(t);
    const before = store.appendTransactions;
    const results = await Promise.all(Array.from({ length: 50 }, () => store.append([testEvent()])));
    assert.deepEqual(results.flat().sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
    const transactions = store.appendTransactions - before;
    assert.ok(transactions >= 1 && transactions <= 3, `${transactions} transactions for 50 appends`);
  });

  it('fails only the grouped appends whose expected version is stale', async (t) => {
    const { store } = await subjectFor(t);
    const before = store.appendTransactions;
    const outcomes = await Promise.allSettled([
      store.append([testEvent()]),
      store.appendToStream('s', [testEvent()], { expectedVersion: 'no_stream' }),
      store.appendToStream('s', [testEvent()], { expectedVersion: 'no_stream' }),
      store.appendToStream('s', [testEvent()], { expectedVersion: 1 }),
      store.append([testEvent()]),
    ]);
    assert.equal(store.appendTransactions - before, 1, 'one transaction served them all');
    assert.deepEqual(
      outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : (outcome.reason as ConcurrencyError).actual)),
      [[1], { positions: [2], version: 1 }, 1, { positions: [3], version: 2 }, [4]],
      'checked in call order, as if one after another',
    );
    assert.ok(outcomes[2]!.status === 'rejected' && outcomes[2].reason instanceof ConcurrencyError);
  });

  it('fails only the grouped append the server refuses', async (t) => {
    const { store } = await subjectFor(t);
    const outcomes = await Promise.allSettled([
      store.append([testEvent()]),
      // PostgreSQL text cannot hold NUL.
      store.appendToStream('bad\u0000stream', [testEvent()]),
      store.append([testEvent()]),
    ]);
    assert.equal(outcomes[0]!.status, 'fulfilled');
    assert.equal(outcomes[2]!.status, 'fulfilled');
    assert.ok(outcomes[1]!.status === 'rejected');
    code('BUSBAR_ERR_INVALID_ARGUMENT')(outcomes[1].reason);
    assert.ok((outcomes[1].reason as Error).cause !== undefined, 'the pg error is the cause');
    assert.deepEqual((await store.readAll()).events.map((row) => row.position), [1, 2]);
  });

  it('records whole milliseconds that never decrease with position', async (t) => {
    const { store, admin, schema } = await subjectFor(t);
    for (let i = 0; i < 5; i++) await store.append([testEvent(), testEvent()]);
    const { events } = await store.readAll();
    for (const [i, row] of events.entries()) {
      assert.ok(Number.isInteger(row.recordedAt));
      if (i > 0) assert.ok(row.recordedAt >= events[i - 1]!.recordedAt);
    }
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.events WHERE recorded_at <> date_trunc('milliseconds', recorded_at)`,
    );
    assert.equal(rows[0].n, 0);
  });

  it('frees the space of events retention removes, and never reuses their positions', async (t) => {
    const { store, admin, schema } = await subjectFor(t);
    await store.appendToStream('s', [testEvent(), testEvent(), testEvent()]);
    await store.setStreamMetadata('s', { maxCount: 1 });
    const count = async (): Promise<number> =>
      (await admin.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.events`)).rows[0].n;
    assert.equal(await count(), 1);
    await store.appendToStream('s', [testEvent()]);
    assert.equal(await count(), 1);
    await store.setStreamMetadata('s', { truncateBefore: 10 });
    assert.equal(await count(), 0);
    assert.deepEqual(await store.append([testEvent()]), [5]);
  });

  it('rejects a transaction whose failed statement the work swallowed, committing nothing', async (t) => {
    const { store } = await subjectFor(t);
    await assert.rejects(
      store.transaction(async (client) => {
        await store.markProcessed('mailer', 'evt-1', client);
        await client.query('SELECT 1/0').catch(() => undefined);
      }),
      code('BUSBAR_ERR_STORE_UNAVAILABLE'),
    );
    assert.equal(await store.markProcessed('mailer', 'evt-1'), true, 'the mark rolled back');
  });

  it('fails to open with BUSBAR_ERR_STORE_UNAVAILABLE when the database cannot be reached', async () => {
    await assert.rejects(
      createPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', schema: freshSchemaName() }),
      (error: unknown) => code('BUSBAR_ERR_STORE_UNAVAILABLE')(error) && (error as Error).cause instanceof Error,
    );
  });

  it('commits the appends it accepted before close, then rejects calls with BUSBAR_ERR_CLOSED', async (t) => {
    const { store } = await subjectFor(t);
    const accepted = Promise.all([store.append([testEvent()]), store.append([testEvent()])]);
    await store.close();
    assert.deepEqual((await accepted).flat().sort(), [1, 2]);
    await assert.rejects(store.append([testEvent()]), code('BUSBAR_ERR_CLOSED'));
    await assert.rejects(store.appendWithin({} as pg.ClientBase, [testEvent()]), code('BUSBAR_ERR_CLOSED'));
  });
});
