import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BusbarError, type ErrorCode } from './errors.ts';
import { buildEvent, type EventOptions, expiryOf, nowRfc3339 } from './event.ts';
import { timeOfEventId } from './event-id.ts';

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function build(options: EventOptions | undefined, data: unknown = { id: 'o-1' }) {
  return buildEvent('order.created', data, options, 'test-source');
}

function rejects(options: unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(
    () => build(options as EventOptions),
    (error: unknown) => {
      assert.ok(error instanceof BusbarError, 'a BusbarError');
      assert.equal(error.code, code);
      assert.equal(error.status, 400);
      assert.match(error.message, message);
      return true;
    },
  );
}

describe('buildEvent without options', () => {
  test('fills in the CloudEvents 1.0 required attributes and the data', () => {
    const before = Date.now();
    const event = build(undefined);
    const after = Date.now();
    assert.deepEqual(Object.keys(event).sort(), [
      'data',
      'id',
      'source',
      'specversion',
      'time',
      'type',
    ]);
    assert.equal(event.specversion, '1.0');
    assert.equal(event.type, 'order.created');
    assert.equal(event.source, 'test-source');
    assert.deepEqual(event.data, { id: 'o-1' });
    const idTime = timeOfEventId(event.id);
    assert.ok(idTime !== undefined, `${event.id} is a UUIDv7`);
    assert.match(event.time, RFC3339_UTC);
    const time = Date.parse(event.time);
    assert.ok(time >= before && time <= after, `${event.time} is now`);
  });

  test('returns a frozen event', () => {
    const event = build(undefined);
    assert.ok(Object.isFrozen(event));
    assert.throws(() => {
      (event as { source: string }).source = 'changed';
    }, TypeError);
  });

  test('gives every event a new id', () => {
    assert.notEqual(build(undefined).id, build(undefined).id);
  });

  test('keeps data as given, including undefined and null', () => {
    const empty = buildEvent('order.created', undefined, undefined, 'test-source');
    assert.equal(empty.data, undefined);
    assert.ok('data' in empty);
    assert.equal(buildEvent('order.created', null, {}, 'test-source').data, null);
    assert.equal(build(undefined, 'text').data, 'text');
  });
});

describe('buildEvent with options', () => {
  test('an empty options object gives the same defaults as none', () => {
    const event = build({});
    assert.deepEqual(Object.keys(event).sort(), [
      'data',
      'id',
      'source',
      'specversion',
      'time',
      'type',
    ]);
    assert.equal(event.source, 'test-source');
    assert.ok(timeOfEventId(event.id) !== undefined);
    assert.match(event.time, RFC3339_UTC);
    assert.ok(Object.isFrozen(event));
  });

  test('uses the id and source given', () => {
    const event = build({ id: 'order-1-created', source: '/orders' });
    assert.equal(event.id, 'order-1-created');
    assert.equal(event.source, '/orders');
  });

  test('keeps a time string as given', () => {
    assert.equal(build({ time: '2024-05-01T12:00:00+02:00' }).time, '2024-05-01T12:00:00+02:00');
    assert.equal(
      build({ time: '2024-05-01T10:00:00.123456Z' }).time,
      '2024-05-01T10:00:00.123456Z',
    );
  });

  test('formats a Date time as RFC 3339 in UTC', () => {
    const event = build({ time: new Date(Date.UTC(2024, 4, 1, 10, 0, 0, 5)) });
    assert.equal(event.time, '2024-05-01T10:00:00.005Z');
  });

  test('refuses an empty time, also right after a valid time was accepted', () => {
    assert.throws(() => build({ time: '' }), { code: 'BUSBAR_ERR_INVALID_ARGUMENT' });
    build({ time: '2024-05-01T10:00:00Z' });
    assert.throws(() => build({ time: '' }), { code: 'BUSBAR_ERR_INVALID_ARGUMENT' });
    assert.throws(() => build({ time: '2024-05-01T10:00:00Z ' }), { code: 'BUSBAR_ERR_INVALID_ARGUMENT' });
  });

  test('maps key to the partitionkey attribute', () => {
    const event = build({ key: 'customer-7' });
    assert.equal(event.partitionkey, 'customer-7');
    assert.equal('key' in event, false);
  });

  test('maps ttl to an expirytime that many milliseconds from now', () => {
    const before = Date.now();
    const event = build({ ttl: 60_000 });
    const after = Date.now();
    assert.equal(typeof event.expirytime, 'string');
    assert.match(event.expirytime!, RFC3339_UTC);
    const expiry = Date.parse(event.expirytime!);
    assert.ok(expiry >= before + 60_000 && expiry <= after + 60_000);
    assert.equal(expiryOf(event), expiry);
    assert.equal('ttl' in event, false);
  });

  test('accepts a ttl of 0', () => {
    const before = Date.now();
    const expiry = Date.parse(build({ ttl: 0 }).expirytime!);
    assert.ok(expiry >= before && expiry <= Date.now());
  });

  test('takes an expirytime as a string or a Date', () => {
    assert.equal(build({ expirytime: '2030-01-01T00:00:00Z' }).expirytime, '2030-01-01T00:00:00Z');
    assert.equal(
      build({ expirytime: new Date(Date.UTC(2030, 0, 1)) }).expirytime,
      '2030-01-01T00:00:00.000Z',
    );
  });

  test('maps priority, including zero and negative integers', () => {
    assert.equal(build({ priority: 5 }).priority, 5);
    assert.equal(build({ priority: 0 }).priority, 0);
    assert.equal(build({ priority: -3 }).priority, -3);
  });

  test('maps traceparent, transactionid and subject to their attributes', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const event = build({ traceparent, transactionid: 'tx-42', subject: 'orders/o-1' });
    assert.equal(event.traceparent, traceparent);
    assert.equal(event.transactionid, 'tx-42');
    assert.equal(event.subject, 'orders/o-1');
  });

  test('maps datacontenttype and dataschema to their attributes', () => {
    const event = build({
      datacontenttype: 'application/json',
      dataschema: 'https://example.com/order.json',
    });
    assert.equal(event.datacontenttype, 'application/json');
    assert.equal(event.dataschema, 'https://example.com/order.json');
  });

  test('copies extensions as top-level attributes', () => {
    const event = build({ extensions: { tenant: 'acme', region2: 'eu', retries: 3, vip: true } });
    assert.equal(event.tenant, 'acme');
    assert.equal(event.region2, 'eu');
    assert.equal(event.retries, 3);
    assert.equal(event.vip, true);
    assert.equal('extensions' in event, false);
  });

  test('leaves out extensions whose value is null or undefined', () => {
    const event = build({ extensions: { tenant: undefined, region: null } as never });
    assert.equal('tenant' in event, false);
    assert.equal('region' in event, false);
  });

  test('maps every option at once and freezes the result', () => {
    const event = build({
      id: 'e-1',
      source: '/orders',
      subject: 's',
      time: '2024-01-02T03:04:05Z',
      key: 'k',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      transactionid: 't',
      expirytime: '2030-01-01T00:00:00Z',
      priority: 2,
      datacontenttype: 'application/json',
      dataschema: 'urn:order',
      extensions: { tenant: 'acme' },
    });
    assert.deepEqual(
      { ...event },
      {
        specversion: '1.0',
        id: 'e-1',
        type: 'order.created',
        source: '/orders',
        time: '2024-01-02T03:04:05Z',
        subject: 's',
        datacontenttype: 'application/json',
        dataschema: 'urn:order',
        data: { id: 'o-1' },
        partitionkey: 'k',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        transactionid: 't',
        expirytime: '2030-01-01T00:00:00Z',
        priority: 2,
        tenant: 'acme',
      },
    );
    assert.ok(Object.isFrozen(event));
  });
});

describe('buildEvent with invalid options', () => {
  test('rejects a priority that is not an integer', () => {
    rejects(
      { priority: 1.5 },
      'BUSBAR_ERR_INVALID_ARGUMENT',
      /option "priority" must be an integer/,
    );
    rejects({ priority: Number.NaN }, 'BUSBAR_ERR_INVALID_ARGUMENT', /"priority"/);
    rejects({ priority: Number.POSITIVE_INFINITY }, 'BUSBAR_ERR_INVALID_ARGUMENT', /"priority"/);
    rejects({ priority: '1' }, 'BUSBAR_ERR_INVALID_ARGUMENT', /"priority".*got "1"/);
  });

  test('rejects a negative or non-finite ttl', () => {
    rejects({ ttl: -1 }, 'BUSBAR_ERR_INVALID_ARGUMENT', /option "ttl" must be a finite number/);
    rejects({ ttl: Number.NaN }, 'BUSBAR_ERR_INVALID_ARGUMENT', /"ttl"/);
    rejects({ ttl: Number.POSITIVE_INFINITY }, 'BUSBAR_ERR_INVALID_ARGUMENT', /"ttl"/);
    rejects({ ttl: '1000' }, 'BUSBAR_ERR_INVALID_ARGUMENT', /"ttl"/);
  });

  test('rejects a time string that is not RFC 3339', () => {
    for (const time of [
      'yesterday',
      '2024-01-01',
      '2024-01-01T00:00:00',
      '01/02/2024 10:00',
      '2024-13-01T00:00:00Z',
      '2024-01-01T25:00:00Z',
      '',
    ]) {
      rejects(
        { time },
        'BUSBAR_ERR_INVALID_ARGUMENT',
        /option "time" must be an RFC 3339 timestamp/,
      );
    }
  });

  test('rejects a time on a day the month does not have', () => {
    rejects(
      { time: '2024-02-30T00:00:00Z' },
      'BUSBAR_ERR_INVALID_ARGUMENT',
      /option "time" must be an RFC 3339 timestamp/,
    );
  });

  test('rejects an invalid Date as time', () => {
    rejects(
      { time: new Date(Number.NaN) },
      'BUSBAR_ERR_INVALID_ARGUMENT',
      /"time" must be a valid Date/,
    );
  });

  test('rejects a bad expirytime', () => {
    rejects({ expirytime: 'tomorrow' }, 'BUSBAR_ERR_INVALID_ARGUMENT', /option "expirytime"/);
  });

  test('rejects empty or non-string id, source, subject and key', () => {
    rejects({ id: '' }, 'BUSBAR_ERR_INVALID_ARGUMENT', /option "id" must be a non-empty string/);
    rejects({ id: 7 }, 'BUSBAR_ERR_INVALID_ARGUMENT', /option "id".*got number/);
    rejects({ source: '' }, 'BUSBAR_ERR_INVALID_ARGUMENT', /option "source"/);
    rejects({ subject: '' }, 'BUSBAR_ERR_INVALID_ARGUMENT', /option "subject"/);
    rejects({ key: '' }, 'BUSBAR_ERR_INVALID_ARGUMENT', /option "key"/);
    rejects({ traceparent: 1 }, 'BUSBAR_ERR_INVALID_ARGUMENT', /option "traceparent"/);
  });

  test('rejects extension names that are not 1-20 lower-case letters or digits', () => {
    for (const name of [
      'Has-Caps',
      'Upper',
      'with_underscore',
      'dash-ed',
      '',
      'a'.repeat(21),
      'é',
    ]) {
      rejects(
        { extensions: { [name]: 'x' } },
        'BUSBAR_ERR_INVALID_EVENT',
        new RegExp(`invalid extension attribute name "${name}"`),
      );
    }
  });

  test('rejects extension names that are core CloudEvents attributes', () => {
    for (const name of ['data', 'id', 'type', 'source', 'specversion', 'time', 'subject']) {
      rejects(
        { extensions: { [name]: 'x' } },
        'BUSBAR_ERR_INVALID_EVENT',
        new RegExp(`"${name}".*not a core attribute`),
      );
    }
  });

  test('rejects extension values that are not strings, numbers or booleans', () => {
    for (const [value, type] of [
      [{ a: 1 }, 'object'],
      [[1, 2], 'object'],
      [() => 1, 'function'],
      [10n, 'bigint'],
      [new Date(), 'object'],
    ] as const) {
      rejects(
        { extensions: { tenant: value } },
        'BUSBAR_ERR_INVALID_EVENT',
        new RegExp(`extension attribute "tenant" must be a string, number or boolean, got ${type}`),
      );
    }
  });

  test('does not let an extension set a priority that is not an integer', () => {
    assert.throws(
      () => build({ extensions: { priority: 'high' } }),
      (error: unknown) =>
        error instanceof BusbarError &&
        (error.code === 'BUSBAR_ERR_INVALID_EVENT' || error.code === 'BUSBAR_ERR_INVALID_ARGUMENT'),
    );
  });

  test('does not let an extension set an expirytime that is not RFC 3339', () => {
    assert.throws(
      () => build({ extensions: { expirytime: 'soon' } }),
      (error: unknown) =>
        error instanceof BusbarError &&
        (error.code === 'BUSBAR_ERR_INVALID_EVENT' || error.code === 'BUSBAR_ERR_INVALID_ARGUMENT'),
    );
  });

  test('names the bad option in the error details', () => {
    assert.throws(
      () => build({ ttl: -5 }),
      (error: unknown) => {
        assert.ok(error instanceof BusbarError);
        assert.deepEqual(error.details, { option: 'ttl' });
        return true;
      },
    );
  });
});

describe('nowRfc3339', () => {
  test('returns the current time as RFC 3339 in UTC', () => {
    const before = Date.now();
    const now = nowRfc3339();
    assert.match(now, RFC3339_UTC);
    const time = Date.parse(now);
    assert.ok(time >= before && time <= Date.now());
  });
});

describe('expiryOf', () => {
  test('returns 0 for an event that never expires', () => {
    assert.equal(expiryOf(build(undefined)), 0);
  });

  test('returns the expiry instant in epoch milliseconds', () => {
    assert.equal(expiryOf(build({ expirytime: '2030-01-01T00:00:00Z' })), Date.UTC(2030, 0, 1));
  });
});
