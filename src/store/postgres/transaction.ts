import type { Pool, PoolClient } from 'pg';
import { storeError } from './store-errors.ts';

/**
 * Runs `work` between BEGIN and COMMIT on a client of `pool`, rolling back if
 * it throws. What `work` throws is rethrown as it is when `rethrowAsIs` (the
 * caller's own errors), else as a store error; failures of BEGIN, COMMIT and
 * the connection always become store errors.
 */
export async function runTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
  rethrowAsIs: boolean,
): Promise<T> {
  let client: PoolClient | undefined;
  try {
    client = await pool.connect();
    await client.query('BEGIN');
  } catch (error) {
    client?.release(error as Error);
    throw storeError(error);
  }
  let result: T;
  try {
    result = await work(client);
  } catch (error) {
    let broken: Error | undefined;
    await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
    client.release(broken);
    throw rethrowAsIs ? error : storeError(error);
  }
  let committed;
  try {
    committed = await client.query('COMMIT');
  } catch (error) {
    client.release(error as Error);
    throw storeError(error);
  }
  client.release();
  // COMMIT of a transaction an earlier error aborted "succeeds" but rolls
  // back: the caller must not believe its writes were kept.
  if (committed.command === 'ROLLBACK') {
    throw storeError(new Error('the transaction was rolled back: a statement in it failed earlier'));
  }
  return result;
}
