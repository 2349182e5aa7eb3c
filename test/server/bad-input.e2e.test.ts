/**
 * The bad-input table against one `busbar serve` child process with its
 * default limits (1 MiB bodies and WebSocket messages, Node's 16 KiB
 * headers). Each row gets the status, close code or error code that
 * docs/http-api.md and docs/protocol.md give for it, publishes nothing (the
 * head of the log stays put), and leaves the server healthy. A WebSocket and
 * an SSE watcher stay subscribed to every topic throughout: at the end they
 * have received exactly one event, the normal publish made after the table.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { openSse, openWs, type SseClient, type WsClient } from '../../src/server/streaming/streaming-clients.fixture.ts';
import { type BusbarProcess, logHead, scratchDirectory, startBusbar } from './busbar-process.fixture.ts';

/** The documented defaults of `busbar serve` (docs/server.md, "Options" and "Limits"). */
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_MESSAGE_BYTES = 1024 * 1024;

const ORDER_SCHEMA = {
  type: 'object',
  required: ['id', 'total'],
  properties: { id: { type: 'string' }, total: { type: 'number', minimum: 0 } },
};

interface HttpRow {
  name: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
  status: number;
  code: string;
}

const json = { 'content-type': 'application/json' };
const binaryMode = { 'ce-specversion': '1.0', 'ce-id': 'bin-big', 'ce-source': 'urn:e2e', 'ce-type': 'e2e.blob', 'content-type': 'application/octet-stream' };

/** Publishing rows: docs/http-api.md, "Errors". */
const publishRows: HttpRow[] = [
  { name: 'malformed JSON', path: '/v1/events', headers: json, body: '{"type": "shop.order.created",', status: 400, code: 'BUSBAR_ERR_INVALID_JSON' },
  { name: 'a malformed CloudEvents batch', path: '/v1/events', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: '[{"specversion":', status: 400, code: 'BUSBAR_ERR_INVALID_JSON' },
  { name: 'a wrong content type (a form)', path: '/v1/events', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'type=shop.order.created', status: 415, code: 'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'text without CloudEvents headers', path: '/v1/events', headers: { 'content-type': 'text/plain' }, body: 'shop.order.created', status: 415, code: 'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a missing type', path: '/v1/events', headers: json, body: '{"data": {"id": "o-1"}}', status: 400, code: 'BUSBAR_ERR_INVALID_EVENT' },
  { name: 'a structured event without a type', path: '/v1/events', headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0","id":"x","source":"urn:e2e"}', status: 400, code: 'BUSBAR_ERR_INVALID_EVENT' },
  { name: 'an invalid topic', path: '/v1/events', headers: json, body: '{"type": "shop..order", "data": 1}', status: 400, code: 'BUSBAR_ERR_INVALID_TOPIC' },
  { name: 'an invalid topic in binary mode', path: '/v1/events', headers: { ...binaryMode, 'ce-type': 'shop order' }, body: 'x', status: 400, code: 'BUSBAR_ERR_INVALID_TOPIC' },
  { name: 'a schema violation', path: '/v1/events', headers: json, body: '{"type": "shop.order.created", "data": {"id": "o-1", "total": -5}}', status: 400, code: 'BUSBAR_ERR_VALIDATION' },
  {
    name: 'a batch with one schema violation among good events',
    path: '/v1/events',
    headers: json,
    body: JSON.stringify([
      { type: 'shop.order.created', data: { id: 'o-1', total: 1 } },
      { type: 'shop.order.created', data: { id: 'o-2' } },
      { type: 'shop.order.paid', data: { id: 'o-1' } },
    ]),
    status: 400,
    code: 'BUSBAR_ERR_VALIDATION',
  },
  { name: 'a schema violation in a stream append', path: '/v1/streams/order-1/events', headers: json, body: '{"events": [{"type": "shop.order.created", "data": {}}]}', status: 400, code: 'BUSBAR_ERR_VALIDATION' },
  { name: 'an oversized JSON body', path: '/v1/events', headers: json, body: JSON.stringify({ type: 'e2e.big', data: 'x'.repeat(MAX_BODY_BYTES) }), status: 413, code: 'BUSBAR_ERR_PAYLOAD_TOO_LARGE' },
  { name: 'an oversized binary-mode body', path: '/v1/events', headers: binaryMode, body: new Uint8Array(MAX_BODY_BYTES + 1), status: 413, code: 'BUSBAR_ERR_PAYLOAD_TOO_LARGE' },
  { name: 'an unknown route', method: 'GET', path: '/v2/events', status: 404, code: 'BUSBAR_ERR_NOT_FOUND' },
  { name: 'an unknown method on a known path', method: 'DELETE', path: '/v1/events', status: 404, code: 'BUSBAR_ERR_NOT_FOUND' },
  { name: 'an invalid pattern when reading the log', method: 'GET', path: '/v1/events?topics=shop..order', status: 400, code: 'BUSBAR_ERR_INVALID_PATTERN' },
];

/** Server-Sent Events rows: docs/protocol.md, "Server-Sent Events", "Errors". */
const sseRows: HttpRow[] = [
  { name: 'an invalid Last-Event-ID header', method: 'GET', path: '/v1/stream?topics=shop.>', headers: { 'last-event-id': 'abc' }, status: 400, code: 'BUSBAR_ERR_INVALID_ARGUMENT' },
  { name: 'a negative lastEventId query', method: 'GET', path: '/v1/stream?topics=shop.>&lastEventId=-1', status: 400, code: 'BUSBAR_ERR_INVALID_ARGUMENT' },
  { name: 'a Last-Event-ID past the end of the log', method: 'GET', path: '/v1/stream?topics=shop.>', headers: { 'last-event-id': '999999' }, status: 400, code: 'BUSBAR_ERR_INVALID_ARGUMENT' },
  { name: 'an invalid pattern', method: 'GET', path: '/v1/stream?topics=shop..order', status: 400, code: 'BUSBAR_ERR_INVALID_PATTERN' },
  { name: 'a ">" that is not the last token', method: 'GET', path: '/v1/stream?topics=shop.>.x', status: 400, code: 'BUSBAR_ERR_INVALID_PATTERN' },
];

describe('bad input against busbar serve', () => {
  const scratch = scratchDirectory('bad-input');
  let server: BusbarProcess;
  let wsWatcher: WsClient;
  let sseWatcher: SseClient;

  before(async () => {
    server = await startBusbar({ data: scratch.file('busbar.db') });
    const registered = await fetch(`${server.url}/v1/topics/shop.order.created`, { method: 'PUT', headers: json, body: JSON.stringify({ schema: ORDER_SCHEMA }) });
    assert.equal(registered.status, 201, await registered.text());
    // Watchers on every topic, from now on: whatever a bad request published would reach them.
    wsWatcher = await openWs(server.wsUrl);
    wsWatcher.send({ op: 'subscribe', id: 'all', topics: ['>'] });
    await wsWatcher.next((frame) => frame.op === 'subscribed');
    sseWatcher = await openSse(`${server.url}/v1/stream?topics=>`);
    assert.equal(sseWatcher.status, 200);
  });
  after(async () => {
    sseWatcher?.abort();
    await wsWatcher?.close();
    await server?.stop('SIGKILL');
    scratch.remove();
  });

  /** Runs `request`, then checks nothing was published and the server still answers its health check. */
  async function publishesNothing(request: () => Promise<void>): Promise<void> {
    const head = await logHead(server.url);
    await request();
    assert.equal(await logHead(server.url), head, 'the head of the log moved');
    const health = await fetch(`${server.url}/v1/health`);
    assert.equal(health.status, 200, await health.text());
  }

  for (const row of [...publishRows, ...sseRows]) {
    it(`answers ${row.name} with ${row.status} ${row.code}, publishes nothing and stays healthy`, () =>
      publishesNothing(async () => {
        const response = await fetch(`${server.url}${row.path}`, { method: row.method ?? 'POST', headers: row.headers, body: row.body });
        const text = await response.text();
        assert.equal(response.status, row.status, text);
        assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
        const { error } = JSON.parse(text) as { error: { code: string; message: string; details?: { issues?: unknown[] } } };
        assert.equal(error.code, row.code, text);
        assert.ok(error.message.length > 0);
        if (row.code === 'BUSBAR_ERR_VALIDATION') assert.ok((error.details?.issues?.length ?? 0) > 0, `the issues are listed: ${text}`);
      }));
  }

  /** Sends a request with a header over Node's 16 KiB limit on a raw socket; resolves with all the server wrote back. */
  function hugeHeaderRequest(): Promise<string> {
    const { port } = new URL(server.url);
    return new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
      socket.write(
        `POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 30\r\n` +
          `X-Huge: ${'h'.repeat(17 * 1024)}\r\n\r\n{"type":"shop.order.paid"}    `,
      );
    });
  }

  it('answers request headers over 16 KiB with 431 and keeps serving', () =>
    publishesNothing(async () => {
      assert.match(await hugeHeaderRequest(), /^HTTP\/1\.1 431 /);
    }));

  it('answers 431 in Busbar\'s error shape, with BUSBAR_ERR_HEADERS_TOO_LARGE, as docs/http-api.md says', async () => {
    const answer = await hugeHeaderRequest();
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    const { error } = JSON.parse(body) as { error: { code?: unknown; message?: unknown } };
    assert.equal(error.code, 'BUSBAR_ERR_HEADERS_TOO_LARGE', body);
    assert.equal(typeof error.message, 'string', body);
    assert.match(answer, /\r\ncontent-type: application\/json/i);
  });

  describe('over WebSocket', () => {
    let client: WsClient;
    before(async () => {
      client = await openWs(server.wsUrl);
    });
    after(() => client.close());

    /** Sends `message`, expects an error frame with `code`, and shows the socket still answers a ping. */
    async function answersWithError(message: string | object, code: string, names: { id?: string; ref?: string } = {}): Promise<void> {
      client.send(message);
      const frame = await client.next((each) => each.op === 'error');
      assert.equal(frame.error.code, code, frame.error.message);
      assert.ok(frame.error.message.length > 0);
      assert.equal(frame.id, names.id);
      assert.equal(frame.ref, names.ref);
      client.send({ op: 'ping', ref: 'still-open' });
      await client.next((each) => each.op === 'pong' && each.ref === 'still-open');
      assert.equal(client.socket.readyState, WebSocket.OPEN);
    }

    it('answers a malformed message with an error frame and keeps the socket open', () =>
      publishesNothing(() => answersWithError('{"op": "publish", "event": {', 'BUSBAR_ERR_INVALID_JSON')));

    it('answers a message of an unknown op with an error frame and keeps the socket open', () =>
      publishesNothing(() => answersWithError({ op: 'teleport', ref: 't1' }, 'BUSBAR_ERR_INVALID_ARGUMENT', { ref: 't1' })));

    it('answers a subscribe with an invalid pattern with an error frame naming it, and subscribes nothing', () =>
      publishesNothing(() => answersWithError({ op: 'subscribe', id: 'bad', topics: ['shop..order'] }, 'BUSBAR_ERR_INVALID_PATTERN', { id: 'bad' })));

    it('answers a publish with a missing type, an invalid topic and a schema violation with error frames', () =>
      publishesNothing(async () => {
        await answersWithError({ op: 'publish', ref: 'p1', event: { data: { id: 'o-1' } } }, 'BUSBAR_ERR_INVALID_EVENT', { ref: 'p1' });
        await answersWithError({ op: 'publish', ref: 'p2', event: { type: 'shop..order', data: 1 } }, 'BUSBAR_ERR_INVALID_TOPIC', { ref: 'p2' });
        await answersWithError(
          { op: 'publish', ref: 'p3', events: [{ type: 'shop.order.paid', data: 1 }, { type: 'shop.order.created', data: { id: 7 } }] },
          'BUSBAR_ERR_VALIDATION',
          { ref: 'p3' },
        );
      }));

    it('answers an invalid pattern in the connection URL with an error frame for the "default" subscription', () =>
      publishesNothing(async () => {
        const scoped = await openWs(`${server.wsUrl}?topics=shop..order`);
        try {
          const frame = await scoped.next((each) => each.op === 'error' || each.op === 'subscribed');
          assert.equal(frame.op, 'error');
          assert.deepEqual([frame.id, frame.error.code], ['default', 'BUSBAR_ERR_INVALID_PATTERN']);
          scoped.send({ op: 'ping', ref: 'p' });
          await scoped.next((each) => each.op === 'pong');
        } finally {
          await scoped.close();
        }
      }));

    it('closes with 1009 on a message over 1 MiB, and the other sockets carry on', () =>
      publishesNothing(async () => {
        const oversized = await openWs(server.wsUrl);
        oversized.send({ op: 'publish', ref: 'big', event: { type: 'e2e.big', data: 'x'.repeat(MAX_MESSAGE_BYTES) } });
        assert.equal((await oversized.closed).code, 1009);
        client.send({ op: 'ping', ref: 'after-1009' });
        await client.next((each) => each.op === 'pong' && each.ref === 'after-1009');
      }));

    it('closes with 1007 on a text frame that is not UTF-8', () =>
      publishesNothing(async () => {
        const garbled = await openWs(server.wsUrl);
        garbled.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
        assert.equal((await garbled.closed).code, 1007);
      }));

    it('answers an upgrade on an unknown path with 404', () =>
      publishesNothing(async () => {
        const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/nowhere`);
        const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          socket.once('unexpected-response', (request, response) => {
            let text = '';
            response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
            response.on('end', () => {
              request.destroy();
              resolve({ status: response.statusCode ?? -1, body: text });
            });
          });
          socket.once('error', reject);
        });
        assert.equal(status, 404);
        assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'BUSBAR_ERR_NOT_FOUND');
      }));
  });

  it('still publishes and delivers live afterwards: the watchers get that one event and nothing from the bad input', async () => {
    const health = await fetch(`${server.url}/v1/health/ready`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');
    const response = await fetch(`${server.url}/v1/events`, { method: 'POST', headers: json, body: JSON.stringify({ type: 'shop.order.created', data: { id: 'o-9', total: 9 } }) });
    assert.equal(response.status, 201);
    const { id, position } = (await response.json()) as { id: string; position: number };

    const frames = await wsWatcher.waitForEvents('all', 1);
    await sseWatcher.waitFor(1);
    // A moment for anything published by mistake to show up behind it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      wsWatcher.events('all').map((frame) => [frame.event.id, frame.position]),
      [[id, position]],
    );
    assert.deepEqual(
      sseWatcher.messages.map((message) => [JSON.parse(message.data).id, Number(message.id)]),
      [[id, position]],
    );
    assert.equal(frames[0]!.event.type, 'shop.order.created');
  });
});
