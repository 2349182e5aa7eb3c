/**
 * What writers did, to reconcile the store against: every transaction with
 * the changes it made (read back with RETURNING, so the ledger holds what
 * PostgreSQL did, not what the writer meant), and how it ended. A COMMIT
 * whose answer was lost (the server restarted under it) is decided
 * afterwards by the transaction's row in an uncaptured ledger table.
 */
import pg from 'pg';
import type { Role } from './burst-tables.fixture.ts';

export type PlannedAction = 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE';

/** One row change a transaction made. TRUNCATE has key `*` and counts truncations of its table as version. */
export interface PlannedChange {
  readonly role: Role;
  readonly action: PlannedAction;
  readonly key: string;
  readonly version: number;
  /**
   * The row's `write_id` in the event: the one this change wrote (INSERT,
   * UPDATE), the deleted row's (DELETE), 0 for TRUNCATE. Write ids are never
   * reused, so a rolled-back write that shows up is caught even where its
   * identity matches a committed change's (a rolled-back UPDATE and the
   * next committed one both take the row from version n to n + 1).
   */
  readonly writeId: number;
}

/** `role|key|action|version`: unique per change, since versions only grow and keys are never reused. */
export function changeIdentity(change: PlannedChange): string {
  return `${change.role}|${change.key}|${change.action}|${change.version}`;
}

/**
 * `committed`: COMMIT returned. `rolled-back`: on purpose. `lost-committed`,
 * `lost-rolled-back`: the connection died during the transaction, and the
 * ledger table said how it ended.
 */
export type Outcome = 'committed' | 'rolled-back' | 'lost-committed' | 'lost-rolled-back';

export interface LedgerEntry {
  readonly tag: string;
  /** The changes the transaction made outside discarded savepoints (they arrive only if it committed). */
  readonly changes: readonly PlannedChange[];
  /** Changes made inside a savepoint that was rolled back: they must never arrive. */
  readonly discarded: readonly PlannedChange[];
  readonly outcome: Outcome;
}

export function isCommitted(entry: LedgerEntry): boolean {
  return entry.outcome === 'committed' || entry.outcome === 'lost-committed';
}

/** Every transaction of a scenario, and the errors writers met. */
export class BurstLedger {
  readonly entries: LedgerEntry[] = [];
  /** Errors that ended a transaction, by SQLSTATE or message; checked against what the fault explains. */
  readonly errors = new Map<string, number>();

  add(entry: LedgerEntry): void {
    this.entries.push(entry);
  }

  noteError(error: unknown): void {
    const code = (error as { code?: unknown }).code;
    const name = typeof code === 'string' ? code : (error as Error).message?.slice(0, 60) ?? String(error);
    this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
  }

  committed(): LedgerEntry[] {
    return this.entries.filter(isCommitted);
  }

  count(outcome: Outcome): number {
    return this.entries.filter((entry) => entry.outcome === outcome).length;
  }

  committedChanges(): number {
    return this.committed().reduce((sum, entry) => sum + entry.changes.length, 0);
  }
}

/** A writer's own connection that comes back after the server or a fault dropped it. */
export class WriterConnection {
  private readonly connectionString: string;
  private client: pg.Client | undefined;

  constructor(connectionString: string) {
    this.connectionString = connectionString;
  }

  async get(): Promise<pg.Client> {
    if (this.client !== undefined) return this.client;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const client = new pg.Client({ connectionString: this.connectionString, application_name: 'burst-writer' });
      client.on('error', () => {}); // a dropped connection fails the query in flight; that is handled there
      try {
        await client.connect();
        // Writers that hit a deadlock (a hot row in a savepoint) should know fast.
        await client.query(`SET deadlock_timeout = '100ms'`);
        this.client = client;
        return client;
      } catch (error) {
        destroy(client);
        if (Date.now() > deadline) throw new Error(`a writer could not reconnect for 60 s: ${(error as Error).message}`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Drops the connection: after any failure its state is unknown. */
  reset(): void {
    if (this.client !== undefined) destroy(this.client);
    this.client = undefined;
  }

  async end(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}

function destroy(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  client.end().catch(() => {});
}

/** The work of one transaction: statements that record the changes they made. */
export interface TransactionWork {
  /** Runs a statement in the transaction. */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /** Records a change the last statement made (from its RETURNING rows). */
  made(change: PlannedChange): void;
  /** Runs `work` inside a savepoint that is rolled back: what it records is discarded, its effects never run. */
  discardedSavepoint(work: () => Promise<void>): Promise<void>;
  /** Runs after the transaction committed (a writer's own bookkeeping: which rows it owns). */
  onCommit(effect: () => void): void;
}

/**
 * Runs one transaction on `connection` and records it in `ledger`. The
 * ledger row goes first, in the same transaction, so a lost COMMIT can be
 * decided by looking for it. Any failure drops the connection (its state is
 * unknown), reconnects and decides the outcome. Returns the entry.
 *
 * @example
 * ```ts
 * const entry = await runTransaction(connection, ledger, tables.ledgerSql, 'w1-t7', {}, async (work) => {
 *   const [row] = await work.query<{ version: number }>(`UPDATE … RETURNING version`, [id]);
 *   work.made({ role: 'hot', action: 'UPDATE', key: String(id), version: row!.version, writeId });
 * });
 * entry.outcome; // 'committed', or 'lost-committed' / 'lost-rolled-back' after a fault
 * ```
 */
export async function runTransaction(
  connection: WriterConnection,
  ledger: BurstLedger,
  ledgerSql: string,
  tag: string,
  options: { rollback?: boolean },
  body: (work: TransactionWork) => Promise<void>,
): Promise<LedgerEntry> {
  const changes: PlannedChange[] = [];
  const discarded: PlannedChange[] = [];
  const effects: (() => void)[] = [];
  let sink = { changes, effects };
  let savepoints = 0;
  let client: pg.Client | undefined;
  const work: TransactionWork = {
    async query(text, values) {
      return (await client!.query(text, values)).rows;
    },
    made(change) {
      sink.changes.push(change);
    },
    async discardedSavepoint(inner) {
      const name = `s${++savepoints}`;
      await client!.query(`SAVEPOINT ${name}`);
      const outer = sink;
      sink = { changes: [], effects: [] };
      try {
        await inner();
        await client!.query(`ROLLBACK TO SAVEPOINT ${name}`);
        discarded.push(...sink.changes);
      } finally {
        sink = outer;
      }
    },
    onCommit(effect) {
      sink.effects.push(effect);
    },
  };
  try {
    client = await connection.get();
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${ledgerSql} (tag) VALUES ($1)`, [tag]);
    await body(work);
    if (options.rollback === true) {
      await client.query('ROLLBACK');
      return record(ledger, { tag, changes, discarded, outcome: 'rolled-back' });
    }
    await client.query('COMMIT');
  } catch (error) {
    ledger.noteError(error);
    connection.reset();
    const committed = await wasCommitted(connection, ledgerSql, tag);
    if (committed) for (const effect of effects) effect();
    return record(ledger, { tag, changes, discarded, outcome: committed ? 'lost-committed' : 'lost-rolled-back' });
  }
  for (const effect of effects) effect();
  return record(ledger, { tag, changes, discarded, outcome: 'committed' });
}

function record(ledger: BurstLedger, entry: LedgerEntry): LedgerEntry {
  ledger.add(entry);
  return entry;
}

async function wasCommitted(connection: WriterConnection, ledgerSql: string, tag: string): Promise<boolean> {
  for (;;) {
    try {
      const client = await connection.get();
      const { rowCount } = await client.query(`SELECT 1 FROM ${ledgerSql} WHERE tag = $1`, [tag]);
      return rowCount === 1;
    } catch {
      connection.reset();
    }
  }
}
