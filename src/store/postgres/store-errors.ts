import { BusbarError } from '../../core/errors.ts';

/**
 * What a failed query becomes: Busbar's own errors (a concurrency conflict, a
 * closed store) pass through; a value the server cannot store is
 * `BUSBAR_ERR_INVALID_ARGUMENT`; anything else from the driver or the server
 * is `BUSBAR_ERR_STORE_UNAVAILABLE`. The original is the `cause` and its
 * SQLSTATE is in `details.sqlState`.
 */
export function storeError(error: unknown): BusbarError {
  if (error instanceof BusbarError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const sqlState = (error as { code?: unknown } | null)?.code;
  const details = typeof sqlState === 'string' ? { sqlState } : undefined;
  // Class 22 is a value the server cannot store (a NUL byte in text, say):
  // the caller's argument is at fault, and retrying will not help.
  if (typeof sqlState === 'string' && sqlState.startsWith('22')) {
    return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `PostgreSQL refused a value: ${message}`, { cause: error, details });
  }
  return new BusbarError('BUSBAR_ERR_STORE_UNAVAILABLE', `PostgreSQL store: ${message}`, { cause: error, details });
}

export function closedError(): BusbarError {
  return new BusbarError('BUSBAR_ERR_CLOSED', 'the store is closed');
}
