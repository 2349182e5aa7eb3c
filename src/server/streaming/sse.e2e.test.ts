import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startStreamingFixture, type StreamingFixture } from './test-context.fixture.ts';

const CHROMIUM = '/usr/bin/chromium';

// The page under test: a plain EventSource that records what it receives.
const PAGE = `<!doctype html><meta charset="utf-8"><title>busbar sse</title><script>
  window.received = [];
  window.opens = 0;
  const source = new EventSource('/v1/stream?topics=browser.*&from=beginning');
  source.onopen = () => window.opens++;
  for (const topic of ['browser.tick', 'browser.tock']) {
    source.addEventListener(topic, (message) => {
      const event = JSON.parse(message.data);
      window.received.push({ id: message.lastEventId, topic: message.type, n: event.data.n, sequence: event.sequence });
    });
  }
</script>`;

describe('a browser EventSource on /v1/stream (headless Chromium)', () => {
  let fixture: StreamingFixture;
  let browser: Browser;
  let page: Page;
  const streams: { request: IncomingMessage; response: ServerResponse }[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: run \`apt-get install chromium\``);
    fixture = await startStreamingFixture({
      routes: (app) => app.get('/test/sse.html', (_request, reply) => reply.type('text/html').send(PAGE)),
    });
    fixture.app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      if (request.url?.startsWith('/v1/stream')) streams.push({ request, response });
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage();
  });
  after(async () => {
    await browser?.close();
    await fixture?.close();
  });

  const received = () =>
    page.evaluate(() => (window as unknown as { received: Record<string, unknown>[] }).received);
  const waitForReceived = (count: number) =>
    page.waitForFunction((n) => (window as unknown as { received: unknown[] }).received.length >= n, count, {
      timeout: 10_000,
    });

  it('receives history and live events in order, then resumes after the server drops the stream, without a gap or a duplicate', async () => {
    const history = await fixture.publishMany(3, 'browser.tick');
    await page.goto(`${fixture.baseUrl}/test/sse.html`);
    await waitForReceived(3);
    const live = await fixture.publishMany(2, 'browser.tock', {}, 4);
    await waitForReceived(5);

    // The server ends the response; while the browser waits to reconnect, more is published.
    assert.equal(streams.length, 1);
    streams[0]!.response.end();
    const whileAway = await fixture.publishMany(3, 'browser.tick', {}, 6);
    await waitForReceived(8);
    const afterReconnect = await fixture.publishMany(1, 'browser.tock', {}, 9);
    await waitForReceived(9);
    await new Promise((resolve) => setTimeout(resolve, 100)); // a late duplicate would show now

    const all = [...history, ...live, ...whileAway, ...afterReconnect];
    const got = await received();
    assert.deepEqual(got.map((message) => Number(message.id)), all, 'ids are the log positions, each once');
    assert.deepEqual(got.map((message) => message.sequence), all);
    assert.deepEqual(got.map((message) => message.n), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(got.map((message) => message.topic), [
      ...Array(3).fill('browser.tick'),
      ...Array(2).fill('browser.tock'),
      ...Array(3).fill('browser.tick'),
      'browser.tock',
    ]);
    assert.equal(streams.length, 2, 'the browser reconnected once');
    assert.equal(streams[1]!.request.headers['last-event-id'], String(live.at(-1)), 'with Last-Event-ID');
    assert.equal(await page.evaluate(() => (window as unknown as { opens: number }).opens), 2);
  });
});
