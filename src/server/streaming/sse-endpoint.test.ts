import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSse } from './streaming-clients.fixture.ts';
import { startStreamingFixture, type StreamingFixture } from './test-context.fixture.ts';

const positionsOf = (messages: { id: string | undefined }[]) => messages.map((message) => Number(message.id));

describe('GET /v1/stream (Server-Sent Events)', () => {
  let fixture: StreamingFixture;
  before(async () => {
    fixture = await startStreamingFixture({ limits: { heartbeatMs: 200 } });
  });
  after(() => fixture.close());

  it('sends events in log order with id = position, event = topic and the CloudEvent as one data line', async () => {
    const sse = await openSse(`${fixture.baseUrl}/v1/stream?topics=sse.order.*`);
    try {
      assert.equal(sse.status, 200);
      assert.match(sse.response.headers.get('content-type')!, /^text\/event-stream/);
      const positions = await fixture.publishMany(5, 'sse.order.created');
      await sse.waitFor(5);
      assert.deepEqual(positionsOf(sse.messages), positions);
      for (const [index, message] of sse.messages.entries()) {
        assert.equal(message.event, 'sse.order.created');
        const event = JSON.parse(message.data);
        assert.equal(event.specversion, '1.0');
        assert.equal(event.type, 'sse.order.created');
        assert.equal(event.sequence, positions[index]);
        assert.deepEqual(event.data, { n: index + 1 });
      }
      assert.equal(sse.retry, 1000);
    } finally {
      sse.abort();
    }
  });

  it('starts at the head without from, at the beginning with from=beginning and at a position with from=N', async () => {
    const old = await fixture.publishMany(3, 'sse.start.old');
    const fromNow = await openSse(`${fixture.baseUrl}/v1/stream?topics=sse.start.*`);
    const fromBeginning = await openSse(`${fixture.baseUrl}/v1/stream?topics=sse.start.*&from=beginning`);
    const fromSecond = await openSse(`${fixture.baseUrl}/v1/stream?topics=sse.start.*&from=${old[1]}`);
    try {
      const fresh = await fixture.publishMany(2, 'sse.start.new');
      await Promise.all([fromNow.waitFor(2), fromBeginning.waitFor(5), fromSecond.waitFor(4)]);
      assert.deepEqual(positionsOf(fromNow.messages), fresh);
      assert.deepEqual(positionsOf(fromBeginning.messages), [...old, ...fresh]);
      assert.deepEqual(positionsOf(fromSecond.messages), [...old.slice(1), ...fresh]);
    } finally {
      for (const sse of [fromNow, fromBeginning, fromSecond]) sse.abort();
    }
  });

  it('keeps only the events whose topic matches a pattern and whose subject is the one asked for', async () => {
    const sse = await openSse(`${fixture.baseUrl}/v1/stream?topics=sse.lib.*,sse.other.>&subject=library-1`);
    try {
      await fixture.publishMany(1, 'sse.lib.added', { subject: 'library-2' });
      const [wanted] = await fixture.publishMany(1, 'sse.lib.added', { subject: 'library-1' });
      await fixture.publishMany(1, 'sse.unrelated', { subject: 'library-1' });
      const [deep] = await fixture.publishMany(1, 'sse.other.x.y', { subject: 'library-1' });
      await sse.waitFor(2);
      await fixture.publishMany(1, 'sse.lib.added'); // no subject: not for this stream
      const [last] = await fixture.publishMany(1, 'sse.lib.removed', { subject: 'library-1' });
      await sse.waitFor(3);
      assert.deepEqual(positionsOf(sse.messages), [wanted, deep, last]);
    } finally {
      sse.abort();
    }
  });

  it('resumes after a forced disconnect with Last-Event-ID without a gap or a duplicate while publishing goes on', async () => {
    const topic = 'sse.resume.tick';
    const first = await openSse(`${fixture.baseUrl}/v1/stream?topics=${topic}&from=beginning`);
    let publishing = true;
    let published = 0;
    const publisher = (async () => {
      while (publishing) {
        await fixture.publishMany(10, topic, {}, published + 1);
        published += 10;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    await first.waitFor(50);
    first.abort(); // mid-stream, events still flowing
    await first.ended;
    const received = [...first.messages];
    const lastId = received.at(-1)!.id!;
    const second = await openSse(`${fixture.baseUrl}/v1/stream?topics=${topic}&from=beginning`, {
      'Last-Event-ID': lastId,
    });
    await second.waitFor(60);
    publishing = false;
    await publisher;
    const log = (await fixture.store.readAll({ topics: [topic], limit: 100_000 })).events.map((e) => e.position);
    await second.waitFor(log.length - received.length);
    second.abort();
    const all = positionsOf([...received, ...second.messages]);
    assert.deepEqual(all, log, 'every logged event exactly once, in order');
  });

  it('resumes after the lastEventId query parameter, which a fresh EventSource can set', async () => {
    const positions = await fixture.publishMany(4, 'sse.query.resume');
    const sse = await openSse(`${fixture.baseUrl}/v1/stream?topics=sse.query.resume&lastEventId=${positions[1]}`);
    try {
      await sse.waitFor(2);
      assert.deepEqual(positionsOf(sse.messages), positions.slice(2));
    } finally {
      sse.abort();
    }
  });

  it('sends heartbeat comments while nothing happens', async () => {
    const sse = await openSse(`${fixture.baseUrl}/v1/stream?topics=sse.quiet`);
    try {
      await sse.waitForComments(2, 2000);
      assert.deepEqual(sse.messages, []);
      assert.equal(sse.comments[0], 'heartbeat');
    } finally {
      sse.abort();
    }
  });

  it('streams every topic when no topics are given', async () => {
    const sse = await openSse(`${fixture.baseUrl}/v1/stream`);
    try {
      const [a] = await fixture.publishMany(1, 'sse.any.a');
      const [b] = await fixture.publishMany(1, 'other');
      await sse.waitFor(2);
      assert.deepEqual(positionsOf(sse.messages), [a, b]);
    } finally {
      sse.abort();
    }
  });
});
