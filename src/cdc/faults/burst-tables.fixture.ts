/**
 * The tables a fault test's write burst goes to, in a schema of its own per
 * scenario. Their names are the hostile ones issue 4 lists, so every fault
 * scenario also proves quoting under load: a composite key, a table without
 * one, jsonb, arrays, numeric, NULLs and rows past 8 kB and 1 MB all flow
 * through the same faults.
 */
import pg from 'pg';
import type { Row } from '../change.ts';

/** What a table plays in the burst; reconciliation works by role. */
export type Role = 'hot' | 'items' | 'lines' | 'audit' | 'marker';

/** Real table names: each one hostile in its own way. */
export const TABLE_NAMES: Readonly<Record<Role, string>> = {
  hot: 'Mixed Case', // contended rows every writer updates
  items: 'x"; DROP TABLE y; --', // writer-owned rows: inserts, updates, deletes, big notes
  lines: 'ünïcødé', // composite key (order_id, line_no), multi-row statements
  audit: 'audit log', // no primary key
  marker: 'marker', // written last: once it is stored, capture has caught up
};

/** A scenario's schema and its tables, as names and as quoted SQL. */
export interface BurstTables {
  readonly schema: string;
  /** Role of each real table name. */
  readonly roleOf: ReadonlyMap<string, Role>;
  /** `"schema"."table"` per role. */
  readonly sql: Readonly<Record<Role, string>>;
  /** Writers' commit ledger, never captured: decides a COMMIT whose answer was lost. */
  readonly ledgerSql: string;
  /** What capture is told to capture, as exact names. */
  readonly specs: readonly { schema: string; name: string }[];
}

/** How many contended rows the writers fight over. */
export const HOT_ROWS = 24;

/**
 * The names of a scenario's burst tables (nothing is created).
 *
 * @example
 * ```ts
 * const tables = burstTables('restart');
 * tables.sql.items; // '"burst restart ünïcødé"."x""; DROP TABLE y; --"'
 * ```
 */
export function burstTables(scenario: string): BurstTables {
  const schema = `burst ${scenario} ünïcødé`;
  const quote = (name: string): string => `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
  const roles = Object.keys(TABLE_NAMES) as Role[];
  return {
    schema,
    roleOf: new Map(roles.map((role) => [TABLE_NAMES[role], role])),
    sql: Object.fromEntries(roles.map((role) => [role, quote(TABLE_NAMES[role])])) as Record<Role, string>,
    ledgerSql: quote('ledger'),
    specs: roles.map((role) => ({ schema, name: TABLE_NAMES[role] })),
  };
}

/**
 * Creates the schema and tables, and `public.y`, the table an injected
 * `DROP TABLE y` would hit (tests check it survives).
 */
export async function createBurstTables(admin: pg.Pool, tables: BurstTables): Promise<void> {
  const { sql } = tables;
  await admin.query(`
    CREATE TABLE IF NOT EXISTS public.y (id int);
    CREATE SCHEMA ${pg.escapeIdentifier(tables.schema)};
    CREATE TABLE ${sql.hot} (id int PRIMARY KEY, version int NOT NULL, write_id int NOT NULL, writer int NOT NULL,
                             balance numeric(14,2) NOT NULL, note text);
    CREATE TABLE ${sql.items} (id int PRIMARY KEY, version int NOT NULL, write_id int NOT NULL, writer int NOT NULL,
                               payload jsonb, tags text[], scores int[], note text);
    CREATE TABLE ${sql.lines} (order_id int, line_no int, version int NOT NULL, write_id int NOT NULL, qty int NOT NULL, sku text,
                               PRIMARY KEY (order_id, line_no));
    CREATE TABLE ${sql.audit} (write_id int NOT NULL, version int NOT NULL, writer int NOT NULL, detail jsonb);
    CREATE TABLE ${sql.marker} (id int PRIMARY KEY, version int NOT NULL);
    CREATE TABLE ${tables.ledgerSql} (tag text PRIMARY KEY);
  `);
}

/**
 * A row's identity for reconciliation: the key for keyed tables, the
 * write id for the keyless audit table (its rows are never updated).
 */
export function rowKey(role: Role, row: Row): string {
  switch (role) {
    case 'lines':
      return `${String(row.order_id)}/${String(row.line_no)}`;
    case 'audit':
      return `w${String(row.write_id)}`;
    default:
      return String(row.id);
  }
}

/** The `id` a change event of this role must carry for `row`. */
export function expectedEventId(role: Role, row: Row): unknown {
  switch (role) {
    case 'lines':
      return { order_id: row.order_id, line_no: row.line_no };
    case 'audit':
      return null;
    default:
      return row.id;
  }
}
