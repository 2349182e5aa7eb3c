// Events are CloudEvents 1.0: the attributes a publish sets, the JSON wire
// format both ways, batches, and publishing an event that came from outside.
import assert from 'node:assert/strict';
import {
  BusbarError,
  type BusbarEvent,
  CLOUDEVENTS_JSON,
  createBus,
  parseBatch,
  parseEvent,
  serializeBatch,
  serializeEvent,
  timeOfEventId,
} from '../src/index.ts';

const bus = createBus({ source: 'https://shop.example/orders' });
const received: BusbarEvent[] = [];
bus.subscribe('archive', 'order.>', (event) => {
  received.push(event);
});

// A publish with every option: each becomes a CloudEvents attribute.
const receipt = await bus.publish(
  'order.created',
  { id: 'o-1', total: 42 },
  {
    subject: 'customer-7', // scope inside the source
    key: 'o-1', // → partitionkey: the ordering key
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    transactionid: 'tx-981',
    ttl: 60_000, // → expirytime, one minute from now
    priority: 2,
    datacontenttype: 'application/json',
    extensions: { tenant: 'acme', region: 'eu' }, // your own attributes
  },
);
const event = receipt.event;
console.log(event);
assert.equal(event.specversion, '1.0');
assert.equal(event.type, 'order.created'); // the topic
assert.equal(event.source, 'https://shop.example/orders'); // from createBus
assert.equal(event.partitionkey, 'o-1');
assert.equal(event.tenant, 'acme');
assert.ok(Object.isFrozen(event));
// Ids are UUIDv7: unique, time-ordered, and they carry their creation time.
assert.ok(Math.abs(timeOfEventId(event.id)! - Date.parse(event.time)) < 1000);

// Structured-mode JSON, and back without loss.
const json = serializeEvent(event);
console.log(CLOUDEVENTS_JSON, json);
assert.deepEqual(parseEvent(json), event);

// Binary data travels as data_base64 and comes back as a Uint8Array.
const blob = await bus.publish('order.attachment', new Uint8Array([0xca, 0xfe]));
const wire = JSON.parse(serializeEvent(blob.event));
assert.equal(wire.data_base64, 'yv4=');
assert.deepEqual(parseEvent(JSON.stringify(wire)).data, new Uint8Array([0xca, 0xfe]));

// A batch is a JSON array of events, kept in order.
const batch = serializeBatch([event, blob.event]);
assert.deepEqual(
  parseBatch(batch).map((each) => each.id),
  [event.id, blob.event.id],
);

// publishEvent takes a CloudEvent made elsewhere (a webhook, another system)
// and keeps its own id and source; without a time it is stamped now.
const incoming = {
  specversion: '1.0',
  id: 'partner-42',
  source: 'urn:partner:acme',
  type: 'order.imported',
  data: { id: 'o-9', total: 7 },
  tenant: 'acme',
};
const imported = await bus.publishEvent(incoming);
assert.equal(imported.id, 'partner-42');
assert.equal(imported.event.source, 'urn:partner:acme');
assert.equal(typeof imported.event.time, 'string');

// Invalid input is refused with a code that says why.
assert.throws(() => parseEvent('{"specversion":"1.0","id":"x","source":"s"}'), {
  code: 'BUSBAR_ERR_INVALID_EVENT', // no type
});
assert.throws(() => parseEvent('{"specversion":"1.0","id":"x","source":"s","type":"a b"}'), {
  code: 'BUSBAR_ERR_INVALID_TOPIC',
});
try {
  parseBatch(`[${json}, {"specversion":"0.3"}]`);
  assert.fail('parseBatch should have thrown');
} catch (error) {
  assert.ok(error instanceof BusbarError);
  console.log(error.code, error.message);
  assert.equal(error.details?.index, 1); // the position of the bad event
}
await assert.rejects(bus.publish('order.created', {}, { extensions: { Tenant: 'x' } }), {
  code: 'BUSBAR_ERR_INVALID_EVENT', // extension names are lower-case letters and digits
});

await bus.idle();
assert.deepEqual(
  received.map((each) => each.type),
  ['order.created', 'order.attachment', 'order.imported'],
);

await bus.close();
