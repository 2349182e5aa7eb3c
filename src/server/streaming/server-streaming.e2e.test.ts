import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type BusbarServer, createServer } from '../server.ts';
import { openSse, openWs } from './streaming-clients.fixture.ts';

const PUBLISHER = 'publisher-secret-0123456789';
const READER = 'reader-secret-0123456789abc';

describe('streaming through the whole server (createServer)', () => {
  let directory: string;
  let server: BusbarServer;
  let url: string;
  let wsUrl: string;
  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'busbar-streaming-e2e-'));
    server = await createServer({
      port: 0,
      logger: false,
      data: join(directory, 'events.db'),
      apiKeys: [
        { name: 'publisher', key: PUBLISHER, publish: ['shop.>'], subscribe: ['shop.>'] },
        { name: 'reader', key: READER, subscribe: ['shop.order.*'] },
      ],
    });
    ({ url } = await server.listen());
    wsUrl = `${url.replace('http', 'ws')}/v1/ws`;
  });
  after(async () => {
    await server.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('delivers events published over HTTP and over WebSocket to SSE and WebSocket subscribers, with their positions', async () => {
    const sse = await openSse(`${url}/v1/stream?topics=shop.order.*&token=${READER}`);
    const reader = await openWs(wsUrl, { authorization: `Bearer ${READER}` });
    const publisher = await openWs(`${wsUrl}?token=${PUBLISHER}`);
    try {
      assert.equal(sse.status, 200);
      reader.send({ op: 'subscribe', id: 'orders', topics: ['shop.order.*'] });
      await reader.next((f) => f.op === 'subscribed');

      const response = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISHER}` },
        body: JSON.stringify({ type: 'shop.order.created', data: { id: 'o-1' } }),
      });
      assert.equal(response.status, 201);
      const overHttp = (await response.json()) as { id: string; position: number };

      publisher.send({ op: 'publish', ref: 'r1', event: { type: 'shop.order.paid', data: { id: 'o-1' } } });
      const ack = await publisher.next((f) => f.op === 'ack');
      assert.equal(ack.ref, 'r1');
      const overWs = ack.events[0] as { id: string; position: number };
      assert.equal((await server.context.store.getEvent(overWs.id))?.position, overWs.position);

      const expected = [overHttp, overWs];
      await sse.waitFor(2);
      assert.deepEqual(
        sse.messages.map((message) => [JSON.parse(message.data).id, Number(message.id)]),
        expected.map(({ id, position }) => [id, position]),
      );
      const frames = await reader.waitForEvents('orders', 2);
      assert.deepEqual(
        frames.map((frame) => [frame.event.id, frame.position]),
        expected.map(({ id, position }) => [id, position]),
      );
      assert.equal(frames[1]!.event.source, 'busbar', 'the plain form got the server\'s source');
    } finally {
      sse.abort();
      await reader.close();
      await publisher.close();
    }
  });

  it('applies the server\'s API keys: 401 and 403 for SSE, 4001 and error frames for WebSocket', async () => {
    assert.equal((await fetch(`${url}/v1/stream?topics=shop.order.*`)).status, 401);
    const forbidden = await fetch(`${url}/v1/stream?topics=shop.>&token=${READER}`);
    assert.equal(forbidden.status, 403);
    assert.equal(((await forbidden.json()) as { error: { code: string } }).error.code, 'BUSBAR_ERR_FORBIDDEN');

    const anonymous = new WebSocket(wsUrl);
    assert.equal(await new Promise((resolve) => anonymous.once('close', resolve)), 4001);

    const reader = await openWs(wsUrl, { authorization: `Bearer ${READER}` });
    reader.send({ op: 'publish', ref: 'nope', event: { type: 'shop.order.created', data: {} } });
    const error = await reader.next((f) => f.op === 'error');
    assert.deepEqual([error.ref, error.error.code], ['nope', 'BUSBAR_ERR_FORBIDDEN']);
    reader.send({ op: 'subscribe', id: 'all', topics: ['>'] });
    const denied = await reader.next((f) => f.op === 'error');
    assert.deepEqual([denied.id, denied.error.code], ['all', 'BUSBAR_ERR_FORBIDDEN']);
    await reader.close();
  });

  it('says going-away to streaming clients when the server closes', async () => {
    const ws = await openWs(wsUrl, { authorization: `Bearer ${READER}` });
    const sse = await openSse(`${url}/v1/stream?topics=shop.order.*&token=${READER}`);
    const started = Date.now();
    await server.close();
    assert.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`);
    assert.equal((await ws.closed).code, 1001);
    await sse.ended;
    assert.equal(sse.isEnded, true);
  });
});
