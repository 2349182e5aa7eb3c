import { randomBytes } from 'node:crypto';
import type { TableName } from '../capture-source.ts';
import type { ChangeData, Row } from '../change.ts';
import type { LogicalMessage } from '../replication/pgoutput-decoder.ts';

/** The prefix of Busbar's watermark messages (`pg_logical_emit_message`). */
export const WATERMARK_PREFIX = 'busbar.snapshot';

/** Keys remembered between a watermark and the next chunk, at most: past it the chunk is read again. */
const MAX_TOUCHED = 100_000;
/** Keys remembered for all tables waiting their turn together, at most: past it the busiest waits for a start mark instead. */
const MAX_WAITING_TOUCHED = 100_000;

/** READ changes a chunk's high watermark releases, and where to report how their delivery went. */
export interface ChunkRelease {
  readonly changes: ChangeData[];
  settled(delivery: Promise<void>): void;
}

/** What a replication session asks of the initial snapshot: see every change before it is handed on, hear every message. */
export interface StreamWatermarks {
  observe(changes: readonly ChangeData[]): void;
  /** A chunk's rows to hand on now, in stream order, when `message` is that chunk's high watermark. */
  message(message: LogicalMessage): ChunkRelease | undefined;
}

/** How a chunk ended: its READ rows were durably delivered, or it must be read again. */
export type ChunkOutcome = { readonly delivered: number } | 'again';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

interface AttachedChunk {
  readonly mark: string;
  /** The chunk's rows by key text, in key order; a stream change of a key removes it. */
  readonly rows: Map<string, ChangeData>;
  /** A change whose key could not be read arrived: no row of this chunk can be trusted. */
  untrusted: boolean;
  readonly outcome: Deferred<ChunkOutcome>;
}

interface Tracking {
  readonly schema: string;
  readonly name: string;
  readonly keyColumns: readonly string[];
  /** The mark tracking starts at; undefined when it started with the session. */
  readonly startMark: string | undefined;
  started: boolean;
  readonly reached: Deferred<void>;
  /** Keys changed since the last watermark, while no chunk is attached. */
  touched: Set<string>;
  /** A TRUNCATE since the last watermark: no row read before it exists any more. */
  truncated: boolean;
  /** Tracking lost keys (too many, or one it could not read): tracking must start over. */
  untrusted: boolean;
  chunk: AttachedChunk | undefined;
}

/**
 * The stream side of the initial snapshot: the watermark algorithm of
 * Netflix's DBLog. A table is tracked from a point the stream has passed
 * before its chunk is read: the start of the session (for the tables
 * already waiting when it starts), a start mark (for one added later), then
 * each chunk's high watermark. Every stream change of the table removes its
 * key (old and new) from the chunk being read, or is remembered until the
 * chunk is attached. At the chunk's high watermark, which commits with the
 * chunk's own transaction, the rows left are handed on as READ changes,
 * before any later stream change.
 *
 * A stream change delivered before the high watermark either committed
 * before the chunk's snapshot (the row read already includes it, and it was
 * delivered first) or after it (the key was removed: the stream change
 * stands for the row). A change after the high watermark committed after the
 * snapshot. So a READ never shows a row older than a stream change delivered
 * before it, and nothing a READ misses is missing from the stream.
 *
 * @example
 * ```ts
 * const start = window.track(table, ['id']);
 * if (start.mark !== undefined) await emit(start.mark);
 * await start.reached;
 * const chunk = window.attach(reads, keys, ['id']); // then emit chunk.mark in the chunk's transaction
 * const outcome = await chunk!.outcome;             // { delivered } or 'again'
 * ```
 */
export class SnapshotWindow implements StreamWatermarks {
  private readonly nonce = randomBytes(8).toString('hex');
  private sequence = 0;
  /** Every tracked table by schema, then name: the table being read and those waiting their turn. */
  private readonly tables = new Map<string, Map<string, Tracking>>();
  /** The table being read. */
  private tracking: Tracking | undefined;
  /** Keys remembered for the tables waiting their turn. */
  private waitingTouched = 0;
  private failure: unknown;

  /**
   * Before the session reads its first message: tracks the tables whose
   * snapshot is pending or running from the very start of the stream, so a
   * row written after the slot's position is delivered by the stream alone,
   * never also as a READ.
   */
  trackFromStart(tables: readonly (TableName & { readonly keyColumns: readonly string[] })[]): void {
    for (const table of tables) {
      if (table.keyColumns.length > 0) this.add(this.newTracking(table, table.keyColumns, undefined));
    }
  }

  /**
   * Makes `table` the one being read. When it has been tracked since the
   * session started, by the same key, it goes on from there (`mark`
   * undefined); otherwise tracking starts at a new mark, which the caller
   * emits. `reached` resolves once the stream is past the start.
   */
  track(table: TableName, keyColumns: readonly string[]): { readonly mark: string | undefined; readonly reached: Promise<void> } {
    this.assertOpen();
    this.untrack();
    const waiting = this.tables.get(table.schema)?.get(table.name);
    if (waiting !== undefined && !waiting.untrusted && sameColumns(waiting.keyColumns, keyColumns)) {
      this.waitingTouched -= waiting.touched.size;
      this.tracking = waiting;
      return { mark: undefined, reached: waiting.reached.promise };
    }
    const tracking = this.newTracking(table, keyColumns, this.nextMark());
    this.add(tracking);
    this.tracking = tracking;
    return { mark: tracking.startMark, reached: tracking.reached.promise };
  }

  /**
   * Attaches a chunk just read (its transaction still open): the keys the
   * stream changed since the last watermark are dropped from it. Undefined
   * when tracking lost keys or the key changed: track again, then read the
   * chunk again. Otherwise the caller emits `mark` in the chunk's transaction.
   */
  attach(reads: readonly ChangeData[], keys: readonly string[], keyColumns: readonly string[]): { mark: string; outcome: Promise<ChunkOutcome> } | undefined {
    this.assertOpen();
    const tracking = this.tracking;
    if (tracking === undefined || !tracking.started) throw new Error('a snapshot chunk was attached before its table was tracked');
    if (tracking.untrusted || !sameColumns(tracking.keyColumns, keyColumns)) return undefined;
    const rows = new Map<string, ChangeData>();
    if (!tracking.truncated) {
      for (let i = 0; i < reads.length; i++) if (!tracking.touched.has(keys[i]!)) rows.set(keys[i]!, reads[i]!);
    }
    tracking.touched = new Set();
    tracking.truncated = false;
    const chunk: AttachedChunk = { mark: this.nextMark(), rows, untrusted: false, outcome: deferred() };
    tracking.chunk = chunk;
    return { mark: chunk.mark, outcome: chunk.outcome.promise };
  }

  /** Stops tracking the table being read (it is done, or abandoned); a chunk still attached is read again some other time. */
  untrack(): void {
    const tracking = this.tracking;
    if (tracking === undefined) return;
    this.tracking = undefined;
    this.remove(tracking);
    tracking.reached.reject(new Error('snapshot tracking stopped'));
    tracking.chunk?.outcome.resolve('again');
  }

  /** The session ended: every wait fails with `error`, and the window takes no more work. */
  close(error: unknown): void {
    this.failure ??= error;
    const tracking = this.tracking;
    this.tracking = undefined;
    this.tables.clear();
    tracking?.reached.reject(this.failure);
    tracking?.chunk?.outcome.reject(this.failure);
  }

  observe(changes: readonly ChangeData[]): void {
    if (this.tables.size === 0) return;
    let tracking: Tracking | undefined;
    for (const change of changes) {
      // Changes of one table come in runs: look the table up when it changes.
      if (tracking === undefined || change.table !== tracking.name || change.schema !== tracking.schema) {
        tracking = this.tables.get(change.schema)?.get(change.table);
        if (tracking === undefined || !tracking.started) {
          tracking = undefined;
          continue;
        }
      }
      if (change.action === 'TRUNCATE') {
        tracking.chunk?.rows.clear();
        if (tracking !== this.tracking) this.waitingTouched -= tracking.touched.size;
        tracking.touched.clear();
        tracking.truncated = true;
        continue;
      }
      if (change.data !== null) this.touch(tracking, keyText(change.data, tracking.keyColumns));
      if (change.old !== null) this.touch(tracking, keyText(change.old, tracking.keyColumns));
    }
  }

  message(message: LogicalMessage): ChunkRelease | undefined {
    if (message.prefix !== WATERMARK_PREFIX) return undefined;
    const tracking = this.tracking;
    if (tracking === undefined) return undefined;
    // Marks of other sessions and other captures of this database carry other nonces.
    const mark = message.content.toString('utf8');
    if (!tracking.started) {
      if (mark === tracking.startMark) {
        tracking.started = true;
        tracking.reached.resolve();
      }
      return undefined;
    }
    const chunk = tracking.chunk;
    if (chunk === undefined || mark !== chunk.mark) return undefined;
    tracking.chunk = undefined;
    if (chunk.untrusted) {
      chunk.outcome.resolve('again');
      return undefined;
    }
    const changes = [...chunk.rows.values()];
    for (let i = 0; i < changes.length; i++) {
      changes[i]!.index = i;
      changes[i]!.last = i === changes.length - 1;
    }
    return {
      changes,
      settled: (delivery) => delivery.then(() => chunk.outcome.resolve({ delivered: changes.length }), chunk.outcome.reject),
    };
  }

  private touch(tracking: Tracking, key: string | undefined): void {
    if (key === undefined) {
      // A change without its key columns (a column renamed): it may be any row.
      if (tracking.chunk !== undefined) tracking.chunk.untrusted = true;
      else this.lose(tracking);
      return;
    }
    if (tracking.chunk !== undefined) {
      tracking.chunk.rows.delete(key);
      return;
    }
    if (tracking.untrusted) return;
    const before = tracking.touched.size;
    tracking.touched.add(key);
    if (tracking === this.tracking) {
      if (tracking.touched.size > MAX_TOUCHED) this.lose(tracking);
    } else if ((this.waitingTouched += tracking.touched.size - before) > MAX_WAITING_TOUCHED) {
      this.lose(tracking);
    }
  }

  /** Tracking of `tracking` lost keys: the table being read tracks again from a new mark; a waiting one is forgotten until its turn. */
  private lose(tracking: Tracking): void {
    if (tracking !== this.tracking) {
      this.waitingTouched -= tracking.touched.size;
      this.remove(tracking);
      return;
    }
    tracking.untrusted = true;
    tracking.touched = new Set();
  }

  private newTracking(table: TableName, keyColumns: readonly string[], startMark: string | undefined): Tracking {
    const tracking: Tracking = {
      schema: table.schema,
      name: table.name,
      keyColumns,
      startMark,
      started: startMark === undefined,
      reached: deferred(),
      touched: new Set(),
      truncated: false,
      untrusted: false,
      chunk: undefined,
    };
    if (tracking.started) tracking.reached.resolve();
    return tracking;
  }

  private add(tracking: Tracking): void {
    let schema = this.tables.get(tracking.schema);
    if (schema === undefined) this.tables.set(tracking.schema, (schema = new Map()));
    const replaced = schema.get(tracking.name);
    if (replaced !== undefined && replaced !== this.tracking) this.waitingTouched -= replaced.touched.size;
    schema.set(tracking.name, tracking);
  }

  private remove(tracking: Tracking): void {
    const schema = this.tables.get(tracking.schema);
    if (schema?.get(tracking.name) !== tracking) return;
    schema.delete(tracking.name);
    if (schema.size === 0) this.tables.delete(tracking.schema);
  }

  private nextMark(): string {
    return `${this.nonce}:${++this.sequence}`;
  }

  private assertOpen(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

/**
 * A row's primary key as text, the same for a stream change and a snapshot
 * row (both map values with the same decoders); undefined when a key column
 * is absent from the row.
 *
 * @example
 * ```ts
 * keyText({ order_id: 1, line_no: 2, qty: 5 }, ['order_id', 'line_no']); // '[1,2]'
 * ```
 */
export function keyText(row: Row, keyColumns: readonly string[]): string | undefined {
  if (keyColumns.length === 1) {
    const value = row[keyColumns[0]!];
    return value === undefined ? undefined : JSON.stringify(value);
  }
  const values: unknown[] = new Array(keyColumns.length);
  for (let i = 0; i < keyColumns.length; i++) {
    const value = row[keyColumns[i]!];
    if (value === undefined) return undefined;
    values[i] = value;
  }
  return JSON.stringify(values);
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a wait nobody is awaiting any more must not become an unhandled rejection
  return { promise, resolve, reject };
}
