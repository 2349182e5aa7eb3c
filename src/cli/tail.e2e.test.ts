import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BusbarClient, createClient, type ReceivedEvent } from '../client/index.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LiveServer, startLiveServer } from '../client/live-server.fixture.ts';
import { startCli } from './cli-process.fixture.ts';

function printed(stdout: string): ReceivedEvent[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ReceivedEvent);
}

describe('busbar tail', () => {
  let live: LiveServer;
  let client: BusbarClient;
  before(async () => {
    live = await startLiveServer();
    client = createClient({ url: live.url });
  });
  after(() => live.close());

  it('prints one JSON CloudEvent per line when piped, from the position asked for, with the subject filter, and exits 0 on SIGINT', async () => {
    const [, second] = await client.publishBatch([
      { type: 'shop.order.created', subject: 'lib-1', data: { n: 1 } },
      { type: 'shop.order.created', subject: 'lib-2', data: { n: 2 } },
      { type: 'shop.stock.moved', subject: 'lib-2', data: { n: 3 } },
    ]);
    const tail = startCli(['tail', 'shop.order.*', 'shop.audit.>', '--from', String(second!.position), '--subject', 'lib-2', '--server', live.url]);
    await tail.line(/"n":2/);
    await client.publishBatch([
      { type: 'shop.audit.login.ok', subject: 'lib-2', data: { n: 4 } },
      { type: 'shop.order.created', subject: 'lib-1', data: { n: 5 } },
      { type: 'shop.order.paid', subject: 'lib-2', data: { n: 6 } },
    ]);
    await tail.line(/"n":6/);
    tail.child.kill('SIGINT');
    const finished = await tail.exited;
    assert.equal(finished.code, 0, finished.stderr);
    const events = printed(finished.stdout);
    assert.deepEqual(events.map((event) => (event.data as { n: number }).n), [2, 4, 6]);
    assert.deepEqual(Object.keys(events[0]!).slice(0, 4), ['specversion', 'id', 'type', 'source']);
    assert.ok(events.every((event, index) => index === 0 || event.sequence > events[index - 1]!.sequence));
  });

  it('reconnects after the server restarts and resumes: every event printed once, in order', async () => {
    const tail = startCli(['tail', 'tick.*', '--server', live.url]);
    // Events published before the tail subscribes are not its to print: wait until it has.
    while (((await client.stats()).server.streaming_live_subscriptions ?? 0) < 1) await sleep(20);
    const ids: string[] = [];
    const publish = async (from: number, to: number): Promise<void> => {
      const accepted = await client.publishBatch(Array.from({ length: to - from }, (_, k) => ({ type: 'tick.n', data: from + k })));
      ids.push(...accepted.map((event) => event.id));
    };
    await publish(0, 40);
    await tail.line(/"data":39/);
    await live.restart();
    await publish(40, 80);
    await tail.line(/"data":79/);
    tail.child.kill('SIGINT');
    const finished = await tail.exited;
    assert.equal(finished.code, 0);
    assert.deepEqual(printed(finished.stdout).map((event) => event.id), ids);
    assert.match(finished.stderr, /reconnecting in \d+ ms \(attempt 1\)[\s\S]*reconnected/);
  });

  it('exits 1 with the server\'s refusal of a malformed pattern', async () => {
    const tail = startCli(['tail', 'order..x', '--server', live.url]);
    const finished = await tail.exited;
    assert.equal(finished.code, 1);
    assert.match(finished.stderr, /^busbar: BUSBAR_ERR_INVALID_PATTERN: /);
  });
});
