import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { createEventId, timeOfEventId } from './event-id.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('createEventId', () => {
  test('returns a lower-case UUID in the 8-4-4-4-12 layout', () => {
    assert.match(createEventId(), UUID);
  });

  test('sets the version nibble to 7', () => {
    for (let i = 0; i < 1000; i++) assert.equal(createEventId()[14], '7');
  });

  test('sets the RFC 9562 variant bits (10xx) in the first nibble of the fourth group', () => {
    for (let i = 0; i < 1000; i++) {
      const nibble = Number.parseInt(createEventId()[19]!, 16);
      assert.equal(nibble >> 2, 0b10, `nibble ${nibble.toString(2)}`);
    }
  });

  test('encodes the current Unix time in milliseconds in its first 48 bits', () => {
    const before = Date.now();
    const id = createEventId();
    const after = Date.now();
    const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    assert.ok(ms >= before && ms <= after, `${ms} not in [${before}, ${after}]`);
  });

  test('100,000 ids are unique and strictly increasing as strings in creation order', () => {
    const ids = Array.from({ length: 100_000 }, () => createEventId());
    assert.equal(new Set(ids).size, ids.length);
    for (let i = 1; i < ids.length; i++) {
      assert.ok(ids[i - 1]! < ids[i]!, `id ${i} ${ids[i]} is not after ${ids[i - 1]}`);
    }
    for (const id of [ids[0]!, ids[50_000]!, ids[99_999]!]) assert.match(id, UUID);
  });

  test('ids stay increasing when given a clock reading older than the last one', () => {
    const first = createEventId();
    const second = createEventId(Date.now() - 60_000);
    const third = createEventId(0);
    assert.ok(first < second && second < third, `${first} ${second} ${third}`);
  });

  test('ids stay increasing across millisecond boundaries', async () => {
    const ids: string[] = [];
    for (let round = 0; round < 5; round++) {
      ids.push(createEventId(), createEventId());
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!);
  });
});

describe('timeOfEventId', () => {
  test('returns the creation time, within a few milliseconds of Date.now()', () => {
    const before = Date.now();
    const time = timeOfEventId(createEventId());
    const after = Date.now();
    assert.equal(typeof time, 'number');
    assert.ok(time! >= before && time! <= after, `${time} not in [${before}, ${after}]`);
  });

  test('reads the timestamp of any well-formed UUIDv7, upper case included', () => {
    // RFC 9562 appendix A.6 example: 2022-02-22T19:22:22.000Z.
    assert.equal(timeOfEventId('017F22E2-79B0-7CC3-98C4-DC0C0C07398F'), 1645557742000);
    assert.equal(timeOfEventId('017f22e2-79b0-7cc3-98c4-dc0c0c07398f'), 1645557742000);
  });

  test('returns undefined for a UUIDv4', () => {
    assert.equal(timeOfEventId(randomUUID()), undefined);
  });

  test('returns undefined for a v7-looking id with the wrong variant', () => {
    assert.equal(timeOfEventId('017f22e2-79b0-7cc3-c8c4-dc0c0c07398f'), undefined);
  });

  test('returns undefined for strings that are not UUIDs', () => {
    for (const id of ['', 'order-1', '017f22e2-79b0-7cc3-98c4', `${createEventId()}0`, ' x']) {
      assert.equal(timeOfEventId(id), undefined, id);
    }
  });
});
