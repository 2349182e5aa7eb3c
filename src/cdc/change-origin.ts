import type { ChangeOrigin } from './change.ts';
import { topicToken } from './topic-name.ts';
import type { Queryable } from './type-catalog.ts';

/**
 * Where a database's change events come from: `source` names it as
 * `postgresql://host:port/database` (no credentials), and ids start with its
 * system identifier and name, so two databases never share an id while a
 * change captured twice (a redelivery, a second slot) keeps its id.
 *
 * @example
 * ```ts
 * await readOrigin(pool, { host: '127.0.0.1', port: 5432 });
 * // { source: 'postgresql://127.0.0.1:5432/shop', idPrefix: 'pg-7714536727275853939-shop' }
 * ```
 */
export async function readOrigin(database: Queryable, server: { host: string; port: number }): Promise<ChangeOrigin> {
  const { rows } = await database.query(
    `SELECT (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) AS system, current_database() AS name`,
  );
  const { system, name } = rows[0] as { system: string; name: string };
  const host = server.host.includes(':') && !server.host.startsWith('[') ? `[${server.host}]` : server.host;
  return {
    source: `postgresql://${encodeURIComponent(host).replace(/%5B|%5D|%3A/g, decodeURIComponent)}:${server.port}/${encodeURIComponent(name)}`,
    idPrefix: `pg-${system}-${topicToken(name)}`,
  };
}
