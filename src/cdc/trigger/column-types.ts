import type { ClientBase } from 'pg';

/** How a column's value is mapped to its canonical JSON form (see `docs/cdc.md`). */
export type ValueKind =
  | 'bool'
  | 'int'
  | 'int8'
  | 'float'
  | 'numeric'
  | 'json'
  | 'date'
  | 'time'
  | 'timetz'
  | 'timestamp'
  | 'timestamptz'
  | 'bytea'
  | 'text'
  | 'array';

/** A column's type as far as mapping cares; `element` is set for arrays. */
export interface ColumnType {
  readonly kind: ValueKind;
  readonly element?: ColumnType;
}

/** A captured table's columns (in table order) and primary key, as the catalog has them now. */
export interface TableShape {
  readonly columns: ReadonlyMap<string, ColumnType>;
  /** Primary key columns in key order; empty for a table without one. */
  readonly key: readonly string[];
  /** True when a column holds int8 or numeric values, whose exact text JSON.parse must keep. */
  readonly needsNumberText: boolean;
}

/** Built-in type OIDs (stable across PostgreSQL versions) and how they map. */
const BUILT_IN: ReadonlyMap<number, ValueKind> = new Map([
  [16, 'bool'],
  [21, 'int'],
  [23, 'int'],
  [26, 'int'],
  [20, 'int8'],
  [700, 'float'],
  [701, 'float'],
  [1700, 'numeric'],
  [114, 'json'],
  [3802, 'json'],
  [1082, 'date'],
  [1083, 'time'],
  [1266, 'timetz'],
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [17, 'bytea'],
]);

interface TypeRow {
  oid: number;
  typtype: string;
  typbasetype: number;
  typelem: number;
  typcategory: string;
  typlen: number;
}

/**
 * Looks up and caches each captured table's column types: one catalog query
 * per table, repeated only when a row shows a column the cache does not know
 * (a column added mid-stream). Types are resolved through domains and
 * arrays once and cached by OID.
 */
export class TableShapes {
  private readonly shapes = new Map<string, TableShape | null>();
  private readonly types = new Map<number, TypeRow>();
  private readonly client: () => ClientBase;

  /** `client` returns the connection to query on (the reader's, which may be replaced after a reconnect). */
  constructor(client: () => ClientBase) {
    this.client = client;
  }

  /** The cached shape, or undefined when it was never loaded. Null: the table no longer exists. */
  cached(schema: string, table: string): TableShape | null | undefined {
    return this.shapes.get(cacheKey(schema, table));
  }

  /** Loads (or reloads) the shape of `schema.table` from the catalog. */
  async load(schema: string, table: string): Promise<TableShape | null> {
    const { rows } = await this.client().query<{ name: string; type: number; keyPosition: string | null }>(
      `SELECT a.attname AS name, a.atttypid::int AS type, k.ord::text AS "keyPosition"
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
       LEFT JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ON k.attnum = a.attnum
       WHERE n.nspname = $1 AND c.relname = $2
       ORDER BY a.attnum`,
      [schema, table],
    );
    if (rows.length === 0) {
      this.shapes.set(cacheKey(schema, table), null);
      return null;
    }
    await this.loadTypes(rows.map((row) => row.type));
    const columns = new Map<string, ColumnType>();
    for (const row of rows) columns.set(row.name, this.resolve(row.type));
    const key = rows
      .filter((row) => row.keyPosition !== null)
      .sort((a, b) => Number(a.keyPosition) - Number(b.keyPosition))
      .map((row) => row.name);
    const shape: TableShape = { columns, key, needsNumberText: [...columns.values()].some(holdsExactNumbers) };
    this.shapes.set(cacheKey(schema, table), shape);
    return shape;
  }

  /** Fetches pg_type rows until every type reachable through domains and arrays is known. */
  private async loadTypes(oids: readonly number[]): Promise<void> {
    let missing = [...new Set(oids)].filter((oid) => !BUILT_IN.has(oid) && !this.types.has(oid));
    while (missing.length > 0) {
      const { rows } = await this.client().query<TypeRow>(
        `SELECT oid::int, typtype, typbasetype::int, typelem::int, typcategory, typlen
         FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])`,
        [missing],
      );
      for (const row of rows) this.types.set(row.oid, row);
      const next = new Set<number>();
      for (const row of rows) {
        for (const oid of [row.typbasetype, row.typelem]) {
          if (oid !== 0 && !BUILT_IN.has(oid) && !this.types.has(oid)) next.add(oid);
        }
      }
      missing = [...next];
    }
  }

  private resolve(oid: number): ColumnType {
    const builtIn = BUILT_IN.get(oid);
    if (builtIn !== undefined) return { kind: builtIn };
    const type = this.types.get(oid);
    if (type === undefined) return { kind: 'text' };
    if (type.typtype === 'd') return this.resolve(type.typbasetype);
    if (type.typcategory === 'A' && type.typelem !== 0 && type.typlen === -1) {
      return { kind: 'array', element: this.resolve(type.typelem) };
    }
    return { kind: 'text' };
  }
}

function holdsExactNumbers(type: ColumnType): boolean {
  if (type.kind === 'array') return type.element !== undefined && holdsExactNumbers(type.element);
  return type.kind === 'int8' || type.kind === 'numeric';
}

function cacheKey(schema: string, table: string): string {
  // JSON keeps "a.b"."c" and "a"."b.c" apart.
  return JSON.stringify([schema, table]);
}
