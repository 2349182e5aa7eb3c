/**
 * The `cloudevents` npm SDK as an outside client of `busbar serve`: its own
 * emitter and HTTP transport publish in binary and structured mode, a batch
 * goes out in the CloudEvents JSON batch format (the SDK can read batches
 * but has no batch serializer, so the array is built from its CloudEvent
 * objects), and the SDK's parser reads back every event Busbar serves — by
 * id, in pages of the log and as Server-Sent Events — equal to what was sent,
 * with the log position as the only addition (`sequence`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloudEvent, CONSTANTS, emitterFor, HTTP, httpTransport, Mode } from 'cloudevents';
import { openSse } from '../../src/server/streaming/streaming-clients.fixture.ts';
import { type BusbarProcess, scratchDirectory, startBusbar } from './busbar-process.fixture.ts';

const BYTES = Uint8Array.from([0, 1, 2, 127, 128, 254, 255, 10, 13, 0x22, 0x5c]);
const TIME = '2025-03-04T05:06:07.089Z';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/**
 * Events in binary mode. Every value travels as a header string, so the
 * receiver cannot know an unknown extension was a number: extensions are
 * strings here, but for `priority`, which Busbar knows to be an integer.
 */
const binaryEvents: CloudEvent<unknown>[] = [
  new CloudEvent({
    id: 'sdk-binary-json',
    source: 'https://shop.example/orders',
    type: 'sdk.order.created',
    time: TIME,
    subject: 'o-1',
    dataschema: 'https://shop.example/schemas/order.json',
    datacontenttype: 'application/json',
    data: { id: 'o-1', lines: [{ sku: 'a', qty: 2 }], total: 12.5, gift: false, note: null },
    partitionkey: 'o-1',
    traceparent: TRACEPARENT,
    transactionid: 'tx-42',
    priority: 5,
    tenant: 'acme',
  }),
  new CloudEvent({ id: 'sdk-binary-text', source: 'urn:sdk:printer', type: 'sdk.label.printed', time: TIME, datacontenttype: 'text/plain', data: 'label 7 printed' }),
  new CloudEvent({ id: 'sdk-binary-bytes', source: 'urn:sdk:scanner', type: 'sdk.document.scanned', time: TIME, datacontenttype: 'application/octet-stream', data: BYTES }),
];

/** Events in structured mode: JSON keeps the types of extension values. */
const structuredEvents: CloudEvent<unknown>[] = [
  new CloudEvent({
    id: 'sdk-structured-json',
    source: '/shop/orders',
    type: 'sdk.order.paid',
    time: TIME,
    subject: 'café ☕ 1',
    datacontenttype: 'application/json',
    data: { id: 'o-1', amounts: [1, 2.5, -3], unicode: 'ünïcødé ✓', deep: { a: { b: { c: [true, null] } } } },
    partitionkey: 'o-1',
    priority: 2,
    expirytime: '2099-01-01T00:00:00.000Z',
    tenant: 'acme',
    attempt: 3,
    replayed: true,
  }),
  new CloudEvent({ id: 'sdk-structured-text', source: 'urn:sdk:notes', type: 'sdk.note.added', time: TIME, datacontenttype: 'text/plain', data: 'line 1\nline 2\n\ttabbed "quoted"' }),
  new CloudEvent({ id: 'sdk-structured-bytes', source: 'urn:sdk:scanner', type: 'sdk.document.scanned', time: TIME, datacontenttype: 'image/png', data: BYTES }),
];

const batchEvents: CloudEvent<unknown>[] = [
  new CloudEvent({ id: 'sdk-batch-1', source: 'urn:sdk:batch', type: 'sdk.batch.item', time: TIME, datacontenttype: 'application/json', data: { n: 1 }, tenant: 'acme' }),
  new CloudEvent({ id: 'sdk-batch-2', source: 'urn:sdk:batch', type: 'sdk.batch.item', time: TIME, datacontenttype: 'text/plain', data: 'two', subject: 'second' }),
  new CloudEvent({ id: 'sdk-batch-3', source: 'urn:sdk:batch', type: 'sdk.batch.item', time: TIME, datacontenttype: 'application/octet-stream', data: BYTES }),
];

const allEvents = [...binaryEvents, ...structuredEvents, ...batchEvents];

/** An SDK event as plain JSON, the way the SDK itself serialises it (binary data as data_base64 only). */
const plain = (event: CloudEvent<unknown>): Record<string, unknown> => JSON.parse(JSON.stringify(event)) as Record<string, unknown>;

/** Parses one event of Busbar's with the SDK's structured-mode parser. */
function parse(json: string): CloudEvent<unknown> {
  return HTTP.toEvent({ headers: { 'content-type': CONSTANTS.DEFAULT_CE_CONTENT_TYPE }, body: json }) as CloudEvent<unknown>;
}

/** The parsed event equals the sent one; Busbar added its log position as `sequence` and nothing else. */
function assertRoundTrip(parsed: CloudEvent<unknown>, position: number): void {
  const sent = allEvents.find((event) => event.id === parsed.id);
  assert.ok(sent, `an event Busbar served was never sent: ${parsed.id}`);
  assert.deepEqual(plain(parsed), { ...plain(sent), sequence: position });
  if (sent.data instanceof Uint8Array) {
    // The SDK parses data_base64 into a Uint32Array of byte values; the bytes are what matter.
    assert.ok(parsed.data instanceof Uint8Array || parsed.data instanceof Uint32Array, `${parsed.id}: binary data`);
    assert.deepEqual([...Buffer.from(parsed.data as Uint8Array)], [...BYTES]);
  } else {
    assert.deepEqual(parsed.data, sent.data);
  }
}

describe('the cloudevents SDK against busbar serve', () => {
  const scratch = scratchDirectory('cloudevents');
  let server: BusbarProcess;
  /** Event id → the position Busbar answered. */
  const positions = new Map<string, number>();

  before(async () => {
    server = await startBusbar({ data: scratch.file('busbar.db') });
  });
  after(async () => {
    await server?.stop('SIGKILL');
    scratch.remove();
  });

  it('accepts what the SDK emits in binary mode, over its own HTTP transport', async () => {
    const emit = emitterFor(httpTransport(`${server.url}/v1/events`), { mode: Mode.BINARY });
    for (const event of binaryEvents) {
      // The SDK's transport hands back the body only; a 201 is the only answer shaped { id, position }.
      const answer = JSON.parse(((await emit(event)) as { body: string }).body) as { id: string; position: number };
      assert.equal(answer.id, event.id, JSON.stringify(answer));
      assert.ok(Number.isInteger(answer.position) && answer.position > 0, JSON.stringify(answer));
      positions.set(answer.id, answer.position);
    }
  });

  it('accepts what the SDK emits in structured mode, over its own HTTP transport', async () => {
    const emit = emitterFor(httpTransport(`${server.url}/v1/events`), { mode: Mode.STRUCTURED });
    for (const event of structuredEvents) {
      const answer = JSON.parse(((await emit(event)) as { body: string }).body) as { id: string; position: number };
      assert.equal(answer.id, event.id, JSON.stringify(answer));
      positions.set(answer.id, answer.position);
    }
  });

  it('accepts a CloudEvents JSON batch of SDK events, at consecutive positions', async () => {
    const response = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': CONSTANTS.MIME_CE_BATCH },
      body: JSON.stringify(batchEvents),
    });
    assert.equal(response.status, 201);
    const { events } = (await response.json()) as { events: { id: string; position: number }[] };
    assert.deepEqual(
      events.map((each) => each.id),
      batchEvents.map((event) => event.id),
    );
    assert.deepEqual(
      events.map((each) => each.position),
      events.map((_, n) => events[0]!.position + n),
    );
    for (const each of events) positions.set(each.id, each.position);
    assert.equal(positions.size, allEvents.length, 'every event of the three modes was accepted');
  });

  it('serves each event by id in a form the SDK parses back equal, data of every kind included', async () => {
    for (const event of allEvents) {
      const response = await fetch(`${server.url}/v1/events/${encodeURIComponent(event.id)}`);
      assert.equal(response.status, 200);
      assertRoundTrip(parse(await response.text()), positions.get(event.id)!);
    }
  });

  it('serves pages of the log whose events the SDK parses back equal, in position order', async () => {
    const seen: number[] = [];
    let after = 0;
    for (;;) {
      const response = await fetch(`${server.url}/v1/events?after=${after}&limit=4&topics=sdk.>`);
      assert.equal(response.status, 200);
      const page = (await response.json()) as { events: unknown[]; last: number; head: number };
      for (const json of page.events) {
        const parsed = parse(JSON.stringify(json));
        assertRoundTrip(parsed, parsed.sequence as number);
        seen.push(parsed.sequence as number);
      }
      if (page.last >= page.head) break;
      after = page.last;
    }
    assert.deepEqual(seen, [...positions.values()].sort((a, b) => a - b));
  });

  it('streams Server-Sent Events whose data lines the SDK parses back equal, ids and event names matching', async () => {
    const stream = await openSse(`${server.url}/v1/stream?topics=sdk.>&from=beginning`);
    try {
      assert.equal(stream.status, 200);
      await stream.waitFor(allEvents.length);
      for (const message of stream.messages) {
        const parsed = parse(message.data);
        assertRoundTrip(parsed, Number(message.id));
        assert.equal(message.event, parsed.type);
      }
      assert.deepEqual(
        stream.messages.map((message) => Number(message.id)),
        [...positions.values()].sort((a, b) => a - b),
      );
    } finally {
      stream.abort();
    }
  });
});
