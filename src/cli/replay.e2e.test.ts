import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BusbarClient, createClient, type ReceivedEvent } from '../client/index.ts';
import { type LiveServer, startLiveServer } from '../client/live-server.fixture.ts';
import { runCli } from './cli-process.fixture.ts';

async function everything(client: BusbarClient): Promise<ReceivedEvent[]> {
  const events: ReceivedEvent[] = [];
  for await (const event of client.readAll()) events.push(event);
  return events;
}

describe('busbar replay', () => {
  let source: LiveServer;
  let target: LiveServer;
  let published: ReceivedEvent[];
  before(async () => {
    [source, target] = await Promise.all([startLiveServer(), startLiveServer()]);
    const client = createClient({ url: source.url });
    await client.publishBatch(Array.from({ length: 40 }, (_, n) => ({ type: n % 4 === 0 ? 'audit.entry' : 'order.step', data: { n }, subject: `s-${n % 2}` })));
    // Busbar's own events (a topic registration) are in the log too.
    await client.registerTopic('order.step', { description: 'steps' });
    published = await everything(client);
  });
  after(() => Promise.all([source.close(), target.close()]));

  it('copies a range to another server exactly once, in order, with the same ids, even when run twice', async () => {
    const args = ['replay', '--from', '5', '--to', '30', '--batch', '7', '--server', source.url, '--to-url', target.url];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { replayed: 26, from: 5, to: 30, target: target.url });
    const second = await runCli(args);
    assert.equal(second.code, 0, second.stderr);
    const copied = await everything(createClient({ url: target.url }));
    const expected = published.filter((event) => event.sequence >= 5 && event.sequence <= 30);
    assert.deepEqual(
      copied.map((event) => [event.id, event.type, event.data, event.subject, event.time]),
      expected.map((event) => [event.id, event.type, event.data, event.subject, event.time]),
    );
  });

  it('copies only the topics and subject asked for, and skips Busbar\'s own events by default', async () => {
    const fresh = await startLiveServer();
    try {
      const all = await runCli(['replay', '--from', '1', '--server', source.url, '--to-url', fresh.url]);
      assert.equal(all.code, 0, all.stderr);
      const copied = await everything(createClient({ url: fresh.url }));
      assert.equal(copied.length, 40, 'the topic registration event is not copied');
      assert.ok(copied.every((event) => !event.type.startsWith('busbar.')));

      const other = await startLiveServer();
      try {
        const filtered = await runCli(['replay', '--from', '1', '--topics', 'audit.*', '--subject', 's-0', '--server', source.url, '--to-url', other.url]);
        assert.equal(filtered.code, 0, filtered.stderr);
        const audit = await everything(createClient({ url: other.url }));
        assert.deepEqual(audit.map((event) => (event.data as { n: number }).n), [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]);
      } finally {
        await other.close();
      }
    } finally {
      await fresh.close();
    }
  });

  it('exits 2 without --from or --to-url, and 1 naming the positions when the target refuses', async () => {
    assert.equal((await runCli(['replay', '--to-url', target.url, '--server', source.url])).code, 2);
    assert.equal((await runCli(['replay', '--from', '1', '--server', source.url])).code, 2);
    const strict = await startLiveServer({ strict: true });
    try {
      const refused = await runCli(['replay', '--from', '1', '--to', '3', '--server', source.url, '--to-url', strict.url]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /stopped after position 0; continue with --from 1\nbusbar: BUSBAR_ERR_UNKNOWN_TOPIC: the target refused the events at positions 1–3: /);
    } finally {
      await strict.close();
    }
  });
});
