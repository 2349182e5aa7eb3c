import type { ClientBase, QueryConfig } from 'pg';
import type { CaptureNames } from './capture-schema.ts';
import type { ChangeRow } from './change-decoder.ts';

/** A numbered transaction before its rows are fetched. */
export interface CommitEntry {
  readonly seq: number;
  readonly txid: string;
  readonly committedAt: string;
  readonly changes: number;
}

/** A numbered transaction with its change rows (none when it is too large for a batch). */
export interface NumberedTransaction {
  readonly commit: CommitEntry;
  readonly rows: ChangeRow[];
}

/** One read of numbered transactions. */
export interface NumberedBatch {
  readonly transactions: readonly NumberedTransaction[];
  /** True when nothing numbered is left after these: the next step is a tick, not another read. */
  readonly drained: boolean;
}

/** What one tick found, and what the idle logic needs to know about running transactions. */
export interface TickResult {
  /** Transactions numbered by this tick. */
  readonly ticked: number;
  /** Oldest xid still running when the tick looked (all below it have ended). */
  readonly oldestRunning: bigint;
  /** The next xid to be assigned then: every transaction running at the time has a smaller one. */
  readonly nextXid: bigint;
}

const COMMITTED_AT = `to_char(committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * A tick numbers everything committed since the last one in one statement:
 * after a long outage that is a large backlog, which must not hit the
 * ordinary query timeout (every retry would fail the same way). A frozen
 * link is the watchdog's to detect; aborting the stream cuts the connection.
 */
const TICK_TIMEOUT_MS = 60 * 60_000;

/**
 * The reader's SQL against Busbar's tables, on the reader's own connection.
 * Prepared statements are named per schema (pg refuses one name for two
 * texts on a connection).
 */
export class ChangeLog {
  private readonly client: ClientBase;
  private readonly names: CaptureNames;

  constructor(client: ClientBase, names: CaptureNames) {
    this.client = client;
    this.names = names;
  }

  /**
   * Registers `reader` (idempotent). Returns its checkpoint, and where
   * pruning stands: the position before the oldest transaction still kept.
   */
  async register(reader: string): Promise<{ checkpoint: number; pruned: number }> {
    await this.client.query(`INSERT INTO ${this.names.readers} (name) VALUES ($1) ON CONFLICT DO NOTHING`, [reader]);
    const { rows } = await this.client.query<{ checkpoint: string; pruned: string }>(
      `SELECT r.checkpoint::text,
              least(r.checkpoint, coalesce((SELECT min(commit_seq) - 1 FROM ${this.names.commits}), r.checkpoint))::text AS pruned
       FROM ${this.names.readers} r WHERE r.name = $1`,
      [reader],
    );
    return { checkpoint: Number(rows[0]!.checkpoint), pruned: Number(rows[0]!.pruned) };
  }

  /** Takes the reader's session lock; false when another process streams as the same reader. */
  async lockReader(reader: string): Promise<boolean> {
    const { rows } = await this.client.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock(${this.names.readerLock(reader)}) AS locked`,
    );
    return rows[0]!.locked;
  }

  /** Numbers the transactions committed since the last tick (durably, before any of them is delivered). */
  async tick(): Promise<TickResult> {
    const { rows } = await this.client.query<{ ticked: string; oldest_running: string; next_xid: string }>({
      name: this.statement('tick'),
      text: `SELECT ticked::text, oldest_running, next_xid FROM ${this.names.tickFunction}()`,
      query_timeout: TICK_TIMEOUT_MS,
    } as QueryConfig);
    const row = rows[0]!;
    return { ticked: Number(row.ticked), oldestRunning: BigInt(row.oldest_running), nextXid: BigInt(row.next_xid) };
  }

  /**
   * The next numbered transactions after `seq` with their change rows, in one
   * round trip: as many whole transactions as fit in `rows` change rows (at
   * least one). A first transaction larger than that comes without rows
   * (`rows` empty, `changes` > limit): read it with {@link changesPage}.
   */
  async batchAfter(seq: number, rows: number): Promise<NumberedBatch> {
    const { rows: found } = await this.client.query<
      { seq: string; txid: string; committed_at: string; changes: number; fetched: string } & {
        [K in keyof ChangeRow]: ChangeRow[K] | null;
      }
    >({
      name: this.statement('batch'),
      text: `WITH m AS (
               SELECT x.*, sum(x.changes) OVER (ORDER BY x.commit_seq) AS upto
               FROM (SELECT commit_seq, txid, committed_at, changes FROM ${this.names.commits}
                     WHERE commit_seq > $1 ORDER BY commit_seq LIMIT $2) x
             )
             SELECT m.commit_seq::text AS seq, m.txid::text, ${COMMITTED_AT} AS committed_at, m.changes,
                    (SELECT count(*) FROM m)::text AS fetched,
                    c.id::text AS id, c.schema_name AS schema, c.table_name AS "table", c.action,
                    c.new_row::text AS "newRow", c.old_row::text AS "oldRow"
             FROM m LEFT JOIN ${this.names.changes} c ON c.txid = m.txid AND m.changes <= $2
             WHERE m.upto <= $2 OR m.upto = m.changes
             ORDER BY m.commit_seq, c.id`,
      values: [seq, rows],
    });
    const transactions: NumberedTransaction[] = [];
    for (const row of found) {
      let last = transactions.at(-1);
      if (last === undefined || last.commit.seq !== Number(row.seq)) {
        last = { commit: { seq: Number(row.seq), txid: row.txid, committedAt: row.committed_at, changes: row.changes }, rows: [] };
        transactions.push(last);
      }
      if (row.id !== null) last.rows.push(row as ChangeRow);
    }
    const fetched = found.length === 0 ? 0 : Number(found[0]!.fetched);
    return { transactions, drained: fetched < rows && fetched === transactions.length };
  }

  /** One page of a large transaction's rows after change id `afterId`. */
  async changesPage(txid: string, afterId: string, limit: number): Promise<ChangeRow[]> {
    const { rows } = await this.client.query<ChangeRow>({
      name: this.statement('changes-page'),
      text: `SELECT id::text AS id, schema_name AS schema, table_name AS "table", action,
                    new_row::text AS "newRow", old_row::text AS "oldRow"
             FROM ${this.names.changes} WHERE txid = $1::xid8 AND id > $2::bigint ORDER BY id LIMIT $3`,
      values: [txid, afterId, limit],
    });
    return rows;
  }

  async saveCheckpoint(reader: string, seq: number): Promise<void> {
    await this.client.query({
      name: this.statement('checkpoint'),
      text: `UPDATE ${this.names.readers} SET checkpoint = greatest(checkpoint, $2), updated_at = now() WHERE name = $1`,
      values: [reader, seq],
    });
  }

  /**
   * Deletes transactions every registered reader has acknowledged, at most
   * `chunk` commits per statement, so pruning a long backlog never holds
   * one huge transaction. Returns how far it pruned.
   */
  async prune(after: number, chunk: number): Promise<number> {
    const { rows } = await this.client.query<{ upto: string | null }>({
      name: this.statement('prune'),
      text: `WITH upto AS (SELECT least(coalesce(min(checkpoint), $1::bigint), $1::bigint + $2) AS seq FROM ${this.names.readers}),
             gone AS (DELETE FROM ${this.names.commits} m USING upto WHERE m.commit_seq <= upto.seq RETURNING m.txid),
             rows AS (DELETE FROM ${this.names.changes} c USING gone WHERE c.txid = gone.txid RETURNING 1)
             SELECT (SELECT seq FROM upto)::text AS upto, (SELECT count(*) FROM rows) AS deleted`,
      values: [after, chunk],
    });
    return rows[0]!.upto === null ? after : Number(rows[0]!.upto);
  }

  /**
   * Marks the reader idle until `forMs` from now: writers NOTIFY while the
   * mark is ahead of their clock. setval is not transactional, so writers see
   * it at once; the expiry stops the wake-ups if this process dies idle.
   */
  async idleFor(forMs: number): Promise<void> {
    await this.client.query({
      name: this.statement('idle'),
      text: `SELECT setval($1::regclass, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $2, true)`,
      values: [this.names.idleUntil, forMs],
    });
  }

  async busy(): Promise<void> {
    await this.client.query({
      name: this.statement('busy'),
      text: 'SELECT setval($1::regclass, 0, true)',
      values: [this.names.idleUntil],
    });
  }

  async listen(): Promise<void> {
    await this.client.query(`LISTEN ${this.names.channel}`);
  }

  private statement(label: string): string {
    return `${this.names.channel}_${label}`;
  }
}
