import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from '../client/index.ts';
import { type LiveServer, startLiveServer } from '../client/live-server.fixture.ts';
import { runCli } from './cli-process.fixture.ts';

const KEY = 'cli-publisher-key-0123456789abc';

describe('busbar publish', () => {
  let live: LiveServer;
  before(async () => {
    live = await startLiveServer({ apiKeys: [{ name: 'cli', key: KEY, publish: ['order.>'], subscribe: ['order.>'] }] });
  });
  after(() => live.close());

  it('publishes the JSON argument and prints the id and position (JSON when piped)', async () => {
    const { code, stdout, stderr } = await runCli(['publish', 'order.created', '{"id":"o-1","total":250}', '--subject', 'o-1', '--key', 'o-1', '--server', live.url, '--api-key', KEY]);
    assert.equal(code, 0, stderr);
    const printed = JSON.parse(stdout) as { id: string; position: number };
    const stored = await createClient({ url: live.url, apiKey: KEY }).getEvent(printed.id);
    assert.deepEqual(
      [stored?.sequence, stored?.type, stored?.subject, stored?.partitionkey, stored?.data],
      [printed.position, 'order.created', 'o-1', 'o-1', { id: 'o-1', total: 250 }],
    );
  });

  it('reads the data from standard input with -, and takes the server and key from BUSBAR_SERVER and BUSBAR_API_KEY', async () => {
    const { code, stdout, stderr } = await runCli(['publish', 'order.paid', '-', '--id', 'paid-1', '--source', 'urn:cli'], {
      input: '{"id":"o-1"}\n',
      env: { BUSBAR_SERVER: live.url, BUSBAR_API_KEY: KEY },
    });
    assert.equal(code, 0, stderr);
    assert.equal((JSON.parse(stdout) as { id: string }).id, 'paid-1');
    const stored = await createClient({ url: live.url, apiKey: KEY }).getEvent('paid-1');
    assert.deepEqual([stored?.source, stored?.data], ['urn:cli', { id: 'o-1' }]);
  });

  it('publishing the same --id twice stores the event once and prints the same position', async () => {
    const args = ['publish', 'order.shipped', '{}', '--id', 'ship-1', '--server', live.url, '--api-key', KEY];
    const first = await runCli(args);
    const second = await runCli(args);
    assert.equal(first.stdout, second.stdout);
  });

  it('prints the server\'s refusal as "busbar: <code>: <message>" and exits 1', async () => {
    const forbidden = await runCli(['publish', 'payment.made', '{}', '--server', live.url, '--api-key', KEY]);
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /^busbar: BUSBAR_ERR_FORBIDDEN: API key "cli" may not publish to "payment\.made"\n$/);
    const unauthorized = await runCli(['publish', 'order.created', '{}', '--server', live.url]);
    assert.equal(unauthorized.code, 1);
    assert.match(unauthorized.stderr, /^busbar: BUSBAR_ERR_UNAUTHORIZED: /);
  });

  it('exits 1 with BUSBAR_ERR_UNREACHABLE when no server answers', async () => {
    const { code, stderr } = await runCli(['publish', 'order.created', '{}', '--server', 'http://127.0.0.1:1']);
    assert.equal(code, 1);
    assert.match(stderr, /^busbar: BUSBAR_ERR_UNREACHABLE: cannot reach the Busbar server at http:\/\/127\.0\.0\.1:1/);
  });
});
