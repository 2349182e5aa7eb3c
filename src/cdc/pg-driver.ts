import type pg from 'pg';
import { BusbarError } from '../core/errors.ts';

/** The `pg` module: its Client, Pool and quoting functions. */
export type PgDriver = typeof pg;

let loading: Promise<PgDriver> | undefined;

/**
 * Loads the optional peer dependency `pg` once. Without it, fails with
 * `BUSBAR_ERR_MISSING_DRIVER` naming the package to install.
 *
 * @example
 * ```ts
 * const { Client, escapeIdentifier } = await loadPgDriver();
 * ```
 */
export function loadPgDriver(): Promise<PgDriver> {
  loading ??= import('pg').then(
    // The default export is the CommonJS module itself, with or without pg's ESM wrapper.
    (module) => (module as unknown as { default: PgDriver }).default,
    (error: unknown) => {
      loading = undefined;
      if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
      throw new BusbarError('BUSBAR_ERR_MISSING_DRIVER', 'busbar/cdc needs the PostgreSQL driver: npm i pg', {
        cause: error,
        details: { package: 'pg' },
      });
    },
  );
  return loading;
}
