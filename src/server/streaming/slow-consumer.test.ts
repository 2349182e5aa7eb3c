import assert from 'node:assert/strict';
import { get, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { streamingStats } from './index.ts';
import { openSse, openWs } from './streaming-clients.fixture.ts';
import { startStreamingFixture, type StreamingFixture } from './test-context.fixture.ts';

const SEND_BUFFER = 64 * 1024;
const PAYLOAD = 'x'.repeat(16 * 1024);
// Enough to fill the kernel's socket buffers (a few MB on loopback) and then the cap.
const MAX_EVENTS = 4000;

/** Publishes big events until `done` says so; returns how many were published. */
async function publishUntil(fixture: StreamingFixture, topic: string, done: () => boolean): Promise<number> {
  let published = 0;
  while (!done()) {
    assert.ok(published < MAX_EVENTS, 'the slow consumer was never cut off');
    await fixture.publishMany(20, topic, { data: PAYLOAD });
    published += 20;
  }
  return published;
}

describe('slow consumers', () => {
  let fixture: StreamingFixture;
  before(async () => {
    fixture = await startStreamingFixture({ limits: { sendBufferBytes: SEND_BUFFER, heartbeatMs: 10_000 } });
  });
  after(() => fixture.close());

  it('closes a WebSocket that stops reading with 4008 while a healthy one receives everything', async () => {
    const healthy = await openWs(fixture.wsUrl);
    const stalled = await openWs(fixture.wsUrl);
    healthy.send({ op: 'subscribe', id: 's', topics: ['slow.ws'] });
    stalled.send({ op: 'subscribe', id: 's', topics: ['slow.ws'] });
    await healthy.next((f) => f.op === 'subscribed');
    await stalled.next((f) => f.op === 'subscribed');
    stalled.socket.pause(); // never reads again: the server's send buffer for it grows
    const live = () => streamingStats(fixture.app).liveSubscriptions;
    assert.equal(live(), 2);
    const published = await publishUntil(fixture, 'slow.ws', () => live() < 2);
    const received = await healthy.waitForEvents('s', published, 20_000);
    assert.deepEqual(
      received.map((frame) => frame.event.type),
      Array(published).fill('slow.ws'),
      'the healthy client got every event',
    );
    stalled.socket.resume();
    const { code, reason } = await stalled.closed;
    assert.equal(code, 4008);
    assert.equal(reason, 'slow consumer');
    const got = stalled.events('s').map((frame) => frame.position);
    const first = received[0]!.position;
    assert.deepEqual(got, got.map((_, n) => first + n), 'what it did get is a gap-free prefix to resume from');
    assert.ok(got.length < published);
    assert.equal(healthy.socket.readyState, healthy.socket.OPEN);
    await healthy.close();
  });

  it('drops an SSE response that stops being read while a healthy one receives everything', async () => {
    const healthy = await openSse(`${fixture.baseUrl}/v1/stream?topics=slow.sse`);
    const stalled = await new Promise<IncomingMessage>((resolve) =>
      get(`${fixture.baseUrl}/v1/stream?topics=slow.sse`, resolve),
    );
    assert.equal(stalled.statusCode, 200);
    stalled.pause();
    const live = () => streamingStats(fixture.app).liveSubscriptions;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(live(), 2);
    const published = await publishUntil(fixture, 'slow.sse', () => live() < 2);
    await healthy.waitFor(published, 20_000);
    assert.equal(healthy.messages.length, published);
    assert.equal(healthy.isEnded, false);

    // Reading again, the dropped client finds the stream ended after what
    // had reached it: whole messages in order, then at most a torn last one
    // (which EventSource discards) to resume after.
    let text = '';
    stalled.setEncoding('utf8');
    stalled.on('data', (chunk: string) => (text += chunk));
    stalled.on('error', () => {});
    stalled.resume();
    await new Promise((resolve) => stalled.socket.once('close', resolve));
    const ids = text
      .split('\n\n')
      .slice(0, -1)
      .map((message) => /^id: (\d+)$/m.exec(message)?.[1])
      .filter((id) => id !== undefined)
      .map(Number);
    const first = Number(healthy.messages[0]!.id);
    assert.ok(ids.length > 0 && ids.length < published);
    assert.deepEqual(ids, ids.map((_, n) => first + n));
    healthy.abort();
  });
});
