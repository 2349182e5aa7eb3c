import { BusbarError } from '../core/errors.ts';
import type { PostgresCdcOptions } from '../cdc/cdc-options.ts';

/**
 * Change capture run by the server: `createPostgresCdc`'s options without
 * `bus` (the server publishes into its own). Without `onError`/`onWarning`,
 * the server logs them.
 *
 * @example
 * ```ts
 * const cdc: ServerCdcOptions = { connectionString: 'postgresql://capture@db/shop', tables: ['orders'], snapshot: 'never' };
 * const server = await createServer({ data: 'busbar.db', cdc });
 * ```
 */
export type ServerCdcOptions = Omit<PostgresCdcOptions, 'bus'>;

/** Replication slot names, PostgreSQL's own rule (checked here so `serve` fails before it starts). */
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

/**
 * Splits a comma-separated list of tables, keeping commas inside double
 * quotes (`"Order, Lines"` is one table name), trimming each part.
 *
 * @example
 * ```ts
 * splitTableList('orders, sales."Order, Lines"'); // ['orders', 'sales."Order, Lines"']
 * ```
 */
export function splitTableList(list: string): string[] {
  const tables: string[] = [];
  let current = '';
  let quoted = false;
  for (const character of list) {
    if (character === '"') quoted = !quoted;
    if (character === ',' && !quoted) {
      tables.push(current);
      current = '';
    } else {
      current += character;
    }
  }
  tables.push(current);
  return tables.map((table) => table.trim()).filter((table) => table.length > 0);
}

/** The values `resolveServerConfig` parsed, by config key, and where each came from. */
interface CdcValues {
  readonly values: Readonly<Record<string, unknown>>;
  readonly origins: Readonly<Record<string, string>>;
}

/**
 * The server's change capture from its `cdc*` options, or undefined when
 * `cdcPostgres` is not set. Throws `BUSBAR_ERR_INVALID_ARGUMENT` naming the
 * option and where it came from: a `cdc*` option without `cdcPostgres`,
 * neither or both of `cdcTables` and `cdcAllTables`, a bad slot name.
 *
 * @example
 * ```ts
 * cdcOptionsOf({ values: { cdcPostgres: url, cdcTables: ['orders'] }, origins });
 * // { connectionString: url, tables: ['orders'], mode: 'replication' }
 * ```
 */
export function cdcOptionsOf({ values, origins }: CdcValues): ServerCdcOptions | undefined {
  const connectionString = values.cdcPostgres as string | undefined;
  const given = Object.keys(values).filter((name) => name.startsWith('cdc') && name !== 'cdcPostgres' && values[name] !== undefined && values[name] !== false);
  if (connectionString === undefined) {
    if (given.length === 0) return undefined;
    throw invalid(given[0]!, origins[given[0]!]!, 'needs "cdcPostgres": the database to capture changes from');
  }
  const tables = values.cdcTables as string[] | undefined;
  const allTables = values.cdcAllTables === true;
  if (tables === undefined && !allTables) {
    throw invalid('cdcPostgres', origins.cdcPostgres!, 'needs "cdcTables" (a list of tables) or "cdcAllTables" (every table) to know what to capture');
  }
  if (tables !== undefined && allTables) {
    throw invalid('cdcTables', origins.cdcTables!, `cannot be combined with "cdcAllTables" (from ${origins.cdcAllTables}): give one of them`);
  }
  const mode = (values.cdcMode as 'replication' | 'trigger' | undefined) ?? 'replication';
  const slot = values.cdcSlot as string | undefined;
  if (slot !== undefined && mode === 'replication' && !SLOT_NAME.test(slot)) {
    throw invalid('cdcSlot', origins.cdcSlot!, `must be a replication slot name: 1-63 of a-z, 0-9 and _, got ${JSON.stringify(slot)}`);
  }
  const options: ServerCdcOptions = { connectionString, mode };
  if (tables !== undefined) options.tables = tables;
  if (allTables) options.allTables = true;
  const publication = values.cdcPublication as string | undefined;
  const snapshot = values.cdcSnapshot as 'initial' | 'never' | undefined;
  const triggerSchema = values.cdcTriggerSchema as string | undefined;
  if (mode === 'replication') {
    if (slot !== undefined) options.slotName = slot;
    if (publication !== undefined) options.publicationName = publication;
    if (snapshot !== undefined) options.snapshot = snapshot;
  } else if (slot !== undefined || triggerSchema !== undefined) {
    // Trigger mode has no slot: its position is a named reader's checkpoint.
    options.trigger = { ...(slot === undefined ? {} : { readerName: slot }), ...(triggerSchema === undefined ? {} : { schema: triggerSchema }) };
  }
  return options;
}

/**
 * A list of tables from the environment or a flag (comma-separated) or the
 * config file (a JSON array of names); undefined when it is not one.
 *
 * @example
 * ```ts
 * tableListOf('orders,sales.lines'); // ['orders', 'sales.lines']
 * tableListOf(['orders']);           // ['orders']
 * ```
 */
export function tableListOf(value: unknown): string[] | undefined {
  const list = typeof value === 'string' ? splitTableList(value) : value;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  return list.every((table) => typeof table === 'string' && table.trim().length > 0) ? (list as string[]) : undefined;
}

function invalid(option: string, origin: string, problem: string): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `option "${option}" (${origin}) ${problem}`, { details: { option, source: origin } });
}
