import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type Frame, openWs } from './streaming-clients.fixture.ts';
import { startStreamingFixture, type StreamingFixture } from './test-context.fixture.ts';

const positionsOf = (frames: Frame[]): number[] => frames.map((frame) => frame.position);

describe('GET /v1/ws (WebSocket protocol)', () => {
  let fixture: StreamingFixture;
  before(async () => {
    fixture = await startStreamingFixture({ limits: { heartbeatMs: 150 } });
  });
  after(() => fixture.close());

  it('subscribes from the beginning, the end, a position and after a position', async () => {
    const old = await fixture.publishMany(3, 'ws.start.old');
    const client = await openWs(fixture.wsUrl);
    try {
      client.send({ op: 'subscribe', id: 'all', topics: ['ws.start.*'], from: 'beginning' });
      client.send({ op: 'subscribe', id: 'new', topics: ['ws.start.*'], from: 'end' });
      client.send({ op: 'subscribe', id: 'at', topics: ['ws.start.*'], from: old[1] });
      client.send({ op: 'subscribe', id: 'after', topics: ['ws.start.*'], from: { after: old[1] } });
      const subscribed = await Promise.all(
        ['all', 'new', 'at', 'after'].map((id) => client.next((f) => f.op === 'subscribed' && f.id === id)),
      );
      assert.deepEqual(
        subscribed.map((frame) => frame.position),
        [0, old[2], old[0], old[1]],
        'each subscription says the position its events come after',
      );
      const fresh = await fixture.publishMany(2, 'ws.start.new');
      assert.deepEqual(positionsOf(await client.waitForEvents('all', 5)), [...old, ...fresh]);
      assert.deepEqual(positionsOf(await client.waitForEvents('new', 2)), fresh);
      assert.deepEqual(positionsOf(await client.waitForEvents('at', 4)), [...old.slice(1), ...fresh]);
      assert.deepEqual(positionsOf(await client.waitForEvents('after', 3)), [old[2], ...fresh]);
      const event = client.events('all')[0]!;
      assert.equal(event.event.type, 'ws.start.old');
      assert.equal(event.event.sequence, old[0]);
      assert.deepEqual(event.event.data, { n: 1 });
      const firstEventIndex = client.frames.findIndex((frame) => frame.op === 'event' && frame.sub === 'all');
      const subscribedIndex = client.frames.findIndex((frame) => frame.op === 'subscribed' && frame.id === 'all');
      assert.ok(subscribedIndex < firstEventIndex, '"subscribed" comes before the first event');
    } finally {
      await client.close();
    }
  });

  it('acknowledges a publish with the id and log position of each event, and delivers it', async () => {
    const client = await openWs(fixture.wsUrl);
    try {
      client.send({ op: 'subscribe', id: 's', topics: ['ws.publish.>'] });
      await client.next((f) => f.op === 'subscribed');
      client.send({ op: 'publish', ref: 'one', event: { type: 'ws.publish.single', data: { a: 1 } } });
      const single = await client.next((f) => f.op === 'ack' && f.ref === 'one');
      client.send({
        op: 'publish',
        ref: 'batch',
        events: [
          { specversion: '1.0', id: 'ws-batch-1', source: 'test', type: 'ws.publish.batch', data: 1 },
          { type: 'ws.publish.batch', data: 2 },
        ],
      });
      const batch = await client.next((f) => f.op === 'ack' && f.ref === 'batch');
      assert.equal(single.events.length, 1);
      assert.equal(batch.events.length, 2);
      assert.equal(batch.events[0].id, 'ws-batch-1');
      const acked = [...single.events, ...batch.events];
      for (const { id, position } of acked) {
        const logged = await fixture.store.getEvent(id);
        assert.equal(logged?.position, position, 'the ack carries the logged position');
      }
      const delivered = await client.waitForEvents('s', 3);
      assert.deepEqual(
        delivered.map((frame) => [frame.event.id, frame.position]),
        acked.map(({ id, position }) => [id, position]),
      );
    } finally {
      await client.close();
    }
  });

  it('acknowledges every publish of a burst larger than the bound on publishes in flight', async () => {
    const client = await openWs(fixture.wsUrl);
    try {
      for (let n = 0; n < 300; n++) client.send({ op: 'publish', ref: `b${n}`, event: { type: 'ws.burst', data: n } });
      await client.next((f) => f.op === 'ack' && f.ref === 'b299', 20_000);
      const acks = client.frames.filter((frame) => frame.op === 'ack');
      assert.equal(acks.length, 300);
      assert.deepEqual(new Set(acks.map((ack) => ack.ref)).size, 300);
      const logged = (await fixture.store.readAll({ topics: ['ws.burst'], limit: 1000 })).events;
      assert.deepEqual(logged.map((e) => e.event.data), Array.from({ length: 300 }, (_, n) => n), 'in the order sent');
    } finally {
      await client.close();
    }
  });

  it('stops sending events of a subscription once it is unsubscribed', async () => {
    const client = await openWs(fixture.wsUrl);
    try {
      client.send({ op: 'subscribe', id: 'gone', topics: ['ws.unsub'] });
      client.send({ op: 'subscribe', id: 'stays', topics: ['ws.unsub'] });
      await client.next((f) => f.op === 'subscribed' && f.id === 'stays');
      const [first] = await fixture.publishMany(1, 'ws.unsub');
      await client.waitForEvents('gone', 1);
      client.send({ op: 'unsubscribe', id: 'gone' });
      await client.next((f) => f.op === 'unsubscribed' && f.id === 'gone');
      const later = await fixture.publishMany(3, 'ws.unsub');
      assert.deepEqual(positionsOf(await client.waitForEvents('stays', 4)), [first, ...later]);
      assert.deepEqual(positionsOf(client.events('gone')), [first]);
    } finally {
      await client.close();
    }
  });

  it('serves several subscriptions on one socket, each event frame naming its subscription', async () => {
    const client = await openWs(fixture.wsUrl);
    try {
      client.send({ op: 'subscribe', id: 'orders', topics: ['ws.multi.order.*'] });
      client.send({ op: 'subscribe', id: 'everything', topics: ['ws.multi.>'] });
      await client.next((f) => f.op === 'subscribed' && f.id === 'everything');
      const [order] = await fixture.publishMany(1, 'ws.multi.order.paid');
      const [user] = await fixture.publishMany(1, 'ws.multi.user.joined');
      assert.deepEqual(positionsOf(await client.waitForEvents('everything', 2)), [order, user]);
      assert.deepEqual(positionsOf(client.events('orders')), [order]);
    } finally {
      await client.close();
    }
  });

  it('filters by subject, so one socket can follow one scope such as a library', async () => {
    const client = await openWs(fixture.wsUrl);
    const scoped = await openWs(`${fixture.wsUrl}?topics=ws.scope.*&subject=library-7`);
    try {
      client.send({ op: 'subscribe', id: 'lib', topics: ['ws.scope.*'], subject: 'library-7' });
      await client.next((f) => f.op === 'subscribed');
      await scoped.next((f) => f.op === 'subscribed' && f.id === 'default');
      await fixture.publishMany(1, 'ws.scope.added', { subject: 'library-8' });
      const [mine] = await fixture.publishMany(1, 'ws.scope.added', { subject: 'library-7' });
      await fixture.publishMany(1, 'ws.scope.added');
      const [also] = await fixture.publishMany(1, 'ws.scope.removed', { subject: 'library-7' });
      assert.deepEqual(positionsOf(await client.waitForEvents('lib', 2)), [mine, also]);
      assert.deepEqual(positionsOf(await scoped.waitForEvents('default', 2)), [mine, also]);
    } finally {
      await client.close();
      await scoped.close();
    }
  });

  it('resumes on a new socket after the last position received, with no gap and no duplicate', async () => {
    const topic = 'ws.resume.tick';
    const first = await openWs(fixture.wsUrl);
    first.send({ op: 'subscribe', id: 's', topics: [topic], from: 'beginning' });
    const publishing = (async () => {
      for (let n = 0; n < 30; n++) {
        await fixture.publishMany(10, topic, {}, n * 10 + 1);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    await first.waitForEvents('s', 40);
    first.socket.terminate(); // a dropped connection, mid-stream
    await first.closed;
    const received = first.events('s');
    const second = await openWs(fixture.wsUrl);
    try {
      second.send({ op: 'subscribe', id: 's', topics: [topic], from: { after: received.at(-1)!.position } });
      await publishing;
      const log = (await fixture.store.readAll({ topics: [topic], limit: 10_000 })).events.map((e) => e.position);
      assert.equal(log.length, 300);
      await second.waitForEvents('s', log.length - received.length);
      assert.deepEqual(positionsOf([...received, ...second.events('s')]), log);
    } finally {
      await second.close();
    }
  });

  it('answers ping with pong, echoing the ref', async () => {
    const client = await openWs(fixture.wsUrl);
    try {
      client.send({ op: 'ping', ref: 'p1' });
      assert.deepEqual(await client.next((f) => f.op === 'pong'), { op: 'pong', ref: 'p1' });
      client.send({ op: 'ping' });
      assert.deepEqual(await client.next((f) => f.op === 'pong'), { op: 'pong' });
    } finally {
      await client.close();
    }
  });

  it('pings every heartbeat and drops a client that stops answering, keeping one that answers', async () => {
    const healthy = await openWs(fixture.wsUrl);
    const silent = new WebSocket(fixture.wsUrl, { autoPong: false });
    let pings = 0;
    silent.on('ping', () => pings++);
    const silentClosed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
    await new Promise((resolve) => silent.once('open', resolve));
    const code = await silentClosed;
    assert.ok(pings >= 1, 'the server pinged');
    assert.equal(code, 1006, 'dropped without a close frame');
    assert.equal(healthy.socket.readyState, WebSocket.OPEN);
    await healthy.close();
  });
});
