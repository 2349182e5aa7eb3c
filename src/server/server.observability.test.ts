import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBus } from '../core/bus.ts';
import { createSqliteStore } from '../store/sqlite/index.ts';
import { bodyOf, startTestServer, type TestServer } from './test-server.fixture.ts';

describe('stats and metrics', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    for (const type of ['order.created', 'order.created', 'order.paid']) {
      assert.equal((await t.call('POST', '/v1/events', { type, data: {} })).statusCode, 201);
    }
  });
  after(() => t.close());

  it('reports the published events in /v1/stats with the seed fields, the log head and the server’s counts', async () => {
    const stats = bodyOf(await t.call('GET', '/v1/stats'));
    assert.equal(stats.total_published, 3);
    assert.deepEqual(stats.events_by_type, { 'order.created': 2, 'order.paid': 1 });
    assert.equal(stats.log_head, 3);
    for (const field of ['total_delivered', 'active_subscribers', 'queue_size', 'average_delivery_latency_ms', 'uptime_seconds']) {
      assert.equal(typeof stats[field], 'number', field);
    }
    assert.deepEqual(stats.server, { streaming_connections: 0, streaming_live_subscriptions: 0 });
  });

  it('exposes the same in the Prometheus text format, each family once with HELP and TYPE', async () => {
    const response = await t.call('GET', '/metrics');
    assert.equal(response.statusCode, 200);
    assert.match(response.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
    const lines = response.body.trimEnd().split('\n');
    assert.ok(lines.includes('busbar_events_published_total 3'));
    assert.ok(lines.includes('busbar_topic_events_published_total{topic="order.created"} 2'));
    assert.ok(lines.includes('busbar_log_head 3'));
    const families = lines.filter((line) => line.startsWith('# TYPE ')).map((line) => line.split(' ')[2]);
    assert.equal(new Set(families).size, families.length, 'a family is declared twice');
    for (const family of families) assert.ok(lines.includes(lines.find((line) => line.startsWith(`# HELP ${family} `))!), family);
    for (const line of lines.filter((each) => !each.startsWith('#'))) {
      assert.match(line, /^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/, line);
      assert.ok(families.some((family) => line.startsWith(family!)), `sample without a TYPE: ${line}`);
    }
  });

  it('counts contributions registered by other parts of the server', async () => {
    let open = 7;
    t.server.context.meters.gauge('test_widgets', 'Widgets open.', () => open);
    const sent = t.server.context.meters.counter('test_sent_total', 'Messages sent.');
    sent.add(2);
    open = 8;
    assert.equal(bodyOf(await t.call('GET', '/v1/stats')).server.test_widgets, 8);
    const metrics = (await t.call('GET', '/metrics')).body;
    assert.match(metrics, /^# TYPE busbar_test_sent_total counter\nbusbar_test_sent_total 2$/m);
    assert.match(metrics, /^busbar_test_widgets 8$/m);
  });

  it('serves an OpenAPI 3 document covering every endpoint, with the bearer scheme on those that need a key', async () => {
    const document = bodyOf(await t.call('GET', '/v1/openapi.json'));
    assert.match(document.openapi, /^3\./);
    const operations = Object.entries(document.paths as Record<string, Record<string, { security?: unknown[] }>>).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ key: `${method.toUpperCase()} ${path}`, operation })),
    );
    const keys = operations.map((operation) => operation.key);
    for (const endpoint of t.server.endpoints) {
      if (endpoint.url === '/v1/openapi.json') continue;
      assert.ok(keys.includes(`${endpoint.method} ${endpoint.url.replace(/:(\w+)/g, '{$1}')}`), `${endpoint.method} ${endpoint.url}`);
    }
    const security = (key: string) => operations.find((operation) => operation.key === key)?.operation.security;
    assert.deepEqual(security('POST /v1/events'), [{ bearerAuth: [] }]);
    assert.deepEqual(security('GET /v1/health'), []);
    const publish = (document.paths['/v1/events'].post.requestBody.content as Record<string, unknown>);
    assert.deepEqual(Object.keys(publish).sort(), ['application/cloudevents+json', 'application/cloudevents-batch+json', 'application/json']);
  });
});

describe('health', () => {
  it('is ready with per-component checks while the store answers', async () => {
    const t = await startTestServer();
    try {
      const response = await t.call('GET', '/v1/health/ready');
      assert.equal(response.statusCode, 200);
      const report = bodyOf(response);
      assert.equal(report.status, 'ok');
      assert.equal(report.ready, true);
      assert.equal(report.checks.store.status, 'ok');
      assert.equal(typeof report.checks.store.latencyMs, 'number');
      assert.equal(report.checks.bus.status, 'ok');
    } finally {
      await t.close();
    }
  });

  it('reports a broken store as not ready (503) while the process stays live', async () => {
    const t = await startTestServer();
    try {
      await t.server.context.store.close();
      for (const url of ['/v1/health', '/v1/health/ready']) {
        const response = await t.call('GET', url);
        assert.equal(response.statusCode, 503);
        const report = bodyOf(response);
        assert.equal(report.ready, false);
        assert.equal(report.status, 'unavailable');
        assert.equal(report.checks.store.status, 'failed');
        assert.equal(typeof report.checks.store.message, 'string');
      }
      assert.equal((await t.call('GET', '/v1/health/live')).statusCode, 200);
      const publish = await t.call('POST', '/v1/events', { type: 'order.created', data: {} });
      assert.equal(publish.statusCode, 503);
      assert.equal(bodyOf(publish).error.code, 'BUSBAR_ERR_CLOSED');
    } finally {
      await t.close();
    }
  });
});

describe('subscriptions and dead letters of an embedding program’s bus', () => {
  const directory = mkdtempSync(join(tmpdir(), 'busbar-server-subs-'));
  const store = createSqliteStore({ path: join(directory, 'events.db') });
  const bus = createBus({ store, onError: () => {} });
  let failing = true;
  const handled: string[] = [];
  bus.subscribe('mailer', 'order.*', (event) => {
    if (failing) throw new Error('smtp is down');
    handled.push(event.id);
  }, { retry: { attempts: 1 } });
  bus.subscribe('live-view', 'order.*', () => undefined, { durable: false });
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ bus, store });
  });
  after(async () => {
    await t.close();
    await bus.close();
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('lists subscriptions with their stats, and the lag of the durable ones', async () => {
    await t.call('POST', '/v1/events', { type: 'order.created', id: 'order-a', data: {} });
    await bus.idle();
    const { subscriptions } = bodyOf(await t.call('GET', '/v1/subscriptions'));
    const byName = Object.fromEntries(subscriptions.map((each: { name: string }) => [each.name, each]));
    assert.equal(byName.mailer.durable, true);
    assert.deepEqual(byName.mailer.patterns, ['order.*']);
    assert.equal(typeof byName.mailer.lag.events, 'number');
    assert.equal(byName.mailer.lag.head, await store.head());
    assert.equal(byName.mailer.stats.deadLettered, 1);
    assert.equal(byName['live-view'].durable, false);
    assert.equal(byName['live-view'].lag, undefined);
  });

  it('lists dead letters and redrives them to their subscription', async () => {
    const listed = bodyOf(await t.call('GET', '/v1/dead-letters?subscription=mailer'));
    assert.equal(listed.deadLetters.length, 1);
    const [letter] = listed.deadLetters;
    assert.equal(letter.event.id, 'order-a');
    assert.equal(letter.error.message, 'smtp is down');
    assert.equal(letter.attempts, 1);
    failing = false;
    const redriven = await t.call('POST', '/v1/dead-letters/redrive', { ids: [letter.id] });
    assert.equal(redriven.statusCode, 200);
    assert.deepEqual(bodyOf(redriven), { ids: ['order-a'] });
    await bus.idle();
    assert.deepEqual(handled, ['order-a']);
    assert.deepEqual(bodyOf(await t.call('GET', '/v1/dead-letters')).deadLetters, []);
  });

  it('leaves the embedding program’s bus and store open when it closes', async () => {
    const other = await startTestServer({ bus, store });
    await other.close();
    assert.equal(bus.closed, false);
    assert.ok((await store.head()) >= 1);
  });
});
