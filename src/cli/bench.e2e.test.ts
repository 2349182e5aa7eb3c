import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from '../client/index.ts';
import { type LiveServer, startLiveServer } from '../client/live-server.fixture.ts';
import { runCli } from './cli-process.fixture.ts';

describe('busbar bench', () => {
  let live: LiveServer;
  before(async () => {
    live = await startLiveServer();
  });
  after(() => live.close());

  it('publishes over HTTP, receives over WebSocket, and prints a table of throughput and latency', async () => {
    const { code, stdout, stderr } = await runCli(['bench', '--events', '60', '--batch', '20', '--concurrency', '4', '--size', '10', '--server', live.url]);
    assert.equal(code, 0, stderr);
    const rows = stdout.trim().split('\n');
    assert.equal(rows.length, 5, stdout);
    assert.match(rows[0]!, /^\| measure +\| events\/s \| p50 ms \| p99 ms \|$/);
    for (const row of rows.slice(2)) assert.match(row, /^\| [^|]+ \| +[\d,]+ \| +\d+\.\d\d \| +\d+\.\d\d \|$/);
    assert.match(rows[4]!, /WebSocket delivery/);
    // Both phases are in the log, each event once.
    let stored = 0;
    for await (const event of createClient({ url: live.url }).readAll({ topics: 'bench.*.event' })) stored += event.data === undefined ? 0 : 1;
    assert.equal(stored, 120);
  });
});
