import type { ClientBase } from 'pg';
import { BusbarError } from '../../core/errors.ts';
import { type AppendOutcome, type AppendRequest, writeAppends } from './append-batch.ts';
import type { SchemaNames } from './schema.ts';
import { storeError } from './store-errors.ts';

/**
 * The outbox: appends inside the caller's open transaction on their own
 * client, so their write and the events commit or roll back together.
 *
 * It runs under a savepoint, which also proves a transaction is open (outside
 * one the append lock would be released at once and positions could race)
 * and lets a failed append leave the caller's transaction usable. The append
 * lock is then held until the caller commits or rolls back: every other
 * append to this schema waits that long.
 */
export async function appendInTransaction(
  client: ClientBase,
  names: SchemaNames,
  request: AppendRequest,
  notify: boolean,
): Promise<AppendOutcome & { ok: true }> {
  try {
    await client.query('SAVEPOINT busbar_append');
  } catch (error) {
    if ((error as { code?: unknown }).code === '25P01') {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_ARGUMENT',
        'appendWithin needs a client inside an open transaction: run BEGIN on it first',
        { cause: error },
      );
    }
    throw storeError(error);
  }
  let outcome: AppendOutcome;
  try {
    // NOTIFY inside the caller's transaction is delivered only if it commits,
    // which is what wakes readers (this process's too, through its listener).
    outcome = (await writeAppends(client, names, [request], notify)).outcomes[0]!;
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT busbar_append').catch(() => {});
    throw storeError(error);
  }
  try {
    // A refused append wrote nothing; rolling back to the savepoint also
    // releases the append lock, so other writers need not wait for the caller.
    await client.query(outcome.ok ? 'RELEASE SAVEPOINT busbar_append' : 'ROLLBACK TO SAVEPOINT busbar_append');
  } catch (error) {
    throw storeError(error);
  }
  if (!outcome.ok) throw outcome.error;
  return outcome;
}
