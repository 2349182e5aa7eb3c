/**
 * The write burst: several writers, each on its own connection, running
 * single-row and multi-row transactions of inserts, updates and deletes on
 * the burst tables; some roll back on purpose, some roll back a savepoint,
 * and every writer keeps bumping the same few contended rows. Deterministic
 * per seed, so a failure can be replayed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type BurstLedger, runTransaction, type TransactionWork, WriterConnection } from './burst-ledger.fixture.ts';
import { type BurstTables, HOT_ROWS } from './burst-tables.fixture.ts';

export interface BurstOptions {
  readonly connectionString: string;
  readonly tables: BurstTables;
  readonly ledger: BurstLedger;
  readonly writers: number;
  readonly transactionsPerWriter: number;
  /** Seeds the writers' choices. */
  readonly seed: string;
  /** Awaited before each transaction: a fault gate holds writers at a point of the burst. */
  readonly beforeTransaction?: () => Promise<void>;
}

/** Text that has tripped encoders before: combining marks, astral planes, quotes, separators, SQL. */
const UNICODE = [
  'ünïcødé',
  'Grüße aus Köln',
  '中文字符',
  'emoji 🚀✨👩🏽‍💻',
  'עברית',
  'e\u0301 combining',
  'quote " and \\ backslash',
  'line\nbreak\ttab',
  'line\u2028separator',
  "O'Brien; DROP TABLE y; --",
  '',
];
const TAGS = ['a', null, 'b c', 'ünï', 'NULL', 'comma,inside', 'quote"', '{braces}', ''];

/** Rows past 1 MB: this many per burst, from writers 1 and 2. */
const HUGE_NOTE_BYTES = 1_100_000;

/**
 * Runs `writers` writers of `transactionsPerWriter` transactions each; the
 * first transaction seeds the contended rows. Resolves when all are done.
 *
 * @example
 * ```ts
 * const burst = new WriteBurst({ connectionString, tables, ledger, writers: 6, transactionsPerWriter: 300, seed: 'a' });
 * await burst.run(); // burst.done === burst.total
 * ```
 */
export class WriteBurst {
  readonly total: number;
  done = 0;
  private readonly options: BurstOptions;

  constructor(options: BurstOptions) {
    this.options = options;
    this.total = options.writers * options.transactionsPerWriter;
  }

  async run(): Promise<void> {
    await this.seedHotRows();
    await Promise.all(Array.from({ length: this.options.writers }, (_, i) => this.write(i + 1)));
  }

  private async seedHotRows(): Promise<void> {
    const { connectionString, ledger, tables } = this.options;
    const connection = new WriterConnection(connectionString);
    try {
      for (;;) {
        const entry = await runTransaction(connection, ledger, tables.ledgerSql, 'seed', {}, async (work) => {
          const rows = await work.query<{ id: number; write_id: number }>(
            `INSERT INTO ${tables.sql.hot} (id, version, write_id, writer, balance, note)
             SELECT g, 1, g, 0, 100.00, CASE WHEN g % 3 = 0 THEN NULL ELSE 'hot ' || g END FROM generate_series(1, $1::int) g
             RETURNING id, write_id`,
            [HOT_ROWS],
          );
          for (const row of rows) work.made({ role: 'hot', action: 'INSERT', key: String(row.id), version: 1, writeId: row.write_id });
        });
        if (entry.outcome === 'committed' || entry.outcome === 'lost-committed') return;
      }
    } finally {
      await connection.end();
    }
  }

  private async write(writer: number): Promise<void> {
    const { connectionString, ledger, tables, transactionsPerWriter, beforeTransaction } = this.options;
    const connection = new WriterConnection(connectionString);
    const state = new WriterState(writer, this.options.seed);
    try {
      for (let t = 0; t < transactionsPerWriter; t++) {
        await beforeTransaction?.();
        const plan = state.plan(t, transactionsPerWriter);
        await runTransaction(connection, ledger, tables.ledgerSql, `w${writer}-t${t}`, { rollback: plan.rollback }, (work) =>
          this.perform(work, state, plan),
        );
        this.done++;
      }
    } finally {
      await connection.end();
    }
  }

  private async perform(work: TransactionWork, state: WriterState, plan: TransactionPlan): Promise<void> {
    for (const op of plan.ops) await this.apply(work, state, op);
    if (plan.savepoint.length > 0) {
      await work.discardedSavepoint(async () => {
        for (const op of plan.savepoint) await this.apply(work, state, op);
      });
    }
  }

  private async apply(work: TransactionWork, state: WriterState, op: Op): Promise<void> {
    const { sql } = this.options.tables;
    const writer = state.writer;
    switch (op.kind) {
      case 'insertItem': {
        const id = state.nextItem();
        const writeId = state.nextWriteId();
        await work.query(
          `INSERT INTO ${sql.items} (id, version, write_id, writer, payload, tags, scores, note) VALUES ($1, 1, $2, $3, $4::jsonb, $5, $6, $7)`,
          [id, writeId, writer, state.payload(), state.tags(), state.scores(), op.huge ? hugeNote() : state.note()],
        );
        work.made({ role: 'items', action: 'INSERT', key: String(id), version: 1, writeId });
        work.onCommit(() => state.items.push(id));
        return;
      }
      case 'updateItem': {
        const id = state.pick(state.items);
        if (id === undefined) return;
        const writeId = state.nextWriteId();
        // Half the updates leave the note alone: an unchanged (possibly TOASTed) value must come from the old row.
        const rows = await work.query<{ version: number }>(
          `UPDATE ${sql.items} SET version = version + 1, write_id = $2, payload = $3::jsonb, tags = $4,
                  note = CASE WHEN $5::boolean THEN $6 ELSE note END WHERE id = $1 RETURNING version`,
          [id, writeId, state.payload(), state.tags(), state.chance(0.5), state.note()],
        );
        if (rows[0] !== undefined) work.made({ role: 'items', action: 'UPDATE', key: String(id), version: rows[0].version, writeId });
        return;
      }
      case 'deleteItem': {
        const id = state.pick(state.items);
        if (id === undefined) return;
        const rows = await work.query<{ version: number; write_id: number }>(
          `DELETE FROM ${sql.items} WHERE id = $1 RETURNING version, write_id`,
          [id],
        );
        if (rows[0] !== undefined) {
          work.made({ role: 'items', action: 'DELETE', key: String(id), version: rows[0].version, writeId: rows[0].write_id });
        }
        work.onCommit(() => remove(state.items, id));
        return;
      }
      case 'bumpHot': {
        const writeId = state.nextWriteId();
        const rows = await work.query<{ version: number }>(
          `UPDATE ${sql.hot} SET version = version + 1, write_id = $2, writer = $3, balance = balance + $4::numeric, note = $5
           WHERE id = $1 RETURNING version`,
          [op.hot, writeId, writer, state.amount(), state.chance(0.2) ? null : state.note()],
        );
        if (rows[0] !== undefined) work.made({ role: 'hot', action: 'UPDATE', key: String(op.hot), version: rows[0].version, writeId });
        return;
      }
      case 'insertOrder': {
        const order = state.nextOrder();
        const lines = 1 + Math.floor(state.random() * 5);
        const firstWriteId = state.nextWriteId(lines);
        const rows = await work.query<{ line_no: number; write_id: number }>(
          `INSERT INTO ${sql.lines} (order_id, line_no, version, write_id, qty, sku)
           SELECT $1, g, 1, $2::int + g - 1, g * 3, CASE WHEN g = 2 THEN NULL ELSE 'sku-ü-' || g END FROM generate_series(1, $3::int) g
           RETURNING line_no, write_id`,
          [order, firstWriteId, lines],
        );
        for (const row of rows) {
          work.made({ role: 'lines', action: 'INSERT', key: `${order}/${row.line_no}`, version: 1, writeId: row.write_id });
        }
        work.onCommit(() => state.orders.set(order, lines));
        return;
      }
      case 'updateLine': {
        const order = state.pick([...state.orders.keys()]);
        if (order === undefined) return;
        const line = 1 + Math.floor(state.random() * state.orders.get(order)!);
        const writeId = state.nextWriteId();
        const rows = await work.query<{ version: number }>(
          `UPDATE ${sql.lines} SET version = version + 1, write_id = $3, qty = qty + 1 WHERE order_id = $1 AND line_no = $2 RETURNING version`,
          [order, line, writeId],
        );
        if (rows[0] !== undefined) work.made({ role: 'lines', action: 'UPDATE', key: `${order}/${line}`, version: rows[0].version, writeId });
        return;
      }
      case 'deleteOrder': {
        const order = state.pick([...state.orders.keys()]);
        if (order === undefined) return;
        const rows = await work.query<{ line_no: number; version: number; write_id: number }>(
          `DELETE FROM ${sql.lines} WHERE order_id = $1 RETURNING line_no, version, write_id`,
          [order],
        );
        for (const row of rows) {
          work.made({ role: 'lines', action: 'DELETE', key: `${order}/${row.line_no}`, version: row.version, writeId: row.write_id });
        }
        work.onCommit(() => state.orders.delete(order));
        return;
      }
      case 'insertAudit': {
        const writeId = state.nextWriteId();
        await work.query(`INSERT INTO ${sql.audit} (write_id, version, writer, detail) VALUES ($1, 1, $2, $3::jsonb)`, [
          writeId,
          writer,
          state.payload(),
        ]);
        work.made({ role: 'audit', action: 'INSERT', key: `w${writeId}`, version: 1, writeId });
        work.onCommit(() => state.audit.push(writeId));
        return;
      }
      case 'deleteAudit': {
        const writeId = state.pick(state.audit);
        if (writeId === undefined) return;
        const rows = await work.query<{ version: number }>(`DELETE FROM ${sql.audit} WHERE write_id = $1 RETURNING version`, [writeId]);
        if (rows[0] !== undefined) work.made({ role: 'audit', action: 'DELETE', key: `w${writeId}`, version: rows[0].version, writeId });
        work.onCommit(() => remove(state.audit, writeId));
        return;
      }
    }
  }
}

type Op =
  | { kind: 'insertItem'; huge?: boolean }
  | { kind: 'updateItem' | 'deleteItem' | 'insertOrder' | 'updateLine' | 'deleteOrder' | 'insertAudit' | 'deleteAudit' }
  | { kind: 'bumpHot'; hot: number };

interface TransactionPlan {
  readonly ops: Op[];
  /** Done inside a savepoint that is then rolled back. */
  readonly savepoint: Op[];
  readonly rollback: boolean;
}

const MIXED: readonly Op['kind'][] = [
  'bumpHot', 'bumpHot', 'bumpHot', 'insertItem', 'insertItem', 'updateItem', 'updateItem', 'deleteItem',
  'insertOrder', 'updateLine', 'deleteOrder', 'insertAudit', 'deleteAudit',
];

/** One writer's choices and the rows it owns (committed ones only). */
class WriterState {
  readonly writer: number;
  readonly items: number[] = [];
  readonly orders = new Map<number, number>();
  readonly audit: number[] = [];
  private itemCount = 0;
  private orderCount = 0;
  private writeCount = 0;
  private seed: number;

  constructor(writer: number, seed: string) {
    this.writer = writer;
    this.seed = createHash('sha256').update(`${seed}:${writer}`).digest().readUInt32BE(0);
  }

  /** mulberry32: small, fast, good enough to spread choices. */
  random(): number {
    let t = (this.seed = (this.seed + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  pick<T>(from: readonly T[]): T | undefined {
    return from.length === 0 ? undefined : from[Math.floor(this.random() * from.length)];
  }

  nextItem(): number {
    return this.writer * 1_000_000 + ++this.itemCount;
  }

  nextOrder(): number {
    return this.writer * 1_000_000 + ++this.orderCount;
  }

  /** Write ids are unique across writers (writer 0 seeds, the DDL actor is 90). */
  nextWriteId(count = 1): number {
    const first = this.writer * 10_000_000 + this.writeCount + 1;
    this.writeCount += count;
    return first;
  }

  plan(t: number, of: number): TransactionPlan {
    const rollback = this.chance(0.08);
    // Writers 1 and 2 each write one row past 1 MB, early and half-way.
    if ((this.writer === 1 && t === 5) || (this.writer === 2 && t === Math.floor(of / 2))) {
      return { ops: [{ kind: 'insertItem', huge: true }], savepoint: [], rollback: false };
    }
    const count = this.chance(0.4) ? 1 : 2 + Math.floor(this.random() * 6);
    const ops: Op[] = [];
    for (let i = 0; i < count; i++) ops.push(this.op(this.pick(MIXED)!));
    // Contended rows are locked in ascending order, so writers queue instead of deadlocking.
    const hot = ops.flatMap((op) => (op.kind === 'bumpHot' ? [op.hot] : [])).sort((a, b) => a - b);
    let next = 0;
    const ordered = ops.map((op) => (op.kind === 'bumpHot' ? { kind: 'bumpHot' as const, hot: hot[next++]! } : op));
    // The savepoint's contended row is the highest one, so the ascending lock order holds.
    const savepoint: Op[] = this.chance(0.12) ? [{ kind: 'insertItem' }, { kind: 'insertAudit' }, { kind: 'bumpHot', hot: HOT_ROWS }] : [];
    return { ops: ordered, savepoint, rollback };
  }

  private op(kind: Op['kind']): Op {
    return kind === 'bumpHot' ? { kind, hot: 1 + Math.floor(this.random() * HOT_ROWS) } : { kind };
  }

  payload(): string {
    return JSON.stringify({
      writer: this.writer,
      n: Math.floor(this.random() * 1e6),
      text: this.pick(UNICODE),
      nested: { list: [1, 2.5, null, true, { deep: this.pick(UNICODE) }], empty: {} },
    });
  }

  tags(): (string | null)[] | null {
    if (this.chance(0.15)) return null;
    return TAGS.filter(() => this.chance(0.4));
  }

  scores(): (number | null)[] | null {
    if (this.chance(0.2)) return null;
    return [Math.floor(this.random() * 100) - 50, this.chance(0.3) ? null : 7, 2_147_483_647];
  }

  /** NULL, unicode, short ASCII, or (rarely) past 8 kB, so TOAST is in play. */
  note(): string | null {
    const r = this.random();
    if (r < 0.15) return null;
    if (r < 0.7) return this.pick(UNICODE)!;
    if (r < 0.96) return `note ${Math.floor(this.random() * 1e9)}`;
    return `${this.pick(UNICODE)} ${randomBytes(6000 + Math.floor(this.random() * 6000)).toString('hex')}`;
  }

  amount(): string {
    const cents = Math.floor(this.random() * 20_000) - 10_000;
    return (cents / 100).toFixed(2);
  }
}

function hugeNote(): string {
  return `huge ü ${randomBytes(Math.ceil((HUGE_NOTE_BYTES * 3) / 4)).toString('base64')}`;
}

function remove(from: number[], value: number): void {
  const at = from.indexOf(value);
  if (at >= 0) from.splice(at, 1);
}
