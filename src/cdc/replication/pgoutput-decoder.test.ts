import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatLsn, formatLsnAt, parseLsn } from './lsn.ts';
import { decodePgoutput, POSTGRES_EPOCH_MS, postgresTimeToRfc3339, UNCHANGED } from './pgoutput-decoder.ts';

/** Builds pgoutput messages byte by byte, as proto.c writes them. */
class Message {
  private readonly parts: Buffer[] = [];

  constructor(kind: string) {
    this.byte(kind.charCodeAt(0));
  }

  byte(value: number): this {
    this.parts.push(Buffer.from([value]));
    return this;
  }

  int16(value: number): this {
    const buffer = Buffer.alloc(2);
    buffer.writeInt16BE(value);
    this.parts.push(buffer);
    return this;
  }

  int32(value: number): this {
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32BE(value >>> 0);
    this.parts.push(buffer);
    return this;
  }

  int64(value: bigint): this {
    const buffer = Buffer.alloc(8);
    buffer.writeBigInt64BE(value);
    this.parts.push(buffer);
    return this;
  }

  string(value: string): this {
    this.parts.push(Buffer.from(value, 'utf8'), Buffer.from([0]));
    return this;
  }

  tuple(values: (string | null | typeof UNCHANGED)[]): this {
    this.int16(values.length);
    for (const value of values) {
      if (value === null) this.byte(0x6e);
      else if (value === UNCHANGED) this.byte(0x75);
      else {
        const bytes = Buffer.from(value, 'utf8');
        this.byte(0x74).int32(bytes.length);
        this.parts.push(bytes);
      }
    }
    return this;
  }

  /** Wrapped in an XLogData header, as the decoder reads it at offset 25. */
  build(): Buffer {
    return Buffer.concat([Buffer.alloc(25, 0x77), ...this.parts]);
  }
}

const decode = (message: Message) => decodePgoutput(message.build(), 25);

describe('decoding pgoutput messages', () => {
  test('Begin gives the commit LSN as PostgreSQL prints it, the commit time and the xid', () => {
    const message = decode(new Message('B').int64(0x16_b374d848n).int64(1_000_001n).int32(4_000_000_000));
    assert.deepEqual(message, { tag: 'begin', commitLsn: '16/B374D848', commitTime: 1_000_001n, xid: 4_000_000_000 });
  });

  test('Commit gives the commit LSN, the end LSN as a bigint and the commit time', () => {
    const message = decode(new Message('C').byte(0).int64(0x10n).int64(0x1_0000_0020n).int64(5n));
    assert.deepEqual(message, { tag: 'commit', commitLsn: '0/10', endLsn: 0x1_0000_0020n, commitTime: 5n });
  });

  test('Relation gives the table, its replica identity and each column with its type and key flag', () => {
    const message = decode(
      new Message('R')
        .int32(16384)
        .string('Mixed Case')
        .string('ünïcødé')
        .byte('f'.charCodeAt(0))
        .int16(2)
        .byte(1)
        .string('id')
        .int32(23)
        .int32(-1)
        .byte(0)
        .string('x"; DROP TABLE y; --')
        .int32(25)
        .int32(-1),
    );
    assert.deepEqual(message, {
      tag: 'relation',
      relationId: 16384,
      schema: 'Mixed Case',
      table: 'ünïcødé',
      replicaIdentity: 'f',
      columns: [
        { name: 'id', typeOid: 23, typeModifier: -1, isKey: true },
        { name: 'x"; DROP TABLE y; --', typeOid: 25, typeModifier: -1, isKey: false },
      ],
    });
  });

  test('a Relation in pg_catalog arrives with an empty namespace and reads as pg_catalog', () => {
    const message = decode(new Message('R').int32(1).string('').string('t').byte(0x64).int16(0));
    assert.equal(message.tag === 'relation' && message.schema, 'pg_catalog');
  });

  test('Insert gives the new tuple with text, NULL and unchanged values', () => {
    const message = decode(new Message('I').int32(7).byte(0x4e).tuple(['1', null, UNCHANGED, '', 'ünï']));
    assert.deepEqual(message, { tag: 'insert', relationId: 7, newTuple: ['1', null, UNCHANGED, '', 'ünï'] });
  });

  test('Update gives the old key, the old row or neither, and the new tuple', () => {
    assert.deepEqual(decode(new Message('U').int32(7).byte(0x4e).tuple(['1', 'b'])), {
      tag: 'update',
      relationId: 7,
      oldKind: undefined,
      oldTuple: undefined,
      newTuple: ['1', 'b'],
    });
    assert.deepEqual(decode(new Message('U').int32(7).byte(0x4f).tuple(['1', 'a']).byte(0x4e).tuple(['1', 'b'])), {
      tag: 'update',
      relationId: 7,
      oldKind: 'O',
      oldTuple: ['1', 'a'],
      newTuple: ['1', 'b'],
    });
    assert.deepEqual(decode(new Message('U').int32(7).byte(0x4b).tuple(['1', null]).byte(0x4e).tuple(['2', 'b'])), {
      tag: 'update',
      relationId: 7,
      oldKind: 'K',
      oldTuple: ['1', null],
      newTuple: ['2', 'b'],
    });
  });

  test('Delete gives the old key or the old row', () => {
    assert.deepEqual(decode(new Message('D').int32(7).byte(0x4b).tuple(['1', null])), {
      tag: 'delete',
      relationId: 7,
      oldKind: 'K',
      oldTuple: ['1', null],
    });
  });

  test('Truncate lists every truncated relation and its options', () => {
    assert.deepEqual(decode(new Message('T').int32(2).byte(3).int32(7).int32(8)), {
      tag: 'truncate',
      cascade: true,
      restartIdentity: true,
      relationIds: [7, 8],
    });
  });

  test('Message gives a logical decoding message with its prefix and content', () => {
    assert.deepEqual(decode(new Message('M').byte(1).int64(0x20n).string('busbar').int32(2).byte(0x68).byte(0x69)), {
      tag: 'message',
      transactional: true,
      lsn: '0/20',
      prefix: 'busbar',
      content: Buffer.from('hi'),
    });
  });

  test('Type and Origin are decoded', () => {
    assert.deepEqual(decode(new Message('Y').int32(99999).string('public').string('mood')), {
      tag: 'type',
      typeOid: 99999,
      schema: 'public',
      name: 'mood',
    });
    assert.deepEqual(decode(new Message('O').int64(1n).string('upstream')), { tag: 'origin', name: 'upstream' });
  });

  test('an unknown message type fails with BUSBAR_ERR_CDC_PROTOCOL', () => {
    assert.throws(() => decode(new Message('Z')), { code: 'BUSBAR_ERR_CDC_PROTOCOL', message: /unknown pgoutput message type "Z"/ });
  });

  test('a truncated message fails with BUSBAR_ERR_CDC_PROTOCOL, not a RangeError', () => {
    const whole = new Message('I').int32(7).byte(0x4e).tuple(['a long value']).build();
    assert.throws(() => decodePgoutput(whole.subarray(0, whole.length - 4), 25), { code: 'BUSBAR_ERR_CDC_PROTOCOL' });
    assert.throws(() => decodePgoutput(new Message('B').int32(1).build(), 25), { code: 'BUSBAR_ERR_CDC_PROTOCOL' });
  });

  test('an unknown tuple column kind fails with BUSBAR_ERR_CDC_PROTOCOL', () => {
    const message = new Message('I').int32(7).byte(0x4e).int16(1).byte(0x78);
    assert.throws(() => decode(message), { code: 'BUSBAR_ERR_CDC_PROTOCOL', message: /tuple column kind "x"/ });
  });
});

describe('positions and times', () => {
  test('LSNs format and parse as PostgreSQL prints them', () => {
    assert.equal(formatLsn(0x16_b374d848n), '16/B374D848');
    assert.equal(formatLsn(0n), '0/0');
    assert.equal(parseLsn('16/B374D848'), 0x16_b374d848n);
    assert.equal(parseLsn(formatLsn(0xffff_ffff_0000_0001n)), 0xffff_ffff_0000_0001n);
    const buffer = Buffer.alloc(8);
    buffer.writeBigUInt64BE(0xab_0000_00cdn);
    assert.equal(formatLsnAt(buffer, 0), 'AB/CD');
  });

  test('commit times count microseconds from 2000-01-01 UTC and keep all six fraction digits', () => {
    assert.equal(POSTGRES_EPOCH_MS, Date.UTC(2000, 0, 1));
    assert.equal(postgresTimeToRfc3339(0n), '2000-01-01T00:00:00.000000Z');
    assert.equal(postgresTimeToRfc3339(1_000_001n), '2000-01-01T00:00:01.000001Z');
    const micros = BigInt(Date.UTC(2024, 1, 29, 13, 45, 0, 123) - POSTGRES_EPOCH_MS) * 1000n + 456n;
    assert.equal(postgresTimeToRfc3339(micros), '2024-02-29T13:45:00.123456Z');
    assert.equal(postgresTimeToRfc3339(-1n), '1999-12-31T23:59:59.999999Z');
  });
});
