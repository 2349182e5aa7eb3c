import { createHash } from 'node:crypto';
import type { ClientBase } from 'pg';
import { BusbarError } from '../../core/errors.ts';

/**
 * The newest schema version this code knows; a database ahead of it is
 * refused with `BUSBAR_ERR_STORE_SCHEMA`.
 *
 * @example
 * ```ts
 * // SELECT max(version) FROM busbar.migrations  -- equals SCHEMA_VERSION once migrated
 * ```
 */
export const SCHEMA_VERSION = 1;

/**
 * Everything the store derives from its schema name, computed once. Table
 * names are quoted with `pg`'s `escapeIdentifier`, so any schema name is
 * safe; lock keys and the channel are hashes, so they never need quoting.
 */
export interface SchemaNames {
  readonly schema: string;
  readonly quotedSchema: string;
  readonly events: string;
  readonly head: string;
  readonly streams: string;
  readonly checkpoints: string;
  readonly deadLetters: string;
  readonly processed: string;
  readonly migrations: string;
  /** `pg_advisory_xact_lock` key every append transaction takes: one writer at a time per schema. */
  readonly appendLock: string;
  /** A separate key so migrating never waits behind appends (nor the reverse). */
  readonly migrateLock: string;
  /** The LISTEN/NOTIFY channel that carries the new head after each commit. */
  readonly channel: string;
  /**
   * The name of a prepared statement of this schema: `pg` refuses one name
   * for two texts on a connection, and two stores (schemas) may share a pool.
   */
  statement(label: string): string;
}

/** Derives the names for `schema`; throws `BUSBAR_ERR_INVALID_ARGUMENT` for an unusable one. */
export function schemaNames(schema: string, escapeIdentifier: (name: string) => string): SchemaNames {
  // PostgreSQL silently truncates identifiers to 63 bytes: two long names
  // would share tables but not locks, which would break gap-free positions.
  if (typeof schema !== 'string' || schema.length === 0 || Buffer.byteLength(schema) > 63 || schema.includes('\0')) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `schema must be a name of 1-63 bytes without NUL, got ${JSON.stringify(schema)}`,
    );
  }
  const quotedSchema = escapeIdentifier(schema);
  const channel = `busbar_${createHash('sha256').update(schema).digest('hex').slice(0, 24)}`;
  const table = (name: string): string => `${quotedSchema}.${escapeIdentifier(name)}`;
  return {
    schema,
    quotedSchema,
    events: table('events'),
    head: table('head'),
    streams: table('streams'),
    checkpoints: table('checkpoints'),
    deadLetters: table('dead_letters'),
    processed: table('processed'),
    migrations: table('migrations'),
    appendLock: lockKey(`busbar.append:${schema}`),
    migrateLock: lockKey(`busbar.migrate:${schema}`),
    channel,
    statement: (label) => `${channel}_${label}`,
  };
}

/** A signed 64-bit key as decimal text, safe to inline in SQL. */
function lockKey(text: string): string {
  const digest = createHash('sha256').update(text).digest();
  return digest.readBigInt64BE(0).toString();
}

/** Each migration moves the schema from `version - 1` to `version`; never edit a shipped one. */
const migrations: readonly { version: number; sql: (names: SchemaNames) => string }[] = [
  {
    version: 1,
    sql: (n) => `
      -- One row: the last position handed out and the last recorded_at. It
      -- never goes back, so retention deleting the newest rows cannot make a
      -- position be reused, and recorded_at never decreases (positionAt).
      CREATE TABLE ${n.head} (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        position bigint NOT NULL,
        recorded_at timestamptz NOT NULL
      );
      INSERT INTO ${n.head} (position, recorded_at) VALUES (0, 'epoch');
      CREATE TABLE ${n.events} (
        position bigint PRIMARY KEY,
        id text NOT NULL UNIQUE,
        type text NOT NULL,
        stream text,
        stream_version bigint,
        recipients jsonb,
        event text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (stream, stream_version),
        CHECK ((stream IS NULL) = (stream_version IS NULL))
      );
      CREATE INDEX ON ${n.events} (recorded_at, position);
      CREATE TABLE ${n.streams} (
        stream text PRIMARY KEY,
        version bigint NOT NULL DEFAULT 0,
        metadata jsonb NOT NULL DEFAULT '{}'
      );
      CREATE TABLE ${n.checkpoints} (
        name text PRIMARY KEY,
        position bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE ${n.deadLetters} (
        id text PRIMARY KEY,
        -- Listing order is first-added order, as in the memory store.
        seq bigint GENERATED ALWAYS AS IDENTITY,
        subscription text NOT NULL,
        position bigint NOT NULL,
        event text NOT NULL,
        sequence bigint,
        error jsonb NOT NULL,
        attempts integer NOT NULL,
        failed_at text NOT NULL
      );
      CREATE TABLE ${n.processed} (
        consumer text NOT NULL,
        id text NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, id)
      );
    `,
  },
];

/**
 * Brings the schema up to {@link SCHEMA_VERSION} in one transaction under an
 * advisory lock, so processes starting together migrate once and the others
 * wait, then see the finished schema. Throws `BUSBAR_ERR_STORE_SCHEMA` when
 * the database is newer than this code.
 */
export async function migrate(client: ClientBase, names: SchemaNames): Promise<number> {
  await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${names.migrateLock})`);
  try {
    // Checked before creating: CREATE SCHEMA IF NOT EXISTS needs the CREATE
    // privilege even when the schema exists, which a runtime role may lack.
    const { rows: found } = await client.query<{ schema: boolean; migrations: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema, to_regclass($2) IS NOT NULL AS migrations',
      [names.schema, names.migrations],
    );
    if (!found[0]!.schema) await client.query(`CREATE SCHEMA ${names.quotedSchema}`);
    if (!found[0]!.migrations) {
      await client.query(
        `CREATE TABLE ${names.migrations} (
          version integer PRIMARY KEY,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`,
      );
    }
    const { rows } = await client.query<{ version: number | null }>(
      `SELECT max(version) AS version FROM ${names.migrations}`,
    );
    const current = rows[0]?.version ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new BusbarError(
        'BUSBAR_ERR_STORE_SCHEMA',
        `schema ${JSON.stringify(names.schema)} is at version ${current} but this Busbar knows up to version ${SCHEMA_VERSION}: upgrade Busbar`,
        { details: { schema: names.schema, database: current, code: SCHEMA_VERSION } },
      );
    }
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      await client.query(migration.sql(names));
      await client.query(`INSERT INTO ${names.migrations} (version) VALUES ($1)`, [migration.version]);
    }
    await client.query('COMMIT');
    return SCHEMA_VERSION;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
