/**
 * A browser page on another site follows `busbar serve` (a child process) with
 * a plain EventSource: CORS lets it in, the API key travels as `?token=`, and
 * after the server is killed and started again on the same log the browser
 * reconnects by itself with Last-Event-ID and misses nothing, repeats nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type BusbarProcess, scratchDirectory, startBusbar } from './busbar-process.fixture.ts';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'browser-key-'.padEnd(32, 'k');

/** The page: another origin than the server's, with an EventSource that records what it gets. */
function page(serverUrl: string): string {
  const stream = `${serverUrl}/v1/stream?topics=browser.*&from=beginning&token=${KEY}`;
  return `<!doctype html><meta charset="utf-8"><title>busbar from elsewhere</title><script>
  window.received = [];
  window.opens = 0;
  const source = new EventSource(${JSON.stringify(stream)});
  source.onopen = () => window.opens++;
  source.addEventListener('browser.tick', (message) => {
    const event = JSON.parse(message.data);
    window.received.push({ id: Number(message.lastEventId), n: event.data.n, sequence: event.sequence });
  });
</script>`;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('a browser page on another site following busbar serve', () => {
  const scratch = scratchDirectory('browser');
  let pages: Server;
  let pageOrigin: string;
  let port: number;
  let server: BusbarProcess;
  let browser: Browser;
  let tab: Page;

  const start = () =>
    startBusbar({
      data: scratch.file('busbar.db'),
      args: [
        '--port', String(port),
        '--cors-origins', pageOrigin,
        '--api-keys', JSON.stringify([{ name: 'browser', key: KEY, publish: ['browser.>'], subscribe: ['browser.>'] }]),
      ],
    });

  const publish = async (n: number): Promise<number> => {
    const response = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ type: 'browser.tick', data: { n } }),
    });
    assert.equal(response.status, 201, await response.clone().text());
    return ((await response.json()) as { position: number }).position;
  };

  const received = () => tab.evaluate(() => (window as unknown as { received: { id: number; n: number; sequence: number }[] }).received);
  const waitForReceived = (count: number) =>
    tab.waitForFunction((n) => (window as unknown as { received: unknown[] }).received.length >= n, count, { timeout: 15_000 });

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: run \`bash scripts/chromium.sh\` (apt-get install chromium)`);
    port = await freePort();
    pages = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(page(`http://127.0.0.1:${port}`));
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    server = await start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    tab = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.stop('SIGKILL');
    await new Promise((resolve) => pages?.close(resolve));
    scratch.remove();
  });

  it('receives history and live events, and after a SIGKILL and restart of the server resumes with no gap and no duplicate', async () => {
    const sent: number[] = [];
    for (const n of [1, 2, 3]) sent.push(await publish(n));
    await tab.goto(pageOrigin);
    await waitForReceived(3);
    for (const n of [4, 5]) sent.push(await publish(n));
    await waitForReceived(5);

    await server.stop('SIGKILL');
    server = await start(); // same port, same log
    for (const n of [6, 7, 8]) sent.push(await publish(n));
    await waitForReceived(8);
    await new Promise((resolve) => setTimeout(resolve, 200)); // a late duplicate would show now

    const got = await received();
    assert.deepEqual(got.map((message) => message.n), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(got.map((message) => message.id), sent, 'the ids are the log positions, each once');
    assert.deepEqual(got.map((message) => message.sequence), sent);
    assert.ok((await tab.evaluate(() => (window as unknown as { opens: number }).opens)) >= 2, 'the browser reconnected');
  });
});
