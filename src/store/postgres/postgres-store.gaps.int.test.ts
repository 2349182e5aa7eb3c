import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { LoggedEvent } from '../../core/event-log.ts';
import type { PostgresStore } from './index.ts';
import { openTestStore, TEST_DATABASE_URL, type TestStore, testEvent } from './test-database.fixture.ts';

let subject: TestStore;
before(async () => {
  subject = await openTestStore();
});
after(() => subject.cleanup());

const OUTBOX_WRITERS = 6;
const OUTBOX_ROUNDS = 12;
const GROUP_WRITERS = 4;
const GROUP_ROUNDS = 25;

type Fate = 'commit' | 'rollback' | 'disconnect';

/** Outbox writers on their own connections: append, hold the transaction open, then end it one way or another. */
async function outboxWriter(store: PostgresStore, writer: number, committed: Map<string, number>, abandoned: Set<string>): Promise<void> {
  const fates: Fate[] = ['commit', 'rollback', 'commit', 'disconnect', 'commit'];
  let client = await connect();
  try {
    for (let round = 0; round < OUTBOX_ROUNDS; round++) {
      const fate = fates[(writer + round) % fates.length]!;
      const batch = [testEvent(`outbox.w${writer}`), testEvent(`outbox.w${writer}`)];
      await client.query('BEGIN');
      const positions =
        round % 2 === 0
          ? await store.appendWithin(client, batch)
          : (await store.appendToStreamWithin(client, `outbox-${writer}`, batch)).positions;
      // Held open with the append lock: every other writer queues behind it.
      await sleep(2 + ((writer * 7 + round * 3) % 15));
      if (fate === 'commit') {
        await client.query('COMMIT');
        batch.forEach((event, i) => committed.set(event.id, positions[i]!));
      } else if (fate === 'rollback') {
        await client.query('ROLLBACK');
        for (const event of batch) abandoned.add(event.id);
      } else {
        // The connection dies mid-transaction, as a crashed process's would: the server rolls back.
        await client.end();
        for (const event of batch) abandoned.add(event.id);
        client = await connect();
      }
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Writers through group commit, in this store and in a second one on the same schema. */
async function groupWriter(store: PostgresStore, writer: number, committed: Map<string, number>): Promise<void> {
  for (let round = 0; round < GROUP_ROUNDS; round++) {
    const batch = [testEvent(`group.w${writer}`)];
    const positions =
      round % 3 === 0
        ? (await store.appendToStream(`group-${writer}`, batch, { expectedVersion: round / 3 })).positions
        : await store.append(batch);
    committed.set(batch[0]!.id, positions[0]!);
    if (round % 5 === 0) await sleep(1);
  }
}

test('a live reader sees every committed event once, gap-free and in order, and never a rolled-back one', async () => {
  const writerStore = subject.store;
  const otherProcess = await subject.reopen();
  const readerStore = await subject.reopen();
  const committed = new Map<string, number>();
  const abandoned = new Set<string>();

  let writing = true;
  const writers = Promise.all([
    ...Array.from({ length: OUTBOX_WRITERS }, (_, w) => outboxWriter(writerStore, w, committed, abandoned)),
    ...Array.from({ length: GROUP_WRITERS }, (_, w) => groupWriter(w % 2 === 0 ? writerStore : otherProcess, w, committed)),
  ]).finally(() => (writing = false));
  writers.catch(() => undefined);

  const seen: LoggedEvent[] = [];
  let after = 0;
  let timedOutWaits = 0;
  const deadline = Date.now() + 60_000;
  for (;;) {
    assert.ok(Date.now() < deadline, `the reader saw ${seen.length} events before the deadline`);
    const page = await readerStore.readAll({ after, limit: 50 });
    for (const row of page.events) {
      assert.equal(row.position, (seen.at(-1)?.position ?? 0) + 1, `position ${row.position} follows ${seen.at(-1)?.position ?? 0} with no gap`);
      seen.push(row);
    }
    after = page.last;
    if (page.events.length > 0) continue;
    if (!writing && after >= (await readerStore.head())) break;
    // Woken by NOTIFY from the other connections; the timeout is only a safety net, counted below.
    const signal = AbortSignal.timeout(5000);
    await readerStore.waitForAppend(after, signal);
    if (signal.aborted && writing) timedOutWaits++;
  }
  await writers;

  const expectedCommitted = OUTBOX_WRITERS * OUTBOX_ROUNDS * 2 - abandoned.size + GROUP_WRITERS * GROUP_ROUNDS;
  assert.equal(committed.size, expectedCommitted);
  assert.ok(abandoned.size > 0, 'some transactions were rolled back');
  assert.deepEqual(
    seen.map((row) => row.position),
    Array.from({ length: committed.size }, (_, i) => i + 1),
    'positions 1..n, each once',
  );
  assert.deepEqual(new Map(seen.map((row) => [row.event.id, row.position])), committed, 'exactly the committed events, at the positions their writers were told');
  assert.ok(seen.every((row) => !abandoned.has(row.event.id)), 'no rolled-back event is visible');
  assert.equal(await readerStore.head(), committed.size);
  assert.equal(timedOutWaits, 0, 'every wait was ended by a commit notification, not the safety timeout');
});
