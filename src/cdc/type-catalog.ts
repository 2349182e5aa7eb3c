import { arrayDecoder, builtinDecoder, decodeAsText, type ValueDecoder } from './values.ts';

/** What the catalog needs of a connection: pg's Pool or Client fit. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

interface TypeRow {
  oid: number;
  typtype: string;
  typcategory: string;
  typelem: number;
  typbasetype: number;
  typdelim: string;
  typlen: number;
}

/**
 * Decoders for every type a captured table may use, including those the
 * built-in table does not know: a domain maps as its base type, an array as
 * arrays of its element type (an array of an enum, of a domain over int8…),
 * anything else (enums, composites, ranges, extension types) as text. Each
 * unknown OID costs one `pg_type` query, once.
 *
 * @example
 * ```ts
 * const types = new TypeCatalog(pool);
 * await types.resolve([relation.columns[0].typeOid]);
 * types.decoderFor(relation.columns[0].typeOid)!('{a,b}');
 * ```
 */
export class TypeCatalog {
  private readonly known = new Map<number, ValueDecoder>();
  private readonly database: Queryable;

  constructor(database: Queryable) {
    this.database = database;
  }

  /** The decoder of `oid`, or undefined until `resolve` has looked it up. */
  decoderFor(oid: number): ValueDecoder | undefined {
    return builtinDecoder(oid) ?? this.known.get(oid);
  }

  /** Looks up every OID without a decoder yet, following element and base types. */
  async resolve(oids: Iterable<number>): Promise<void> {
    const rows = new Map<number, TypeRow>();
    const requested = [...new Set(oids)].filter((oid) => this.decoderFor(oid) === undefined);
    let missing = requested;
    while (missing.length > 0) {
      const result = await this.database.query(
        `SELECT oid::int8 AS oid, typtype, typcategory, typelem::int8 AS typelem, typbasetype::int8 AS typbasetype,
                typdelim, typlen
           FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])`,
        [missing],
      );
      for (const row of result.rows as TypeRow[]) {
        rows.set(Number(row.oid), { ...row, oid: Number(row.oid), typelem: Number(row.typelem), typbasetype: Number(row.typbasetype) });
      }
      const next = new Set<number>();
      for (const oid of missing) {
        const row = rows.get(oid);
        if (row === undefined) continue; // dropped meanwhile: text
        const dependency = isArray(row) ? row.typelem : row.typtype === 'd' ? row.typbasetype : 0;
        if (dependency !== 0 && this.decoderFor(dependency) === undefined && !rows.has(dependency)) next.add(dependency);
      }
      missing = [...next];
    }
    for (const oid of [...requested, ...rows.keys()]) this.build(oid, rows, new Set());
  }

  private build(oid: number, rows: ReadonlyMap<number, TypeRow>, visiting: Set<number>): ValueDecoder {
    const existing = this.decoderFor(oid);
    if (existing !== undefined) return existing;
    const row = rows.get(oid);
    let decoder: ValueDecoder = decodeAsText;
    if (row !== undefined && !visiting.has(oid)) {
      visiting.add(oid);
      if (isArray(row)) {
        const element = rows.get(row.typelem);
        // The array literal separates elements with the element type's delimiter.
        const delimiter = element?.typdelim ?? ',';
        decoder = delimiter === ',' ? arrayDecoder(this.build(row.typelem, rows, visiting)) : decodeAsText;
      } else if (row.typtype === 'd') {
        decoder = this.build(row.typbasetype, rows, visiting);
      }
    }
    this.known.set(oid, decoder);
    return decoder;
  }
}

function isArray(row: TypeRow): boolean {
  return row.typcategory === 'A' && row.typelem !== 0 && row.typlen === -1;
}
