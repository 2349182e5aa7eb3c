import type { Pool, PoolClient } from 'pg';
import { type AppendOutcome, type AppendRequest, writeAppends } from './append-batch.ts';
import type { SchemaNames } from './schema.ts';
import { storeError } from './store-errors.ts';

interface Pending {
  readonly request: AppendRequest;
  readonly resolve: (outcome: AppendOutcome) => void;
}

/** Bounds one transaction's size; the rest wait for the next one. */
const MAX_EVENTS_PER_TRANSACTION = 5000;

/**
 * Group commit: the appends this process makes while a transaction is in
 * flight wait, then all go in the next one. Appends serialize on the schema's
 * advisory lock anyway, so one transaction at a time loses nothing, and under
 * load one lock, one round trip set and one commit serve many callers.
 */
export class GroupCommit {
  private readonly queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** How many append transactions have committed: fewer than calls when they were grouped. */
  transactions = 0;

  private readonly pool: Pool;
  private readonly names: SchemaNames;
  private readonly notify: boolean;
  private readonly committed: (head: number) => void;

  constructor(pool: Pool, names: SchemaNames, notify: boolean, committed: (head: number) => void) {
    this.pool = pool;
    this.names = names;
    this.notify = notify;
    this.committed = committed;
  }

  submit(request: AppendRequest): Promise<AppendOutcome> {
    return new Promise((resolve) => {
      this.queue.push({ request, resolve });
      this.flushing ??= this.flushAll();
    });
  }

  /** Resolves once everything submitted so far is settled. */
  async drain(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  private async flushAll(): Promise<void> {
    while (this.queue.length > 0) {
      let client: PoolClient;
      try {
        client = await this.pool.connect();
      } catch (error) {
        for (const pending of this.queue.splice(0)) pending.resolve({ ok: false, error: storeError(error) });
        break;
      }
      // Taken once a connection is ready, so the appends made meanwhile join.
      await this.flushGroup(this.take(), client);
    }
    this.flushing = undefined;
  }

  private take(): Pending[] {
    let events = 0;
    let count = 0;
    while (count < this.queue.length && (count === 0 || events + this.queue[count]!.request.events.length <= MAX_EVENTS_PER_TRANSACTION)) {
      events += this.queue[count]!.request.events.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async flushGroup(group: Pending[], client: PoolClient): Promise<void> {
    try {
      const outcomes = await this.commit(group.map((pending) => pending.request), client);
      group.forEach((pending, i) => pending.resolve(outcomes[i]!));
    } catch (error) {
      if (group.length === 1 || isConnectionFailure(error)) {
        for (const pending of group) pending.resolve({ ok: false, error: storeError(error) });
        return;
      }
      // A statement the server refused (say, a NUL byte in a stream id)
      // should fail its own caller, not everyone grouped with it: retry alone.
      for (const pending of group) {
        try {
          await this.flushGroup([pending], await this.pool.connect());
        } catch (connectError) {
          pending.resolve({ ok: false, error: storeError(connectError) });
        }
      }
    }
  }

  /** Runs one append transaction on `client` and releases it (destroying it if the connection broke). */
  private async commit(requests: readonly AppendRequest[], client: PoolClient): Promise<AppendOutcome[]> {
    let broken: Error | undefined;
    try {
      // READ COMMITTED explicitly: the head must be read with a snapshot taken
      // after the lock, whatever default_transaction_isolation says.
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
      try {
        const { outcomes, head } = await writeAppends(client, this.names, requests, this.notify);
        await client.query('COMMIT');
        this.transactions++;
        this.committed(head);
        return outcomes;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
        throw error;
      }
    } catch (error) {
      if (isConnectionFailure(error)) broken ??= error as Error;
      throw error;
    } finally {
      client.release(broken);
    }
  }
}

/**
 * A failure of the connection rather than of a statement: SQLSTATE class 08
 * or 57P (shutdown), or a socket error with no SQLSTATE at all.
 */
export function isConnectionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return true;
  return code.startsWith('08') || code.startsWith('57P') || /^E[A-Z]+$/.test(code);
}
