import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { BusbarError, toError } from '../../core/errors.ts';

/** What the store does around each group transaction. */
export interface GroupHooks {
  /** After BEGIN: read what the group's writes share (the head). */
  begin(): void;
  /** Before COMMIT: write it back once. */
  beforeCommit(): void;
  /** After COMMIT: wake readers. */
  committed(): void;
}

interface Write {
  apply: (database: DatabaseSync) => unknown;
  resolve: (value: any) => void;
  reject: (error: Error) => void;
}

/**
 * Group commit. Writes requested in the same turn of the event loop share
 * one transaction and so one fsync: sixteen concurrent publishers pay for one
 * disk flush, not sixteen. Each write runs in its own savepoint, so one that
 * fails (a concurrency conflict) is rolled back alone and the others commit.
 * A write's promise settles only after COMMIT returned, that is after the
 * fsync (the database runs with `synchronous = FULL`).
 *
 * `exclusive` runs an async callback in a transaction of its own; writes
 * queued meanwhile wait for it.
 */
export class WriteQueue {
  private readonly database: DatabaseSync;
  private pending: Write[] = [];
  private scheduled = false;
  private busy: Promise<unknown> | undefined;
  /** Transactions committed; tests and benchmarks read it to see writes grouped. */
  commits = 0;
  private readonly hooks: GroupHooks;
  private readonly savepoint: StatementSync;
  private readonly release: StatementSync;
  private readonly rollbackTo: StatementSync;

  constructor(database: DatabaseSync, hooks: GroupHooks) {
    this.database = database;
    this.hooks = hooks;
    this.savepoint = database.prepare('SAVEPOINT busbar_write');
    this.release = database.prepare('RELEASE busbar_write');
    this.rollbackTo = database.prepare('ROLLBACK TO busbar_write');
  }

  write<T>(apply: (database: DatabaseSync) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ apply, resolve, reject });
      if (!this.scheduled && this.busy === undefined) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    // An exclusive transaction is open; it reschedules the flush when done.
    if (this.busy !== undefined) return;
    const writes = this.pending;
    if (writes.length === 0) return;
    this.pending = [];
    const database = this.database;
    const grouped = writes.length > 1;
    const results: unknown[] = new Array(writes.length);
    const failures: (Error | undefined)[] = new Array(writes.length);
    try {
      database.exec('BEGIN IMMEDIATE');
      this.hooks.begin();
      for (let i = 0; i < writes.length; i++) {
        if (grouped) this.savepoint.run();
        try {
          results[i] = writes[i]!.apply(database);
          if (grouped) this.release.run();
        } catch (error) {
          failures[i] = toError(error);
          if (grouped) {
            this.rollbackTo.run();
            this.release.run();
          }
        }
      }
      const commit = grouped || failures[0] === undefined;
      if (commit) this.hooks.beforeCommit();
      database.exec(commit ? 'COMMIT' : 'ROLLBACK');
      if (commit) this.commits++;
    } catch (error) {
      if (database.isTransaction) database.exec('ROLLBACK');
      const failure = unavailable(error);
      for (const write of writes) write.reject(failure);
      return;
    }
    for (let i = 0; i < writes.length; i++) {
      const failure = failures[i];
      if (failure === undefined) writes[i]!.resolve(results[i]);
      else writes[i]!.reject(failure);
    }
    this.hooks.committed();
  };

  /** Runs `work` alone in one transaction, after the writes already queued. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    while (this.busy !== undefined) await this.busy.catch(() => {});
    if (this.pending.length > 0) {
      this.scheduled = false;
      this.flush();
    }
    const run = (async () => {
      this.database.exec('BEGIN IMMEDIATE');
      try {
        const result = await work();
        this.database.exec('COMMIT');
        this.commits++;
        return result;
      } catch (error) {
        if (this.database.isTransaction) this.database.exec('ROLLBACK');
        throw error;
      }
    })();
    this.busy = run;
    try {
      return await run;
    } finally {
      this.busy = undefined;
      this.hooks.committed();
      if (this.pending.length > 0 && !this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    }
  }
}

function unavailable(error: unknown): BusbarError {
  const cause = toError(error);
  return new BusbarError('BUSBAR_ERR_STORE_UNAVAILABLE', `SQLite write failed: ${cause.message}`, { cause });
}
