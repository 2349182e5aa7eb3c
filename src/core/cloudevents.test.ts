import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseBatch,
  parseCloudEvent,
  parseEvent,
  serializeBatch,
  serializeEvent,
  toCloudEvent,
} from './cloudevents.ts';
import { BusbarError, type ErrorCode } from './errors.ts';
import { type BusbarEvent, buildEvent } from './event.ts';

function fullEvent(data: unknown = { id: 'o-1', total: 42, lines: [{ sku: 'a', qty: 2 }] }) {
  const built = buildEvent(
    'order.created',
    data,
    {
      id: 'order-1-created',
      source: '/orders',
      subject: 'orders/o-1',
      time: '2024-05-01T10:00:00.123Z',
      datacontenttype: 'application/json',
      dataschema: 'https://example.com/schemas/order.json',
      key: 'customer-7',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      transactionid: 'tx-42',
      expirytime: '2030-01-01T00:00:00Z',
      priority: 3,
      extensions: { tenant: 'acme', attempt: 2, replayed: false },
    },
    'busbar',
  );
  // `sequence` is assigned by a store, never by a publisher.
  return Object.freeze({ ...built, sequence: 17 }) as BusbarEvent;
}

const minimal = { specversion: '1.0', id: 'e-1', source: '/s', type: 'order.created' };

function rejects(parse: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof BusbarError, 'a BusbarError');
    assert.equal(error.code, code);
    assert.equal(error.status, 400);
    assert.match(error.message, message);
    return true;
  });
}

function rejectsObject(input: unknown, code: ErrorCode, message: RegExp): void {
  rejects(() => parseEvent(JSON.stringify(input)), code, message);
}

describe('serializeEvent and parseEvent', () => {
  test('round-trip an event with every attribute and extensions without loss', () => {
    const event = fullEvent();
    const parsed = parseEvent(serializeEvent(event));
    assert.deepEqual(parsed, event);
    assert.ok(Object.isFrozen(parsed));
  });

  test('round-trip an event built with defaults', () => {
    const event = buildEvent('order.created', { id: 'o-1' }, undefined, 'busbar');
    assert.deepEqual(parseEvent(serializeEvent(event)), event);
  });

  test('round-trip null, strings, numbers, arrays and undefined data', () => {
    for (const data of [null, 'text', 0, 3.5, true, [1, 'two', { three: 3 }], undefined]) {
      const event = buildEvent('order.created', data, { time: '2024-05-01T10:00:00Z' }, 'busbar');
      assert.deepEqual(parseEvent(serializeEvent(event)), event, JSON.stringify(data));
    }
  });

  test('round-trip binary data through data_base64', () => {
    const bytes = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
    const event = fullEvent(bytes);
    const json = serializeEvent(event);
    const wire = JSON.parse(json);
    assert.equal(wire.data_base64, 'AAECf4D+/w==');
    assert.equal('data' in wire, false);
    const parsed = parseEvent(json);
    assert.ok(parsed.data instanceof Uint8Array);
    assert.deepEqual(parsed, event);
  });

  test('encodes only the viewed bytes of a Uint8Array that is a slice of a larger buffer', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9, 9]);
    const event = fullEvent(backing.subarray(2, 5));
    assert.equal(JSON.parse(serializeEvent(event)).data_base64, 'AQID');
    assert.deepEqual(parseEvent(serializeEvent(event)).data, new Uint8Array([1, 2, 3]));
  });

  test('round-trip empty binary data', () => {
    const event = fullEvent(new Uint8Array(0));
    assert.deepEqual(parseEvent(serializeEvent(event)).data, new Uint8Array(0));
  });

  test('toCloudEvent leaves an event with JSON data as it is', () => {
    const event = fullEvent();
    assert.equal(toCloudEvent(event), event);
  });
});

describe('serializeBatch and parseBatch', () => {
  test('round-trip a batch of events without loss, in order', () => {
    const events = [
      fullEvent(),
      buildEvent('order.paid', { id: 'o-1', amount: 42 }, { key: 'customer-7' }, 'busbar'),
      fullEvent(new Uint8Array([1, 2, 3])),
      buildEvent('order.shipped', null, undefined, 'busbar'),
    ];
    const parsed = parseBatch(serializeBatch(events));
    assert.deepEqual(parsed, events);
  });

  test('serializes any iterable of events', () => {
    function* generate() {
      yield fullEvent();
      yield fullEvent();
    }
    assert.equal(parseBatch(serializeBatch(generate())).length, 2);
  });

  test('round-trip an empty batch', () => {
    assert.equal(serializeBatch([]), '[]');
    assert.deepEqual(parseBatch('[]'), []);
  });
});

describe('parseCloudEvent', () => {
  test('accepts a minimal event and gives it undefined data and no time', () => {
    const event = parseCloudEvent({ ...minimal });
    assert.deepEqual({ ...event }, { ...minimal, data: undefined });
    assert.equal('time' in event, false);
  });

  test('keeps attributes it does not know as extensions', () => {
    assert.equal(parseCloudEvent({ ...minimal, tenant: 'acme' }).tenant, 'acme');
  });
});

describe('parseEvent with invalid input', () => {
  test('rejects malformed JSON', () => {
    rejects(() => parseEvent('{"specversion":'), 'BUSBAR_ERR_INVALID_EVENT', /malformed JSON/);
    rejects(() => parseEvent(''), 'BUSBAR_ERR_INVALID_EVENT', /malformed JSON/);
  });

  test('rejects JSON that is not an object, naming what it is', () => {
    rejects(
      () => parseEvent('[]'),
      'BUSBAR_ERR_INVALID_EVENT',
      /expected a JSON object, got an array/,
    );
    rejects(
      () => parseEvent('null'),
      'BUSBAR_ERR_INVALID_EVENT',
      /expected a JSON object, got null/,
    );
    rejects(
      () => parseEvent('"x"'),
      'BUSBAR_ERR_INVALID_EVENT',
      /expected a JSON object, got string/,
    );
    rejects(
      () => parseEvent('42'),
      'BUSBAR_ERR_INVALID_EVENT',
      /expected a JSON object, got number/,
    );
  });

  test('rejects a missing or empty id, source or type, naming the attribute', () => {
    for (const name of ['id', 'source', 'type'] as const) {
      const missing: Record<string, unknown> = { ...minimal };
      delete missing[name];
      rejectsObject(missing, 'BUSBAR_ERR_INVALID_EVENT', new RegExp(`"${name}" is required`));
      rejectsObject(
        { ...minimal, [name]: '' },
        'BUSBAR_ERR_INVALID_EVENT',
        new RegExp(`"${name}"`),
      );
      rejectsObject({ ...minimal, [name]: 7 }, 'BUSBAR_ERR_INVALID_EVENT', new RegExp(`"${name}"`));
    }
  });

  test('rejects a specversion other than "1.0", quoting it', () => {
    rejectsObject(
      { ...minimal, specversion: '0.3' },
      'BUSBAR_ERR_INVALID_EVENT',
      /"specversion" must be "1.0", got "0.3"/,
    );
    rejectsObject(
      { ...minimal, specversion: 1 },
      'BUSBAR_ERR_INVALID_EVENT',
      /"specversion".*got 1/,
    );
    const { specversion: _, ...without } = minimal;
    rejectsObject(without, 'BUSBAR_ERR_INVALID_EVENT', /"specversion"/);
  });

  test('rejects a type that is not a valid topic with the invalid-topic code', () => {
    rejectsObject(
      { ...minimal, type: 'order..created' },
      'BUSBAR_ERR_INVALID_TOPIC',
      /token 2 is empty/,
    );
    rejectsObject(
      { ...minimal, type: 'com.example.order created' },
      'BUSBAR_ERR_INVALID_TOPIC',
      /contains " "/,
    );
  });

  test('rejects data and data_base64 together', () => {
    rejectsObject(
      { ...minimal, data: 1, data_base64: 'AQ==' },
      'BUSBAR_ERR_INVALID_EVENT',
      /"data" and "data_base64" are mutually exclusive/,
    );
  });

  test('rejects a data_base64 that is not a string', () => {
    rejectsObject(
      { ...minimal, data_base64: 5 },
      'BUSBAR_ERR_INVALID_EVENT',
      /"data_base64" must be a base64 string/,
    );
  });

  test('rejects a time that is not RFC 3339, naming the attribute', () => {
    rejectsObject({ ...minimal, time: 'yesterday' }, 'BUSBAR_ERR_INVALID_EVENT', /"time"/);
    rejectsObject({ ...minimal, time: 1714557600000 }, 'BUSBAR_ERR_INVALID_EVENT', /"time"/);
  });

  test('rejects an expirytime that is not RFC 3339, naming the attribute', () => {
    rejectsObject({ ...minimal, expirytime: 'soon' }, 'BUSBAR_ERR_INVALID_EVENT', /"expirytime"/);
  });

  test('rejects a priority that is not an integer', () => {
    rejectsObject(
      { ...minimal, priority: 1.5 },
      'BUSBAR_ERR_INVALID_EVENT',
      /"priority" must be an integer/,
    );
    rejectsObject(
      { ...minimal, priority: '1' },
      'BUSBAR_ERR_INVALID_EVENT',
      /"priority" must be an integer/,
    );
  });

  test('rejects a sequence that is not an integer', () => {
    rejectsObject(
      { ...minimal, sequence: 'first' },
      'BUSBAR_ERR_INVALID_EVENT',
      /"sequence" must be an integer/,
    );
  });

  test('rejects subject, datacontenttype or dataschema that are not strings', () => {
    for (const name of ['subject', 'datacontenttype', 'dataschema']) {
      rejectsObject(
        { ...minimal, [name]: 1 },
        'BUSBAR_ERR_INVALID_EVENT',
        new RegExp(`"${name}" must be a string`),
      );
    }
  });

  test('rejects an extension with an invalid name or a non-scalar value', () => {
    rejectsObject({ ...minimal, Tenant: 'acme' }, 'BUSBAR_ERR_INVALID_EVENT', /"Tenant"/);
    rejectsObject({ ...minimal, tenant: { name: 'acme' } }, 'BUSBAR_ERR_INVALID_EVENT', /"tenant"/);
  });
});

describe('parseBatch with invalid input', () => {
  test('rejects malformed JSON', () => {
    rejects(() => parseBatch('[{'), 'BUSBAR_ERR_INVALID_EVENT', /malformed JSON/);
  });

  test('rejects a batch that is not an array', () => {
    rejects(
      () => parseBatch(JSON.stringify(minimal)),
      'BUSBAR_ERR_INVALID_EVENT',
      /a batch must be a JSON array/,
    );
  });

  test('names the index of the bad event', () => {
    const batch = [minimal, { ...minimal, id: 'e-2' }, { ...minimal, id: '' }, minimal];
    assert.throws(
      () => parseBatch(JSON.stringify(batch)),
      (error: unknown) => {
        assert.ok(error instanceof BusbarError);
        assert.equal(error.code, 'BUSBAR_ERR_INVALID_EVENT');
        assert.match(error.message, /^event 2: /);
        assert.match(error.message, /"id" is required/);
        assert.equal(error.details?.index, 2);
        assert.ok(error.cause instanceof BusbarError);
        return true;
      },
    );
  });

  test('keeps the code of the underlying error along with the index', () => {
    const batch = [minimal, minimal, { ...minimal, type: 'a..b' }];
    assert.throws(
      () => parseBatch(JSON.stringify(batch)),
      (error: unknown) => {
        assert.ok(error instanceof BusbarError);
        assert.equal(error.code, 'BUSBAR_ERR_INVALID_TOPIC');
        assert.match(error.message, /^event 2: /);
        assert.equal(error.details?.index, 2);
        assert.equal(error.details?.topic, 'a..b');
        return true;
      },
    );
  });
});
