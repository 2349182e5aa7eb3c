import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BusbarClient, createClient } from '../client/index.ts';
import { type LiveServer, startLiveServer } from '../client/live-server.fixture.ts';
import type { BusbarError } from '../core/errors.ts';
import { type BusbarEvent, createEvent } from '../core/event.ts';
import { secretFor } from '../server/test-server.fixture.ts';
import { serverOutput } from './cdc-server-output.ts';

let run = 0;
/** Change-like events with fixed ids, as a capture makes them. */
function events(count: number, bytes = 10): BusbarEvent[] {
  const batch = ++run;
  return Array.from({ length: count }, (_, n) =>
    createEvent('cdc.public.orders.insert', { n, pad: 'x'.repeat(bytes) }, { id: `pg-test:${batch}/${n}:0`, source: 'postgresql://db/shop' }),
  );
}

/** A client that counts its batch requests and their sizes. */
function countingClient(url: string, apiKey?: string): { client: Pick<BusbarClient, 'publishBatch'>; requests: number[] } {
  const inner = createClient({ url, apiKey, retries: 0 });
  const requests: number[] = [];
  return {
    requests,
    client: {
      publishBatch: (batch) => {
        requests.push(batch.length);
        return inner.publishBatch(batch);
      },
    },
  };
}

async function storedIds(live: LiveServer): Promise<string[]> {
  const { events: logged } = await live.server.context.store.readAll({ after: 0, limit: 10_000 });
  return logged.map((entry) => entry.event.id);
}

describe('publishing captured changes to a Busbar server', () => {
  let live: LiveServer;
  before(async () => {
    live = await startLiveServer({ limits: { maxBodyBytes: 16 * 1024 } });
  });
  after(() => live.close());

  it('publishes in order, at most maxBatch events per request, and answers each event\'s position', async () => {
    const { client, requests } = countingClient(live.url);
    const refusals: unknown[] = [];
    const bus = serverOutput({ client, onRefused: (error) => refusals.push(error), maxBatch: 4 });
    const sent = events(10);
    const before = await storedIds(live);
    const receipts = await bus.publishEvents!(sent);
    assert.deepEqual(requests, [4, 4, 2]);
    assert.deepEqual((await storedIds(live)).slice(before.length), sent.map((event) => event.id));
    const positions = (receipts as { sequence: number }[]).map((receipt) => receipt.sequence);
    assert.deepEqual(positions, positions.map((_, k) => positions[0]! + k), 'contiguous positions in publish order');
    assert.deepEqual(refusals, []);
  });

  it('ends each request at a transaction\'s last change, so a transaction that fits is published whole', async () => {
    const { client, requests } = countingClient(live.url);
    const bus = serverOutput({ client, onRefused: () => assert.fail('no refusal expected'), maxBatch: 5 });
    // Transactions of 3, 3, 2 and 7 changes.
    const sizes = [3, 3, 2, 7];
    const batch = ++run;
    const sent = sizes.flatMap((size, transaction) =>
      Array.from({ length: size }, (_, index) =>
        createEvent('cdc.public.orders.insert', { index, last: index === size - 1 }, { id: `pg-test:${batch}/${transaction}:${index}`, source: 'postgresql://db/shop' }),
      ),
    );
    await bus.publishEvents!(sent);
    assert.deepEqual(requests, [3, 5, 5, 2], 'whole transactions; the one larger than a request spans two');
  });

  it('stores events published again (a redelivery after a restart) once, at their first positions', async () => {
    const { client } = countingClient(live.url);
    const bus = serverOutput({ client, onRefused: () => assert.fail('no refusal expected') });
    const sent = events(5);
    const first = (await bus.publishEvents!(sent)) as { sequence: number }[];
    const head = await live.server.context.store.head();
    const again = (await bus.publishEvents!(sent)) as { sequence: number }[];
    assert.equal(await live.server.context.store.head(), head);
    assert.deepEqual(again.map((receipt) => receipt.sequence), first.map((receipt) => receipt.sequence));
  });

  it('splits a request the server refuses as too large until each part fits, losing and repeating nothing', async () => {
    const { client, requests } = countingClient(live.url);
    const bus = serverOutput({ client, onRefused: () => assert.fail('no refusal expected'), maxBatch: 40 });
    const sent = events(40, 1000); // ~45 KB in all, the limit is 16 KiB
    const before = await storedIds(live);
    await bus.publishEvents!(sent);
    assert.deepEqual((await storedIds(live)).slice(before.length), sent.map((event) => event.id));
    assert.deepEqual(requests.slice(0, 3), [40, 20, 10], 'halved after each 413');
    assert.ok(requests.slice(3).every((size) => size <= 10), `later requests stay small: ${requests.join(',')}`);
  });

  it('reports one event larger than the server takes as a refusal, and fails the publish', async () => {
    const { client } = countingClient(live.url);
    const refusals: BusbarError[] = [];
    const bus = serverOutput({ client, onRefused: (error) => refusals.push(error) });
    await assert.rejects(bus.publishEvents!(events(1, 20_000)), { code: 'BUSBAR_ERR_PAYLOAD_TOO_LARGE' });
    assert.deepEqual(refusals.map((error) => error.code), ['BUSBAR_ERR_PAYLOAD_TOO_LARGE']);
  });

  it('reports a key without the publish right as a refusal, but a server it cannot reach only as a failed publish (capture retries it)', async () => {
    const guarded = await startLiveServer({ apiKeys: [{ name: 'reader', key: secretFor('reader'), subscribe: ['>'] }] });
    try {
      const refusals: BusbarError[] = [];
      const forbidden = serverOutput({ client: countingClient(guarded.url, secretFor('reader')).client, onRefused: (error) => refusals.push(error) });
      await assert.rejects(forbidden.publishEvents!(events(2)), { code: 'BUSBAR_ERR_FORBIDDEN' });
      assert.deepEqual(refusals.map((error) => error.code), ['BUSBAR_ERR_FORBIDDEN']);
    } finally {
      await guarded.close();
    }
    const refusals: BusbarError[] = [];
    const gone = serverOutput({ client: countingClient(guarded.url).client, onRefused: (error) => refusals.push(error) });
    await assert.rejects(gone.publishEvents!(events(2)), { code: 'BUSBAR_ERR_UNREACHABLE' });
    assert.deepEqual(refusals, []);
  });
});
