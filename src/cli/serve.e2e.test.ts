import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient } from '../client/index.ts';
import { type CliProcess, runCli, startCli } from './cli-process.fixture.ts';

/** Starts `busbar serve` on a free port with the log in `data`, and waits for its URL. */
async function serve(data: string, env: Record<string, string> = {}): Promise<{ process: CliProcess; url: string }> {
  const process = startCli(['serve', '--port', '0', '--data', data], { env });
  const line = await process.line(/"msg":"busbar listening on /);
  return { process, url: (JSON.parse(line) as { url: string }).url };
}

describe('busbar serve', () => {
  let directory: string;
  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'busbar-cli-serve-'));
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  it('starts, logs where it listens, and answers /v1/health', async () => {
    const { process, url } = await serve(join(directory, 'health.db'));
    try {
      const response = await fetch(`${url}/v1/health`);
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { status: string }).status, 'ok');
      assert.match(process.stdout, /"log":\{"sqlite":"[^"]*health\.db"\}/);
    } finally {
      process.child.kill('SIGKILL');
      await process.exited;
    }
  });

  it('takes its options from BUSBAR_* variables too: with BUSBAR_API_KEYS set, requests need a key', async () => {
    const key = 'serve-test-key-0123456789abcdef';
    const { process, url } = await serve(join(directory, 'keys.db'), { BUSBAR_API_KEYS: JSON.stringify([{ name: 'ops', key, admin: true }]) });
    try {
      assert.equal((await fetch(`${url}/v1/stats`)).status, 401);
      assert.equal((await fetch(`${url}/v1/stats`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
    } finally {
      process.child.kill('SIGKILL');
      await process.exited;
    }
  });

  it('drains on SIGTERM: streaming clients are told to go away, committed events stay, and it exits 0', async () => {
    const data = join(directory, 'drain.db');
    const first = await serve(data);
    const client = createClient({ url: first.url });
    const accepted = await client.publish('order.created', { id: 'o-1' });
    const socket = new WebSocket(`${first.url.replace('http', 'ws')}/v1/ws`);
    await new Promise((resolve) => (socket.onopen = resolve));
    const closed = new Promise<number>((resolve) => (socket.onclose = (event) => resolve(event.code)));
    first.process.child.kill('SIGTERM');
    const finished = await first.process.exited;
    assert.equal(finished.code, 0, finished.stderr);
    assert.equal(await closed, 1001, 'going away');
    assert.match(finished.stdout, /"msg":"shutting down[^"]*"[\s\S]*"msg":"stopped"/);

    const second = await serve(data);
    try {
      const stored = await createClient({ url: second.url }).getEvent(accepted.id);
      assert.equal(stored?.sequence, accepted.position);
    } finally {
      second.process.child.kill('SIGINT');
      assert.equal((await second.process.exited).code, 0);
    }
  });

  it('exits 1 with the system\'s reason when its port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as { port: number };
      const { code, stderr } = await runCli(['serve', '--port', String(port), '--data', join(directory, 'taken.db'), '--log-level', 'silent']);
      assert.equal(code, 1);
      assert.match(stderr, /^busbar: EADDRINUSE: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+\n$/);
    } finally {
      taken.close();
    }
  });

  it('exits at once on a second signal while the first is still draining', async () => {
    const { process, url } = await serve(join(directory, 'twice.db'));
    // A connection that sent half a request holds a graceful close for its 5 s grace period.
    const { port } = new URL(url);
    const idle = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => idle.once('connect', resolve));
    idle.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n');
    idle.on('error', () => {});
    process.child.kill('SIGTERM');
    await process.line(/"msg":"shutting down/);
    const secondAt = Date.now();
    process.child.kill('SIGTERM');
    const finished = await process.exited;
    idle.destroy();
    assert.ok(Date.now() - secondAt < 1500, `exited ${Date.now() - secondAt} ms after the second signal`);
    assert.equal(finished.code, 143);
    assert.match(finished.stderr, /SIGTERM again: exiting at once/);
  });
});
