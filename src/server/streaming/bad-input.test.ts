import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { openSse, openWs, type WsClient } from './streaming-clients.fixture.ts';
import { startStreamingFixture, type StreamingFixture } from './test-context.fixture.ts';

const READER = 'reader-secret';
const WRITER = 'writer-secret';
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

describe('bad input to the streaming endpoints', () => {
  let fixture: StreamingFixture;
  before(async () => {
    fixture = await startStreamingFixture({
      limits: { maxMessageBytes: 4096 },
      keys: {
        [READER]: { name: 'reader', subscribe: ['orders.>'] },
        [WRITER]: { name: 'writer', publish: ['orders.>'], subscribe: ['>'] },
      },
    });
    await fixture.publishMany(3, 'orders.created');
  });
  after(() => fixture.close());

  async function assertStaysHealthy(): Promise<void> {
    const sse = await openSse(`${fixture.baseUrl}/v1/stream?topics=orders.*&from=1`, bearer(READER));
    try {
      assert.equal(sse.status, 200);
      await sse.waitFor(3);
    } finally {
      sse.abort();
    }
  }

  describe('SSE: answered with a JSON error before the stream starts', () => {
    const cases: [string, string, Record<string, string>, number, string][] = [
      ['an invalid Last-Event-ID header', 'topics=orders.*', { ...bearer(READER), 'last-event-id': 'abc' }, 400, 'BUSBAR_ERR_INVALID_ARGUMENT'],
      ['a negative lastEventId query', 'topics=orders.*&lastEventId=-1', bearer(READER), 400, 'BUSBAR_ERR_INVALID_ARGUMENT'],
      ['a Last-Event-ID past the end of the log', 'topics=orders.*', { ...bearer(READER), 'last-event-id': '999999' }, 400, 'BUSBAR_ERR_INVALID_ARGUMENT'],
      ['an invalid from', 'topics=orders.*&from=yesterday', bearer(READER), 400, 'BUSBAR_ERR_INVALID_ARGUMENT'],
      ['a malformed pattern', 'topics=orders..created', bearer(READER), 400, 'BUSBAR_ERR_INVALID_PATTERN'],
      ['a ">" that is not last', 'topics=orders.>.x', bearer(READER), 400, 'BUSBAR_ERR_INVALID_PATTERN'],
      ['a repeated from', 'topics=orders.*&from=1&from=2', bearer(READER), 400, 'BUSBAR_ERR_INVALID_ARGUMENT'],
      ['no API key', 'topics=orders.*', {}, 401, 'BUSBAR_ERR_UNAUTHORIZED'],
      ['an unknown API key', 'topics=orders.*', bearer('nope'), 401, 'BUSBAR_ERR_UNAUTHORIZED'],
      ['an unknown query token', 'topics=orders.*&token=nope', {}, 401, 'BUSBAR_ERR_UNAUTHORIZED'],
      ['a pattern outside the key\'s rights', 'topics=orders.*,users.*', bearer(READER), 403, 'BUSBAR_ERR_FORBIDDEN'],
      ['no topics with a key limited to some', '', bearer(READER), 403, 'BUSBAR_ERR_FORBIDDEN'],
    ];
    for (const [what, query, headers, status, code] of cases) {
      it(`rejects ${what} with ${status} ${code}`, async () => {
        const response = await fetch(`${fixture.baseUrl}/v1/stream?${query}`, { headers });
        assert.equal(response.status, status);
        assert.match(response.headers.get('content-type')!, /^application\/json/);
        const body = (await response.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, code);
        assert.ok(body.error.message.length > 0);
        await assertStaysHealthy();
      });
    }

    it('accepts the API key as a token query parameter, for EventSource', async () => {
      const sse = await openSse(`${fixture.baseUrl}/v1/stream?topics=orders.*&from=beginning&token=${READER}`);
      try {
        assert.equal(sse.status, 200);
        await sse.waitFor(3);
      } finally {
        sse.abort();
      }
    });
  });

  describe('WebSocket: error frames for bad messages, the socket stays open', () => {
    let client: WsClient;
    before(async () => {
      client = await openWs(fixture.wsUrl, bearer(WRITER));
    });
    after(() => client.close());

    async function expectError(message: unknown, code: string, names: { ref?: string; id?: string } = {}) {
      client.send(message);
      const frame = await client.next((f) => f.op === 'error');
      assert.equal(frame.error.code, code, frame.error.message);
      assert.ok(frame.error.message.length > 0);
      assert.equal(frame.ref, names.ref);
      assert.equal(frame.id, names.id);
      client.send({ op: 'ping', ref: 'still-there' });
      await client.next((f) => f.op === 'pong' && f.ref === 'still-there');
    }

    it('answers malformed JSON with BUSBAR_ERR_INVALID_JSON', () => expectError('{"op":', 'BUSBAR_ERR_INVALID_JSON'));
    it('answers a message that is not an object', () => expectError('[1,2]', 'BUSBAR_ERR_INVALID_ARGUMENT'));
    it('answers an unknown op, naming its ref', () =>
      expectError({ op: 'teleport', ref: 'r9' }, 'BUSBAR_ERR_INVALID_ARGUMENT', { ref: 'r9' }));
    it('answers a subscribe without an id', () =>
      expectError({ op: 'subscribe', topics: ['orders.*'] }, 'BUSBAR_ERR_INVALID_ARGUMENT'));
    it('answers an invalid pattern, naming the subscription', () =>
      expectError({ op: 'subscribe', id: 'bad', topics: ['orders..x'] }, 'BUSBAR_ERR_INVALID_PATTERN', { id: 'bad' }));
    it('answers a RegExp-like non-string pattern', () =>
      expectError({ op: 'subscribe', id: 'obj', topics: [{}] }, 'BUSBAR_ERR_INVALID_PATTERN', { id: 'obj' }));
    it('answers an invalid from', () =>
      expectError({ op: 'subscribe', id: 'f', topics: ['orders.*'], from: -3 }, 'BUSBAR_ERR_INVALID_ARGUMENT', { id: 'f' }));
    it('answers a from past the end of the log', () =>
      expectError({ op: 'subscribe', id: 'p', topics: ['orders.*'], from: { after: 10_000 } }, 'BUSBAR_ERR_INVALID_ARGUMENT', { id: 'p' }));
    it('answers a subscription id used twice', async () => {
      client.send({ op: 'subscribe', id: 'twice', topics: ['orders.*'] });
      await client.next((f) => f.op === 'subscribed' && f.id === 'twice');
      await expectError({ op: 'subscribe', id: 'twice', topics: ['x'] }, 'BUSBAR_ERR_INVALID_ARGUMENT', { id: 'twice' });
    });
    it('answers an unsubscribe of an unknown subscription with BUSBAR_ERR_NOT_FOUND', () =>
      expectError({ op: 'unsubscribe', id: 'never' }, 'BUSBAR_ERR_NOT_FOUND', { id: 'never' }));
    it('answers a publish of an invalid event, naming its ref, and logs nothing', async () => {
      const head = await fixture.store.head();
      await expectError({ op: 'publish', ref: 'p1', event: { type: 'orders..bad', data: 1 } }, 'BUSBAR_ERR_INVALID_TOPIC', { ref: 'p1' });
      await expectError({ op: 'publish', ref: 'p2', events: [] }, 'BUSBAR_ERR_INVALID_ARGUMENT', { ref: 'p2' });
      assert.equal(await fixture.store.head(), head);
    });
    it('answers a publish outside the key\'s rights with BUSBAR_ERR_FORBIDDEN', () =>
      expectError({ op: 'publish', ref: 'p3', event: { type: 'users.created', data: 1 } }, 'BUSBAR_ERR_FORBIDDEN', { ref: 'p3' }));
  });

  describe('WebSocket: close codes for what cannot go on', () => {
    it('closes with 4001 when the API key is missing or unknown, and accepts a query token', async () => {
      for (const url of [fixture.wsUrl, `${fixture.wsUrl}?token=nope`]) {
        const socket = new WebSocket(url);
        const { code } = await new Promise<{ code: number }>((resolve) =>
          socket.once('close', (code) => resolve({ code })),
        );
        assert.equal(code, 4001);
      }
      const withToken = await openWs(`${fixture.wsUrl}?token=${READER}`);
      withToken.send({ op: 'subscribe', id: 's', topics: ['orders.*'], from: 'beginning' });
      await withToken.waitForEvents('s', 3);
      await withToken.close();
    });

    it('answers a forbidden pattern with an error frame, not a close', async () => {
      const client = await openWs(fixture.wsUrl, bearer(READER));
      client.send({ op: 'subscribe', id: 'users', topics: ['users.>'] });
      const frame = await client.next((f) => f.op === 'error');
      assert.equal(frame.error.code, 'BUSBAR_ERR_FORBIDDEN');
      assert.equal(frame.id, 'users');
      assert.equal(client.socket.readyState, WebSocket.OPEN);
      await client.close();
    });

    it('closes with 1009 on a frame larger than the limit, and other sockets carry on', async () => {
      const bystander = await openWs(fixture.wsUrl, bearer(WRITER));
      const client = await openWs(fixture.wsUrl, bearer(WRITER));
      client.send({ op: 'publish', ref: 'big', event: { type: 'orders.big', data: 'x'.repeat(5000) } });
      const { code } = await client.closed;
      assert.equal(code, 1009);
      bystander.send({ op: 'publish', ref: 'small', event: { type: 'orders.small', data: 1 } });
      const ack = await bystander.next((f) => f.op === 'ack');
      assert.equal(ack.ref, 'small');
      await bystander.close();
      await assertStaysHealthy();
    });

    it('answers an upgrade on another path with 404', async () => {
      const socket = new WebSocket(fixture.wsUrl.replace('/v1/ws', '/v1/nowhere'));
      const status = await new Promise<number>((resolve) => {
        socket.once('unexpected-response', (_request, response) => resolve(response.statusCode!));
        socket.once('error', () => resolve(-1));
      });
      assert.equal(status, 404);
    });
  });
});
