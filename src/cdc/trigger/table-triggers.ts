import type { ClientBase } from 'pg';
import { BusbarError } from '../../core/errors.ts';
import type { TableName } from '../capture-source.ts';
import { CAPTURE_TABLE_MARK, type CaptureNames, type Quoting, setupError } from './capture-schema.ts';

/** What installing capture on a table found out about it. */
export interface InstalledTable {
  readonly table: TableName;
  /** False for a table without a primary key: its changes arrive with `id: null`. */
  readonly hasKey: boolean;
}

/** How long DDL on a user's table may wait for its lock before failing clearly instead of queueing writers behind it. */
const LOCK_TIMEOUT = '10s';

/**
 * Installs the capture triggers on `table` (idempotent): a row trigger for
 * INSERT/UPDATE/DELETE and a statement trigger for TRUNCATE. Needs the
 * TRIGGER privilege on the table. A partitioned table gets them once, and
 * PostgreSQL clones them onto every partition, present and future.
 */
export async function installTriggers(
  client: ClientBase,
  names: CaptureNames,
  quoting: Quoting,
  table: TableName,
): Promise<InstalledTable> {
  const quoted = quotedTable(quoting, table);
  await client.query(`BEGIN; SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
  try {
    const info = await describeTable(client, names, table);
    if (info.kind === 'p') {
      // Our own triggers on its partitions would clash with the clones.
      for (const partition of info.partitionsWithOwnTriggers) {
        await client.query(`DROP TRIGGER IF EXISTS ${names.rowTrigger} ON ${partition}`);
        await client.query(`DROP TRIGGER IF EXISTS ${names.truncateTrigger} ON ${partition}`);
      }
    }
    if (!info.triggers.includes(names.rowTrigger)) {
      await client.query(
        `CREATE TRIGGER ${names.rowTrigger} AFTER INSERT OR UPDATE OR DELETE ON ${quoted} FOR EACH ROW EXECUTE FUNCTION ${names.captureFunction}()`,
      );
    }
    if (!info.triggers.includes(names.truncateTrigger)) {
      await client.query(
        `CREATE TRIGGER ${names.truncateTrigger} AFTER TRUNCATE ON ${quoted} FOR EACH STATEMENT EXECUTE FUNCTION ${names.captureFunction}()`,
      );
    }
    await client.query('COMMIT');
    return { table, hasKey: info.hasKey };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw setupError(error, `could not install change capture on ${quoted}`);
  }
}

/** Drops the capture triggers from `table`; a table that no longer exists is fine. */
export async function removeTriggers(client: ClientBase, names: CaptureNames, quoting: Quoting, table: TableName): Promise<void> {
  const quoted = quotedTable(quoting, table);
  const { rows } = await client.query<{ exists: boolean }>(
    `SELECT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = $1 AND c.relname = $2) AS exists`,
    [table.schema, table.name],
  );
  if (!rows[0]!.exists) return;
  try {
    await client.query(
      `BEGIN; SET LOCAL lock_timeout = '${LOCK_TIMEOUT}';
       DROP TRIGGER IF EXISTS ${names.rowTrigger} ON ${quoted};
       DROP TRIGGER IF EXISTS ${names.truncateTrigger} ON ${quoted};
       COMMIT`,
    );
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw setupError(
      error,
      `could not remove change capture from ${quoted}` +
        ((error as { code?: unknown }).code === '42501' ? ' (PostgreSQL lets only the table owner drop a trigger)' : ''),
    );
  }
}

/**
 * Every table "capture all" covers: ordinary and partitioned tables of
 * non-system schemas, except Busbar's own, temporary tables, partitions
 * (their parent's triggers cover them) and tables that belong to extensions.
 */
export async function capturableTables(client: ClientBase, names: CaptureNames): Promise<TableName[]> {
  const { rows } = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
       AND n.nspname <> $1 AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                       WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
       AND NOT starts_with(coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), ''), $2)
     ORDER BY 1, 2`,
    [names.schema, CAPTURE_TABLE_MARK],
  );
  return rows;
}

/** Tables that carry the capture trigger now, with whether they have a primary key and whether the trigger is enabled. */
export async function capturedTables(
  client: ClientBase,
  names: CaptureNames,
): Promise<{ schema: string; name: string; hasKey: boolean; enabled: boolean }[]> {
  const { rows } = await client.query<{ schema: string; name: string; hasKey: boolean; enabled: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS "hasKey",
            t.tgenabled <> 'D' AS enabled
     FROM pg_catalog.pg_trigger t
     JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE t.tgname = $1 AND t.tgfoid = to_regprocedure($2)
     ORDER BY 1, 2`,
    [names.rowTrigger, `${names.captureFunction}()`],
  );
  return rows;
}

/**
 * Removes everything Busbar installed: its trigger function with every
 * trigger that uses it, its tables and sequence, then the schema if nothing
 * else is in it. A schema Busbar never installed into is left alone.
 */
export async function dropCapture(client: ClientBase, names: CaptureNames): Promise<void> {
  const { rows: installed } = await client.query<{ installed: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AS installed',
    [names.migrations],
  );
  if (!installed[0]!.installed) return;
  await client.query(`BEGIN; SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
  try {
    // CASCADE drops the triggers that use the function: only a table's
    // owner may DROP TRIGGER, but the function's owner may drop its
    // dependants, so a role with just the TRIGGER right can clean up.
    await client.query(
      `DROP FUNCTION IF EXISTS ${names.captureFunction}() CASCADE;
       DROP FUNCTION IF EXISTS ${names.tickFunction}();
       DROP TABLE IF EXISTS ${names.changes}, ${names.commits}, ${names.ticks}, ${names.readers}, ${names.migrations};
       DROP SEQUENCE IF EXISTS ${names.idleUntil}`,
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw setupError(error, `could not drop change capture schema ${JSON.stringify(names.schema)}`);
  }
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${names.quotedSchema}`);
  } catch (error) {
    // 2BP01: the schema holds other objects, which are not ours to drop.
    if ((error as { code?: unknown }).code !== '2BP01') throw setupError(error, `could not drop schema ${JSON.stringify(names.schema)}`);
  }
}

interface TableDescription {
  readonly kind: 'r' | 'p';
  readonly hasKey: boolean;
  readonly triggers: readonly string[];
  /** Quoted names of partitions carrying our triggers as their own (not clones). */
  readonly partitionsWithOwnTriggers: readonly string[];
}

async function describeTable(client: ClientBase, names: CaptureNames, table: TableName): Promise<TableDescription> {
  const { rows } = await client.query<{
    kind: string;
    busbar: boolean;
    hasKey: boolean;
    triggers: string[];
    partitions: string[];
  }>(
    `SELECT c.relkind AS kind,
            n.nspname = $5 OR starts_with(coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), ''), $6) AS busbar,
            EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS "hasKey",
            ARRAY(SELECT t.tgname::text FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = c.oid AND t.tgname IN ($3, $4)) AS triggers,
            ARRAY(SELECT DISTINCT format('%I.%I', pn.nspname, pc.relname)
                  FROM pg_catalog.pg_partition_tree(c.oid) p
                  JOIN pg_catalog.pg_class pc ON pc.oid = p.relid
                  JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
                  JOIN pg_catalog.pg_trigger t ON t.tgrelid = p.relid AND t.tgname IN ($3, $4) AND t.tgparentid = 0
                  WHERE c.relkind = 'p' AND p.relid <> c.oid) AS partitions
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2`,
    [table.schema, table.name, names.rowTrigger, names.truncateTrigger, names.schema, CAPTURE_TABLE_MARK],
  );
  const found = rows[0];
  if (found === undefined) {
    throw new BusbarError('BUSBAR_ERR_NOT_FOUND', `table ${JSON.stringify(`${table.schema}.${table.name}`)} does not exist`, {
      details: { schema: table.schema, table: table.name },
    });
  }
  if (found.busbar) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `table ${JSON.stringify(`${table.schema}.${table.name}`)} belongs to a Busbar change capture schema and cannot be captured`,
    );
  }
  if (found.kind !== 'r' && found.kind !== 'p') {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `${JSON.stringify(`${table.schema}.${table.name}`)} is not a table (relkind ${found.kind}): only ordinary and partitioned tables can be captured`,
    );
  }
  return { kind: found.kind, hasKey: found.hasKey, triggers: found.triggers, partitionsWithOwnTriggers: found.partitions };
}

/** `"schema"."name"`, each part quoted by pg. */
export function quotedTable(quoting: Quoting, table: TableName): string {
  return `${quoting.escapeIdentifier(table.schema)}.${quoting.escapeIdentifier(table.name)}`;
}
