/**
 * `busbar/store/postgres`: the durable log in PostgreSQL. Needs the optional
 * peer dependency `pg` (`npm i pg`): without it, importing this entry fails
 * with `BUSBAR_ERR_MISSING_DRIVER`.
 *
 * @module
 */
import { BusbarError } from '../../core/errors.ts';
import { type PgDriver, PostgresStore, type PostgresStoreOptions } from './postgres-store.ts';

export { PostgresStore, type PostgresStoreOptions } from './postgres-store.ts';
export { SCHEMA_VERSION } from './schema.ts';

// Loaded when this entry is imported, so a missing driver fails at the
// import, naming what to install, and not at the first publish.
const driver = await loadDriver();

async function loadDriver(): Promise<PgDriver> {
  try {
    // The default export is the CommonJS module itself: it has Pool and
    // escapeIdentifier in every pg 8 release, with or without pg's ESM wrapper.
    return (await import('pg')).default;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new BusbarError(
      'BUSBAR_ERR_MISSING_DRIVER',
      'busbar/store/postgres needs the PostgreSQL driver: npm i pg',
      { cause: error, details: { package: 'pg' } },
    );
  }
}

/**
 * Opens the PostgreSQL store: connects, creates or migrates its schema (once,
 * even when several processes start together) and starts listening for
 * commits. It resolves when the store is ready, so a wrong address or a
 * database with a newer Busbar schema fails here, not on the first publish.
 *
 * Rejects with `BUSBAR_ERR_STORE_UNAVAILABLE` when the database cannot be
 * reached and `BUSBAR_ERR_STORE_SCHEMA` when its schema is newer than this
 * code.
 *
 * @example
 * ```ts
 * import { createBus } from 'busbar';
 * import { createPostgresStore } from 'busbar/store/postgres';
 *
 * const store = await createPostgresStore({ connectionString: process.env.DATABASE_URL });
 * const bus = createBus({ store });
 * ```
 */
export async function createPostgresStore(options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  return PostgresStore.open(driver, options);
}
