/**
 * Decodes the messages of PostgreSQL's `pgoutput` plugin (protocol version
 * 1), as the "Logical Replication Message Formats" chapter of the protocol
 * documentation and `src/backend/replication/logical/proto.c` define them.
 * Values stay PostgreSQL's text; mapping them to JSON needs the column types,
 * which the transaction assembler has.
 *
 * The buffer is pg's read buffer, reused for the next socket read: nothing
 * here keeps a view of it, every value is copied into a string.
 */
import { BusbarError } from '../../core/errors.ts';
import { formatLsnAt, type Lsn } from './lsn.ts';

/** A column the database did not send: an unchanged TOASTed value. */
export const UNCHANGED: unique symbol = Symbol('unchanged TOAST value');

/** One column of a tuple: its text, null for NULL, UNCHANGED, or raw bytes (binary format). */
export type TupleValue = string | null | typeof UNCHANGED | Buffer;

export interface RelationColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typeModifier: number;
  /** Part of the replica identity (the primary key, or every column with REPLICA IDENTITY FULL). */
  readonly isKey: boolean;
}

export interface BeginMessage {
  readonly tag: 'begin';
  /** The transaction's commit LSN as PostgreSQL prints it. */
  readonly commitLsn: string;
  /** Commit time, microseconds since 2000-01-01 UTC. */
  readonly commitTime: bigint;
  readonly xid: number;
}

export interface CommitMessage {
  readonly tag: 'commit';
  readonly commitLsn: string;
  /** Where the transaction's WAL ends: the position to confirm once it is handled. */
  readonly endLsn: Lsn;
  readonly commitTime: bigint;
}

export interface OriginMessage {
  readonly tag: 'origin';
  readonly name: string;
}

export interface RelationMessage {
  readonly tag: 'relation';
  readonly relationId: number;
  readonly schema: string;
  readonly table: string;
  /** `d` default, `n` nothing, `f` full, `i` index. */
  readonly replicaIdentity: string;
  readonly columns: readonly RelationColumn[];
}

export interface TypeMessage {
  readonly tag: 'type';
  readonly typeOid: number;
  readonly schema: string;
  readonly name: string;
}

export interface InsertMessage {
  readonly tag: 'insert';
  readonly relationId: number;
  readonly newTuple: TupleValue[];
}

export interface UpdateMessage {
  readonly tag: 'update';
  readonly relationId: number;
  /** The old key ('K': the key changed) or whole old row ('O': REPLICA IDENTITY FULL). */
  readonly oldKind: 'K' | 'O' | undefined;
  readonly oldTuple: TupleValue[] | undefined;
  readonly newTuple: TupleValue[];
}

export interface DeleteMessage {
  readonly tag: 'delete';
  readonly relationId: number;
  readonly oldKind: 'K' | 'O';
  readonly oldTuple: TupleValue[];
}

export interface TruncateMessage {
  readonly tag: 'truncate';
  readonly cascade: boolean;
  readonly restartIdentity: boolean;
  readonly relationIds: readonly number[];
}

/** A `pg_logical_emit_message` message: a heartbeat or a watermark. */
export interface LogicalMessage {
  readonly tag: 'message';
  readonly transactional: boolean;
  readonly lsn: string;
  readonly prefix: string;
  readonly content: Buffer;
}

export type PgoutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalMessage;

/**
 * Decodes the pgoutput message that starts at `offset` of `buffer` and runs
 * to its end. Throws `BUSBAR_ERR_CDC_PROTOCOL` for an unknown or truncated
 * message.
 *
 * @example
 * ```ts
 * const message = decodePgoutput(xlogData, 25); // after the 'w' header
 * if (message.tag === 'insert') console.log(message.newTuple);
 * ```
 */
export function decodePgoutput(buffer: Buffer, offset: number): PgoutputMessage {
  const reader = new Reader(buffer, offset + 1);
  try {
    switch (buffer[offset]) {
      case 0x42: // B
        return { tag: 'begin', commitLsn: reader.lsnText(), commitTime: reader.int64(), xid: reader.uint32() };
      case 0x43: // C
        reader.skip(1); // flags, unused
        return { tag: 'commit', commitLsn: reader.lsnText(), endLsn: reader.uint64(), commitTime: reader.int64() };
      case 0x4f: // O
        reader.skip(8);
        return { tag: 'origin', name: reader.cString() };
      case 0x52: // R
        return reader.relation();
      case 0x59: // Y
        return { tag: 'type', typeOid: reader.uint32(), schema: reader.cString(), name: reader.cString() };
      case 0x49: // I
        return { tag: 'insert', relationId: reader.uint32(), newTuple: reader.taggedTuple('N') };
      case 0x55: // U
        return reader.update();
      case 0x44: // D
        return reader.delete();
      case 0x54: // T
        return reader.truncate();
      case 0x4d: // M
        return reader.logicalMessage();
      default:
        throw protocolError(
          `unknown pgoutput message type ${JSON.stringify(String.fromCharCode(buffer[offset] ?? 0))} (0x${(buffer[offset] ?? 0).toString(16)})`,
        );
    }
  } catch (error) {
    if (error instanceof BusbarError) throw error;
    // Node's RangeError for a read past the end: a truncated message.
    throw protocolError(`malformed pgoutput message: ${(error as Error).message}`, error);
  }
}

/** PostgreSQL's epoch, 2000-01-01T00:00:00Z, in Unix milliseconds. */
export const POSTGRES_EPOCH_MS = 946_684_800_000;

/**
 * A PostgreSQL timestamp (microseconds since 2000-01-01 UTC) as RFC 3339 in
 * UTC with all six fraction digits.
 *
 * @example
 * ```ts
 * postgresTimeToRfc3339(1_000_001n); // '2000-01-01T00:00:01.000001Z'
 * ```
 */
export function postgresTimeToRfc3339(micros: bigint): string {
  const seconds = micros / 1_000_000n;
  let fraction = Number(micros - seconds * 1_000_000n);
  let whole = Number(seconds);
  if (fraction < 0) {
    fraction += 1_000_000;
    whole -= 1;
  }
  // Commits come many per second: the date and clock part is formatted once a second.
  if (whole !== formattedSecond) {
    formattedSecond = whole;
    formattedPrefix = new Date(POSTGRES_EPOCH_MS + whole * 1000).toISOString().slice(0, 19); // YYYY-MM-DDTHH:MM:SS
  }
  return `${formattedPrefix}.${String(fraction).padStart(6, '0')}Z`;
}

let formattedSecond = Number.NaN;
let formattedPrefix = '';

export function protocolError(message: string, cause?: unknown): BusbarError {
  return new BusbarError('BUSBAR_ERR_CDC_PROTOCOL', message, cause === undefined ? {} : { cause });
}

class Reader {
  private readonly buffer: Buffer;
  private offset: number;

  constructor(buffer: Buffer, offset: number) {
    this.buffer = buffer;
    this.offset = offset;
  }

  skip(bytes: number): void {
    this.offset += bytes;
  }

  uint8(): number {
    return this.buffer.readUInt8(this.offset++);
  }

  int16(): number {
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  uint32(): number {
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int32(): number {
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int64(): bigint {
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  uint64(): bigint {
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  lsnText(): string {
    const text = formatLsnAt(this.buffer, this.offset);
    this.offset += 8;
    return text;
  }

  cString(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw protocolError('unterminated string in a pgoutput message');
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }

  relation(): RelationMessage {
    const relationId = this.uint32();
    const schema = this.cString();
    const table = this.cString();
    const replicaIdentity = String.fromCharCode(this.uint8());
    const count = this.int16();
    const columns: RelationColumn[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const flags = this.uint8();
      columns[i] = { name: this.cString(), typeOid: this.uint32(), typeModifier: this.int32(), isKey: (flags & 1) === 1 };
    }
    // An empty namespace means pg_catalog (proto.c writes it so).
    return { tag: 'relation', relationId, schema: schema === '' ? 'pg_catalog' : schema, table, replicaIdentity, columns };
  }

  update(): UpdateMessage {
    const relationId = this.uint32();
    const kind = String.fromCharCode(this.uint8());
    if (kind === 'N') return { tag: 'update', relationId, oldKind: undefined, oldTuple: undefined, newTuple: this.tuple() };
    if (kind !== 'K' && kind !== 'O') throw protocolError(`unexpected tuple kind ${JSON.stringify(kind)} in an UPDATE`);
    const oldTuple = this.tuple();
    return { tag: 'update', relationId, oldKind: kind, oldTuple, newTuple: this.taggedTuple('N') };
  }

  delete(): DeleteMessage {
    const relationId = this.uint32();
    const kind = String.fromCharCode(this.uint8());
    if (kind !== 'K' && kind !== 'O') throw protocolError(`unexpected tuple kind ${JSON.stringify(kind)} in a DELETE`);
    return { tag: 'delete', relationId, oldKind: kind, oldTuple: this.tuple() };
  }

  truncate(): TruncateMessage {
    const count = this.uint32();
    const options = this.uint8();
    const relationIds: number[] = new Array(count);
    for (let i = 0; i < count; i++) relationIds[i] = this.uint32();
    return { tag: 'truncate', cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2, relationIds };
  }

  logicalMessage(): LogicalMessage {
    const transactional = (this.uint8() & 1) === 1;
    const lsn = this.lsnText();
    const prefix = this.cString();
    const length = this.uint32();
    const content = Buffer.from(this.buffer.subarray(this.offset, this.offset + length)); // a copy: see above
    this.offset += length;
    return { tag: 'message', transactional, lsn, prefix, content };
  }

  taggedTuple(expected: string): TupleValue[] {
    const kind = String.fromCharCode(this.uint8());
    if (kind !== expected) throw protocolError(`expected a '${expected}' tuple, got ${JSON.stringify(kind)}`);
    return this.tuple();
  }

  tuple(): TupleValue[] {
    const count = this.int16();
    const values: TupleValue[] = new Array(count);
    const buffer = this.buffer;
    for (let i = 0; i < count; i++) {
      const kind = buffer[this.offset++];
      if (kind === 0x74) {
        // t: text
        const length = buffer.readInt32BE(this.offset);
        const start = this.offset + 4;
        if (start + length > buffer.length) throw protocolError('a column value runs past the end of its message');
        values[i] = buffer.toString('utf8', start, start + length);
        this.offset = start + length;
      } else if (kind === 0x6e) {
        values[i] = null; // n
      } else if (kind === 0x75) {
        values[i] = UNCHANGED; // u
      } else if (kind === 0x62) {
        // b: binary (only if a binary option were asked for)
        const length = buffer.readInt32BE(this.offset);
        const start = this.offset + 4;
        values[i] = Buffer.from(buffer.subarray(start, start + length));
        this.offset = start + length;
      } else {
        throw protocolError(`unknown tuple column kind ${JSON.stringify(String.fromCharCode(kind ?? 0))}`);
      }
    }
    return values;
  }
}
