import { createHash } from 'node:crypto';
import type { ClientBase } from 'pg';
import { BusbarError } from '../../core/errors.ts';

/**
 * The newest version of Busbar's trigger-mode schema this code knows; a
 * database ahead of it is refused with `BUSBAR_ERR_CDC_SETUP`.
 *
 * @example
 * ```ts
 * // SELECT max(version) FROM busbar_cdc.migrations  -- equals CAPTURE_SCHEMA_VERSION once installed
 * ```
 */
export const CAPTURE_SCHEMA_VERSION = 1;

/** The start of the comment on every table of a Busbar capture schema; such tables are never captured. */
export const CAPTURE_TABLE_MARK = 'busbar change capture';

/** pg's quoting functions, passed in so this module needs no driver at import time. */
export interface Quoting {
  escapeIdentifier(name: string): string;
  escapeLiteral(text: string): string;
}

/**
 * Everything derived from Busbar's schema name, computed once. Relations are
 * quoted identifiers; the channel, trigger names and lock keys are hashes of
 * the schema name, so they never need quoting and two Busbar schemas in one
 * database never share them.
 */
export interface CaptureNames {
  readonly schema: string;
  readonly quotedSchema: string;
  readonly changes: string;
  readonly commits: string;
  readonly ticks: string;
  readonly readers: string;
  readonly migrations: string;
  /** Non-transactional flag: epoch milliseconds until which some reader waits for a NOTIFY; 0 while busy. */
  readonly idleUntil: string;
  /** The row/statement trigger function installed on captured tables. */
  readonly captureFunction: string;
  /** Numbers the transactions that committed since the last tick. */
  readonly tickFunction: string;
  /** LISTEN/NOTIFY channel: an empty wake-up, never a payload. */
  readonly channel: string;
  /** Trigger names on captured tables (unquoted; they are plain ASCII). */
  readonly rowTrigger: string;
  readonly truncateTrigger: string;
  readonly migrateLock: string;
  readonly tickLock: string;
  /** Session advisory lock key held by the one process streaming as `reader`. */
  readerLock(reader: string): string;
}

/** Derives the names for `schema`; throws `BUSBAR_ERR_INVALID_ARGUMENT` for an unusable one. */
export function captureNames(schema: string, quoting: Quoting): CaptureNames {
  if (typeof schema !== 'string' || schema.length === 0 || Buffer.byteLength(schema) > 63 || schema.includes('\0')) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `schema must be a name of 1-63 bytes without NUL, got ${JSON.stringify(schema)}`,
    );
  }
  const quotedSchema = quoting.escapeIdentifier(schema);
  const hash = createHash('sha256').update(schema).digest('hex');
  const qualified = (name: string): string => `${quotedSchema}.${quoting.escapeIdentifier(name)}`;
  return {
    schema,
    quotedSchema,
    changes: qualified('changes'),
    commits: qualified('commits'),
    ticks: qualified('ticks'),
    readers: qualified('readers'),
    migrations: qualified('migrations'),
    idleUntil: qualified('idle_until'),
    captureFunction: qualified('capture_change'),
    tickFunction: qualified('tick'),
    channel: `busbar_cdc_${hash.slice(0, 24)}`,
    rowTrigger: `busbar_cdc_${hash.slice(0, 12)}`,
    truncateTrigger: `busbar_cdc_${hash.slice(0, 12)}_truncate`,
    migrateLock: lockKey(`busbar.cdc.migrate:${schema}`),
    tickLock: lockKey(`busbar.cdc.tick:${schema}`),
    readerLock: (reader) => lockKey(`busbar.cdc.reader:${schema}:${reader}`),
  };
}

/** A signed 64-bit key as decimal text, safe to inline in SQL. */
function lockKey(text: string): string {
  return createHash('sha256').update(text).digest().readBigInt64BE(0).toString();
}

/** Wraps a function body in a dollar quote whose tag the body cannot contain. */
function dollarQuoted(body: string): string {
  let tag = '$busbar$';
  for (let n = 0; body.includes(tag); n++) tag = `$busbar${n}$`;
  return `${tag}${body}${tag}`;
}

/** Each migration moves the schema from `version - 1` to `version`; never edit a shipped one. */
const migrations: readonly { version: number; sql: (n: CaptureNames, q: Quoting) => string }[] = [
  {
    version: 1,
    sql: (n, q) => `
      -- One row per captured change, written in the writer's transaction.
      -- id comes from an uncached sequence, so it grows in real time across
      -- all backends: a transaction that wrote a row after another committed
      -- has a larger last id (the tick orders transactions by it).
      CREATE TABLE ${n.changes} (
        id bigint GENERATED ALWAYS AS IDENTITY (CACHE 1),
        txid xid8 NOT NULL,
        schema_name text NOT NULL,
        table_name text NOT NULL,
        action text NOT NULL,
        changed_at timestamptz NOT NULL,
        new_row jsonb,
        old_row jsonb,
        PRIMARY KEY (txid, id)
      ) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

      -- One row per committed transaction, numbered by a tick (never by
      -- writers): commit_seq is the delivery order and the reader's cursor.
      CREATE TABLE ${n.commits} (
        commit_seq bigint PRIMARY KEY,
        txid xid8 NOT NULL,
        committed_at timestamptz NOT NULL,
        changes integer NOT NULL
      ) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

      -- The snapshot of the last tick: transactions visible in it are numbered.
      CREATE TABLE ${n.ticks} (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        snapshot pg_snapshot,
        last_seq bigint NOT NULL DEFAULT 0
      );
      INSERT INTO ${n.ticks} DEFAULT VALUES;

      CREATE TABLE ${n.readers} (
        name text PRIMARY KEY,
        checkpoint bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      -- Marks Busbar's tables so no Busbar installation ever captures
      -- another's (two capturing each other's change tables would loop).
      COMMENT ON TABLE ${n.changes} IS '${CAPTURE_TABLE_MARK}: changes';
      COMMENT ON TABLE ${n.commits} IS '${CAPTURE_TABLE_MARK}: numbered transactions';
      COMMENT ON TABLE ${n.ticks} IS '${CAPTURE_TABLE_MARK}: last tick';
      COMMENT ON TABLE ${n.readers} IS '${CAPTURE_TABLE_MARK}: readers and checkpoints';

      -- A sequence, not a table row: setval is visible at once without a
      -- commit, and writers read it with a function call, not a query.
      CREATE SEQUENCE ${n.idleUntil} MINVALUE 0 START 0 CACHE 1;
      SELECT setval(${q.escapeLiteral(n.idleUntil)}, 0, true);

      -- SECURITY DEFINER so writers need no rights on this schema. Without
      -- SET search_path (a SET clause costs writers several microseconds per
      -- row), so every function and operator is schema-qualified: a writer's
      -- search_path cannot redirect anything. No EXCEPTION block: a
      -- subtransaction per row is expensive, and nothing here depends on the
      -- row's content except to_jsonb, which encodes every value of every type.
      CREATE FUNCTION ${n.captureFunction}() RETURNS trigger
      LANGUAGE plpgsql SECURITY DEFINER AS ${dollarQuoted(`
      BEGIN
        INSERT INTO ${n.changes} (txid, schema_name, table_name, action, changed_at, new_row, old_row)
        VALUES (pg_catalog.pg_current_xact_id(), TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP,
                pg_catalog.clock_timestamp(), pg_catalog.to_jsonb(NEW), pg_catalog.to_jsonb(OLD));
        -- Wake a waiting reader. Checked after the INSERT, so a reader that
        -- goes idle after this check sees our xid as running and re-ticks
        -- until it ends. NOTIFY runs at commit and collapses repeats within
        -- a transaction, so a busy reader costs writers nothing here.
        IF pg_catalog.pg_sequence_last_value(${q.escapeLiteral(n.idleUntil)}::pg_catalog.regclass)
           OPERATOR(pg_catalog.>) (pg_catalog.date_part('epoch', pg_catalog.now()) OPERATOR(pg_catalog.*) 1000) THEN
          PERFORM pg_catalog.pg_notify(${q.escapeLiteral(n.channel)}, '');
        END IF;
        RETURN NULL;
      END`)};
      REVOKE ALL ON FUNCTION ${n.captureFunction}() FROM PUBLIC;

      -- Numbers every transaction that committed between the last tick's
      -- snapshot and this statement's own, in the order of its last change:
      -- if B wrote a row after A committed, B's last id is larger, so one
      -- row's changes are never reordered. Visibility, not ids, decides what
      -- is included: nothing in flight is skipped, nothing aborted appears.
      CREATE FUNCTION ${n.tickFunction}(OUT ticked bigint, OUT last_seq bigint, OUT oldest_running text, OUT next_xid text)
      LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS ${dollarQuoted(`
      DECLARE
        prev pg_snapshot;
        base bigint;
        cur pg_snapshot;
      BEGIN
        PERFORM pg_advisory_xact_lock(${n.tickLock});
        SELECT t.snapshot, t.last_seq INTO prev, base FROM ${n.ticks} t;
        WITH now_snapshot AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
        found AS (
          SELECT c.txid, max(c.id) AS last_id, count(*) AS changes, max(c.changed_at) AS changed_at
          FROM ${n.changes} c, now_snapshot
          WHERE c.txid >= coalesce(pg_snapshot_xmin(prev), '0'::xid8)
            AND c.txid < pg_snapshot_xmax(now_snapshot.s)
            AND pg_visible_in_snapshot(c.txid, now_snapshot.s)
            AND (prev IS NULL OR NOT pg_visible_in_snapshot(c.txid, prev))
          GROUP BY c.txid
        ),
        numbered AS (
          INSERT INTO ${n.commits} (commit_seq, txid, committed_at, changes)
          -- The exact commit time when the server tracks it, else the time
          -- of the transaction's last change.
          SELECT base + row_number() OVER (ORDER BY f.last_id), f.txid,
                 coalesce(CASE WHEN current_setting('track_commit_timestamp')::boolean
                               THEN pg_xact_commit_timestamp(xid(f.txid)) END, f.changed_at),
                 f.changes
          FROM found f
          RETURNING 1
        )
        SELECT (SELECT s FROM now_snapshot), (SELECT count(*) FROM numbered) INTO cur, ticked;
        IF ticked > 0 THEN
          UPDATE ${n.ticks} SET snapshot = cur, last_seq = base + ticked;
        END IF;
        last_seq := base + ticked;
        oldest_running := pg_snapshot_xmin(cur)::text;
        -- age() of an xid counts from the next xid to be assigned, without
        -- assigning one: every transaction running now has an xid below this.
        next_xid := (pg_snapshot_xmin(cur)::text::numeric + age(xid(pg_snapshot_xmin(cur))))::text;
      END`)};
    `,
  },
];

/**
 * Brings Busbar's schema up to {@link CAPTURE_SCHEMA_VERSION} in one
 * transaction under an advisory lock, so processes starting together install
 * once. Throws `BUSBAR_ERR_CDC_SETUP` when the database is newer than this
 * code, the schema holds tables Busbar did not make, or the role lacks the
 * rights to create the schema.
 */
export async function migrate(client: ClientBase, names: CaptureNames, quoting: Quoting): Promise<void> {
  await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${names.migrateLock})`);
  try {
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the
    // database even when the schema exists, which a runtime role may lack.
    const { rows: found } = await client.query<{ schema: boolean; migrations: boolean; foreign: boolean }>(
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1) AS schema,
              to_regclass($2) IS NOT NULL AS migrations,
              EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = $1 AND c.relname IN ('changes', 'commits', 'ticks', 'readers', 'idle_until')) AS foreign`,
      [names.schema, names.migrations],
    );
    const { schema, migrations: migrated, foreign } = found[0]!;
    if (!migrated && foreign) {
      throw new BusbarError(
        'BUSBAR_ERR_CDC_SETUP',
        `schema ${JSON.stringify(names.schema)} already holds tables named like Busbar's (changes, commits, ticks, readers) that Busbar did not create: choose another schema`,
        { details: { schema: names.schema } },
      );
    }
    if (!schema) await client.query(`CREATE SCHEMA ${names.quotedSchema}`);
    if (!migrated) {
      await client.query(
        `CREATE TABLE ${names.migrations} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
         COMMENT ON TABLE ${names.migrations} IS '${CAPTURE_TABLE_MARK}: schema version'`,
      );
    }
    const { rows } = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${names.migrations}`);
    const current = rows[0]?.version ?? 0;
    if (current > CAPTURE_SCHEMA_VERSION) {
      throw new BusbarError(
        'BUSBAR_ERR_CDC_SETUP',
        `change capture schema ${JSON.stringify(names.schema)} is at version ${current} but this Busbar knows up to version ${CAPTURE_SCHEMA_VERSION}: upgrade Busbar`,
        { details: { schema: names.schema, database: current, code: CAPTURE_SCHEMA_VERSION } },
      );
    }
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      await client.query(migration.sql(names, quoting));
      await client.query(`INSERT INTO ${names.migrations} (version) VALUES ($1)`, [migration.version]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw setupError(error, `could not install change capture schema ${JSON.stringify(names.schema)}`);
  }
}

/** A database refusal (rights, locks) as `BUSBAR_ERR_CDC_SETUP` naming what failed; Busbar errors and lost connections pass through. */
export function setupError(error: unknown, what: string): unknown {
  if (error instanceof BusbarError) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || code.startsWith('08') || code === '57P01') return error;
  const reason =
    code === '42501' ? ' (the role lacks a right: it needs CREATE on the database or schema, and TRIGGER on captured tables)' : '';
  return new BusbarError('BUSBAR_ERR_CDC_SETUP', `${what}: ${(error as Error).message}${reason}`, {
    cause: error,
    details: { sqlState: code },
  });
}
