import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bodyOf, secretFor, startTestServer, type TestServer } from './test-server.fixture.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer({
    apiKeys: [
      { name: 'bank', key: secretFor('bank'), publish: ['account.>'], subscribe: ['account.>'] },
      { name: 'auditor', key: secretFor('auditor'), subscribe: ['account.opened'] },
    ],
  });
});
after(() => t.close());

const bank = { authorization: `Bearer ${secretFor('bank')}` };
const auditor = { authorization: `Bearer ${secretFor('auditor')}` };
const append = (stream: string, body: unknown) => t.call('POST', `/v1/streams/${stream}/events`, body, bank);
const deposit = (amount: number, id?: string) => ({ type: 'account.deposited', data: { amount }, ...(id === undefined ? {} : { id }) });

describe('streams over HTTP', () => {
  it('appends with expected versions and answers the positions and the new version', async () => {
    const opened = await append('acc-1', { expectedVersion: 'no_stream', events: [{ type: 'account.opened', data: { owner: 'Ada' } }] });
    assert.equal(opened.statusCode, 201, opened.body);
    assert.equal(bodyOf(opened).version, 1);
    const more = await append('acc-1', { expectedVersion: 1, events: [deposit(10), deposit(5)] });
    assert.equal(more.statusCode, 201);
    const { positions, version } = bodyOf(more);
    assert.equal(version, 3);
    assert.equal(positions.length, 2);
    assert.equal(positions[1], positions[0] + 1);
    assert.equal((await append('acc-1', { expectedVersion: 'exists', events: [deposit(1)] })).statusCode, 201);
    assert.equal((await append('acc-1', { events: [deposit(1)] })).statusCode, 201, 'expectedVersion defaults to any');
    const logged = await t.server.context.store.readStream('acc-1');
    assert.deepEqual(
      logged.map((each) => each.event.type),
      ['account.opened', 'account.deposited', 'account.deposited', 'account.deposited', 'account.deposited'],
    );
    assert.equal(logged[1]?.position, positions[0]);
  });

  it('answers 409 BUSBAR_ERR_CONCURRENCY with the expected and actual versions, and appends nothing', async () => {
    await append('acc-2', { expectedVersion: 'no_stream', events: [{ type: 'account.opened', data: {} }] });
    const head = await t.server.context.store.head();
    for (const expectedVersion of [0, 5, 'no_stream'] as const) {
      const conflict = await append('acc-2', { expectedVersion, events: [deposit(1)] });
      assert.equal(conflict.statusCode, 409);
      const { error } = bodyOf(conflict);
      assert.equal(error.code, 'BUSBAR_ERR_CONCURRENCY');
      assert.deepEqual(error.details, { stream: 'acc-2', expected: expectedVersion, actual: 1 });
    }
    const missing = await append('acc-none', { expectedVersion: 'exists', events: [deposit(1)] });
    assert.equal(missing.statusCode, 409);
    assert.equal(await t.server.context.store.head(), head);
  });

  it('does not append an event id twice to a stream (a retried append)', async () => {
    const body = { events: [deposit(7, 'dep-once')] };
    const first = bodyOf(await append('acc-3', body));
    const again = bodyOf(await append('acc-3', body));
    assert.deepEqual(again.positions, first.positions);
    assert.equal((await t.server.context.store.readStream('acc-3')).length, 1);
  });

  it('reads a stream forward, backward, from a version and in pages, with its version', async () => {
    await append('acc-4', { events: [1, 2, 3, 4].map((n) => deposit(n)) });
    const amounts = (body: { events: { data: { amount: number } }[] }) => body.events.map((event) => event.data.amount);
    const all = bodyOf(await t.call('GET', '/v1/streams/acc-4', undefined, bank));
    assert.equal(all.stream, 'acc-4');
    assert.equal(all.version, 4);
    assert.deepEqual(amounts(all), [1, 2, 3, 4]);
    assert.equal(typeof all.events[0].sequence, 'number');
    assert.deepEqual(amounts(bodyOf(await t.call('GET', '/v1/streams/acc-4?direction=backward&limit=2', undefined, bank))), [4, 3]);
    assert.deepEqual(amounts(bodyOf(await t.call('GET', '/v1/streams/acc-4?from=3', undefined, bank))), [3, 4]);
    const empty = bodyOf(await t.call('GET', '/v1/streams/never-written', undefined, bank));
    assert.deepEqual(empty, { stream: 'never-written', version: 0, events: [] });
  });

  it('refuses to show a stream holding a topic the key may not read', async () => {
    await append('acc-5', { events: [{ type: 'account.opened', data: {} }] });
    assert.equal((await t.call('GET', '/v1/streams/acc-5', undefined, auditor)).statusCode, 200);
    await append('acc-5', { events: [deposit(3)] });
    const refused = await t.call('GET', '/v1/streams/acc-5', undefined, auditor);
    assert.equal(refused.statusCode, 403);
    assert.equal(bodyOf(refused).error.code, 'BUSBAR_ERR_FORBIDDEN');
  });

  it('refuses to append a topic the key may not publish, naming it', async () => {
    const refused = await append('acc-6', { events: [deposit(1), { type: 'payment.made', data: {} }] });
    assert.equal(refused.statusCode, 403);
    assert.deepEqual(bodyOf(refused).error.details, { topic: 'payment.made', index: 1 });
  });
});
