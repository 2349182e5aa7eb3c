import { BusbarError } from '../core/errors.ts';
import type { TableName, TableSpec } from './capture-source.ts';
import type { Queryable } from './type-catalog.ts';

/** A table spec with its name resolved against the database. */
export interface ResolvedTable extends TableName {
  /** Whether replication mode should set REPLICA IDENTITY FULL (default true). */
  readonly replicaIdentityFull: boolean;
}

/**
 * The key of a table in maps such as `ensureFor`'s `replicaIdentityFull`.
 *
 * @example
 * ```ts
 * options.replicaIdentityFull.get(tableKey({ schema: 'public', name: 'person' }));
 * ```
 */
export function tableKey(table: TableName): string {
  return `${table.schema}\u0000${table.name}`;
}

/**
 * The names a string spec may stand for, most likely first:
 * `schema.name` split at the first dot outside double quotes, quoted parts
 * taken exactly (`""` is a quote), unquoted parts as written and then
 * folded to lower case as SQL would; last, the whole string as a table name
 * in `public` (a name with dots or quotes of its own, `x"; DROP TABLE y; --`).
 *
 * @example
 * ```ts
 * candidateNames('sales."Order Lines"'); // [{ schema: 'sales', name: 'Order Lines' }, …]
 * ```
 */
export function candidateNames(spec: string): TableName[] {
  const candidates: TableName[] = [];
  const parts = splitQualified(spec);
  if (parts !== undefined) {
    const [schema, name] = parts.length === 2 ? parts : [{ text: 'public', quoted: true }, parts[0]!];
    candidates.push({ schema: schema.text, name: name.text });
    const folded = {
      schema: schema.quoted ? schema.text : schema.text.toLowerCase(),
      name: name.quoted ? name.text : name.text.toLowerCase(),
    };
    candidates.push(folded);
  }
  candidates.push({ schema: 'public', name: spec });
  return candidates.filter(
    (candidate, index) => candidates.findIndex((other) => other.schema === candidate.schema && other.name === candidate.name) === index,
  );
}

/**
 * Resolves specs against pg_class/pg_namespace. Names are only ever
 * compared as query parameters, never put in SQL text. Throws
 * `BUSBAR_ERR_NOT_FOUND` for a table that does not exist and
 * `BUSBAR_ERR_INVALID_ARGUMENT` for a malformed spec.
 *
 * @example
 * ```ts
 * await resolveTables(pool, ['person', { schema: 'Sales', name: 'Mixed Case' }]);
 * ```
 */
export async function resolveTables(database: Queryable, specs: readonly TableSpec[]): Promise<ResolvedTable[]> {
  const resolved: ResolvedTable[] = [];
  for (const spec of specs) {
    const { candidates, replicaIdentityFull } = readSpec(spec);
    const { rows } = await database.query(
      `SELECT n.nspname AS schema, c.relname AS name, ordinality
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS wanted(schema, name, ordinality)
         JOIN pg_catalog.pg_namespace n ON n.nspname = wanted.schema
         JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = wanted.name AND c.relkind IN ('r', 'p')
        ORDER BY ordinality LIMIT 1`,
      [candidates.map((each) => each.schema), candidates.map((each) => each.name)],
    );
    const row = rows[0] as { schema: string; name: string } | undefined;
    if (row === undefined) {
      throw new BusbarError(
        'BUSBAR_ERR_NOT_FOUND',
        `table ${JSON.stringify(typeof spec === 'string' ? spec : `${spec.schema ?? 'public'}.${spec.name}`)} does not exist ` +
          `(looked for ${candidates.map((each) => JSON.stringify(`${each.schema}.${each.name}`)).join(', ')}; ` +
          `pass { schema, name } for exact names)`,
        { details: { table: spec } },
      );
    }
    if (!resolved.some((each) => each.schema === row.schema && each.name === row.name)) {
      resolved.push({ schema: row.schema, name: row.name, replicaIdentityFull });
    }
  }
  return resolved;
}

function readSpec(spec: TableSpec): { candidates: TableName[]; replicaIdentityFull: boolean } {
  if (typeof spec === 'string') {
    if (spec.length === 0) throw invalidSpec(spec);
    return { candidates: candidateNames(spec), replicaIdentityFull: true };
  }
  if (typeof spec !== 'object' || spec === null || typeof spec.name !== 'string' || spec.name.length === 0) {
    throw invalidSpec(spec);
  }
  if (spec.schema !== undefined && (typeof spec.schema !== 'string' || spec.schema.length === 0)) throw invalidSpec(spec);
  if (spec.replicaIdentityFull !== undefined && typeof spec.replicaIdentityFull !== 'boolean') throw invalidSpec(spec);
  return {
    candidates: [{ schema: spec.schema ?? 'public', name: spec.name }],
    replicaIdentityFull: spec.replicaIdentityFull ?? true,
  };
}

function invalidSpec(spec: unknown): BusbarError {
  return new BusbarError(
    'BUSBAR_ERR_INVALID_ARGUMENT',
    `a table must be a non-empty string ("name" or "schema.name") or { schema?, name, replicaIdentityFull? }, got ${JSON.stringify(spec) ?? typeof spec}`,
  );
}

interface NamePart {
  text: string;
  quoted: boolean;
}

/** Splits `a.b`, `"a.b"."c"`… into one or two parts; undefined when it is not that syntax. */
function splitQualified(spec: string): NamePart[] | undefined {
  const parts: NamePart[] = [];
  let i = 0;
  while (i <= spec.length) {
    if (spec[i] === '"') {
      let text = '';
      let j = i + 1;
      for (;;) {
        if (j >= spec.length) return undefined; // unterminated quote
        if (spec[j] === '"') {
          if (spec[j + 1] === '"') {
            text += '"';
            j += 2;
            continue;
          }
          break;
        }
        text += spec[j++];
      }
      if (text.length === 0) return undefined;
      parts.push({ text, quoted: true });
      i = j + 1;
    } else {
      let j = i;
      while (j < spec.length && spec[j] !== '.') {
        if (spec[j] === '"') return undefined;
        j++;
      }
      if (j === i) return undefined; // empty part
      parts.push({ text: spec.slice(i, j), quoted: false });
      i = j;
    }
    if (i === spec.length) break;
    if (spec[i] !== '.' || parts.length === 2) return undefined;
    i++;
    if (i === spec.length) return undefined; // trailing dot
  }
  return parts.length >= 1 && parts.length <= 2 ? parts : undefined;
}
