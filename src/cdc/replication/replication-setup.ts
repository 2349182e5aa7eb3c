import type { Pool, PoolClient } from 'pg';
import type { TableName } from '../capture-source.ts';
import { BusbarError } from '../../core/errors.ts';
import { tableKey } from '../table-spec.ts';
import { lostSlotError, slotError, walLevelError } from './replication-errors.ts';

/** What setup needs: an admin pool and pg's identifier quoting. */
export interface SetupDatabase {
  readonly pool: Pool;
  readonly quote: (identifier: string) => string;
  readonly publication: string;
  readonly slot: string;
  readonly onWarning: (message: string) => void;
}

export interface SlotState {
  readonly plugin: string | null;
  readonly slotType: string;
  readonly database: string | null;
  readonly active: boolean;
  readonly activePid: number | null;
  readonly walStatus: string | null;
  readonly confirmedFlush: string | null;
}

/** Fails with the fix named when the server cannot decode logically. */
export async function assertWalLevel(pool: Pool): Promise<void> {
  const { rows } = await pool.query(`SELECT current_setting('wal_level') AS level`);
  const level = (rows[0] as { level: string }).level;
  if (level !== 'logical') throw walLevelError(`wal_level = ${level}`);
}

/**
 * Adds `tables` to the publication (creating it), sets REPLICA IDENTITY FULL
 * on those that opted in, and warns about tables without a primary key.
 * One transaction under an advisory lock, so two processes ensuring at once
 * do not race on CREATE PUBLICATION. `onAdded` runs in that transaction with
 * the tables that joined the publication (the initial snapshot registers
 * them there, so a table never joins without its snapshot).
 */
export async function ensurePublicationFor(
  db: SetupDatabase,
  tables: readonly TableName[],
  replicaIdentityFull: ReadonlyMap<string, boolean>,
  onAdded?: (client: PoolClient, added: readonly TableName[]) => Promise<void>,
): Promise<void> {
  await assertWalLevel(db.pool);
  await inTransaction(db, async (client) => {
    const publication = await publicationState(client, db.publication);
    const members = new Set(publication?.members ?? []);
    const toAdd: string[] = [];
    const added: TableName[] = [];
    for (const table of tables) {
      const info = await tableInfo(client, table);
      const qualified = qualify(db, table);
      const full = replicaIdentityFull.get(tableKey(table)) ?? true;
      if (!info.hasPrimaryKey) {
        db.onWarning(`table ${display(table)} has no primary key: its change events carry id null`);
        if (!full && (info.replicaIdentity === 'n' || info.replicaIdentity === 'd')) {
          throw new BusbarError(
            'BUSBAR_ERR_INVALID_ARGUMENT',
            `table ${display(table)} has no primary key and replicaIdentityFull is false: once published, its UPDATEs and ` +
              `DELETEs would fail. Keep replicaIdentityFull, add a primary key, or set a REPLICA IDENTITY USING INDEX`,
          );
        }
      }
      if (full && info.replicaIdentity !== 'f') await client.query(`ALTER TABLE ${qualified} REPLICA IDENTITY FULL`);
      if (!members.has(info.oid) && !toAdd.includes(qualified)) {
        toAdd.push(qualified);
        added.push(table);
      }
    }
    if (publication === undefined) {
      await client.query(`CREATE PUBLICATION ${db.quote(db.publication)}${toAdd.length > 0 ? ` FOR TABLE ${toAdd.join(', ')}` : ''}`);
    } else if (!publication.allTables && toAdd.length > 0) {
      await client.query(`ALTER PUBLICATION ${db.quote(db.publication)} ADD TABLE ${toAdd.join(', ')}`);
    }
    if (onAdded !== undefined && added.length > 0 && publication?.allTables !== true) await onAdded(client, added);
  });
}

/**
 * Makes the publication FOR ALL TABLES (replacing a per-table one) and gives
 * every table without a usable replica identity REPLICA IDENTITY FULL: in a
 * FOR ALL TABLES publication such a table's UPDATEs and DELETEs would fail.
 * `onAllTables` runs in the same transaction when the publication became
 * FOR ALL TABLES just now.
 */
export async function ensurePublicationForAll(db: SetupDatabase, onAllTables?: (client: PoolClient) => Promise<void>): Promise<void> {
  await assertWalLevel(db.pool);
  await inTransaction(db, async (client) => {
    const publication = await publicationState(client, db.publication);
    if (publication?.allTables !== true) {
      if (publication !== undefined) await client.query(`DROP PUBLICATION ${db.quote(db.publication)}`);
      await client.query(`CREATE PUBLICATION ${db.quote(db.publication)} FOR ALL TABLES`);
      await onAllTables?.(client);
    }
    const { rows } = await client.query(
      `SELECT n.nspname AS schema, c.relname AS name,
              EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_key
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          AND (c.relreplident = 'n' OR (c.relreplident = 'd'
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))`,
    );
    for (const row of rows as { schema: string; name: string; has_key: boolean }[]) {
      if (!row.has_key) db.onWarning(`table ${display(row)} has no primary key: its change events carry id null`);
      await client.query(`ALTER TABLE ${qualify(db, row)} REPLICA IDENTITY FULL`);
    }
  });
}

/** Takes `table` out of the publication; its replica identity stays as it is. */
export async function removeFromPublication(db: SetupDatabase, table: TableName): Promise<void> {
  await inTransaction(db, async (client) => {
    const publication = await publicationState(client, db.publication);
    if (publication === undefined) return;
    if (publication.allTables) {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_ARGUMENT',
        `publication "${db.publication}" captures all tables: ${display(table)} cannot be removed from it alone. ` +
          `Drop it with dropSlot() and capture a list of tables instead`,
      );
    }
    const info = await tableInfo(client, table);
    if (publication.members.includes(info.oid)) {
      await client.query(`ALTER PUBLICATION ${db.quote(db.publication)} DROP TABLE ${qualify(db, table)}`);
    }
  });
}

/** Creates an empty publication when there is none, so streaming can start; tables join it later. */
export async function ensurePublicationExists(db: SetupDatabase): Promise<void> {
  await inTransaction(db, async (client) => {
    if ((await publicationState(client, db.publication)) === undefined) {
      await client.query(`CREATE PUBLICATION ${db.quote(db.publication)}`);
    }
  });
}

/** The slot as pg_replication_slots shows it, or undefined when there is none. */
export async function slotState(pool: Pool, slot: string): Promise<SlotState | undefined> {
  const { rows } = await pool.query(
    `SELECT plugin, slot_type, database, active, active_pid, wal_status, confirmed_flush_lsn::text AS confirmed_flush
       FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0] as Record<string, any> | undefined;
  if (row === undefined) return undefined;
  return {
    plugin: row.plugin,
    slotType: row.slot_type,
    database: row.database,
    active: row.active,
    activePid: row.active_pid,
    walStatus: row.wal_status,
    confirmedFlush: row.confirmed_flush,
  };
}

/**
 * The slot, checked to be ours to stream from: logical, pgoutput, this
 * database, not lost, and free (a reader that just disconnected gets up to
 * `wait` ms to let go of it).
 */
export async function usableSlot(pool: Pool, slot: string, wait: number): Promise<SlotState | undefined> {
  const { rows } = await pool.query(`SELECT current_database() AS name`);
  const database = (rows[0] as { name: string }).name;
  const deadline = Date.now() + wait;
  for (;;) {
    const state = await slotState(pool, slot);
    if (state === undefined) return undefined;
    if (state.slotType !== 'logical' || state.plugin !== 'pgoutput') {
      throw slotError(
        `replication slot "${slot}" is a ${state.slotType} slot${state.plugin === null ? '' : ` for plugin ${state.plugin}`}, ` +
          `not a logical pgoutput slot: choose another slotName, or drop it if nobody needs it`,
        undefined,
        { slot, plugin: state.plugin },
      );
    }
    if (state.database !== database) {
      throw slotError(`replication slot "${slot}" belongs to database "${state.database}", not "${database}": choose another slotName`);
    }
    if (state.walStatus === 'lost') throw lostSlotError(`replication slot "${slot}"`);
    if (!state.active) return state;
    if (Date.now() >= deadline) {
      throw slotError(
        `replication slot "${slot}" is in use by another reader (PID ${state.activePid}): stop it, or give this capture its own slotName`,
        undefined,
        { slot, pid: state.activePid },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Drops the slot (waiting up to `wait` ms for its reader to let go) and the publication. */
export async function dropSlotAndPublication(db: SetupDatabase, wait: number): Promise<void> {
  const state = await slotState(db.pool, db.slot);
  if (state !== undefined) {
    const deadline = Date.now() + wait;
    for (;;) {
      try {
        await db.pool.query(`SELECT pg_catalog.pg_drop_replication_slot($1)`, [db.slot]);
        break;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === '42704') break; // dropped meanwhile
        if (code !== '55006' || Date.now() >= deadline) {
          throw slotError(`could not drop replication slot "${db.slot}": ${(error as Error).message}`, error);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
  await db.pool.query(`DROP PUBLICATION IF EXISTS ${db.quote(db.publication)}`);
}

function qualify(db: SetupDatabase, table: TableName): string {
  return `${db.quote(table.schema)}.${db.quote(table.name)}`;
}

function display(table: TableName): string {
  return JSON.stringify(`${table.schema}.${table.name}`);
}

async function publicationState(
  client: PoolClient,
  publication: string,
): Promise<{ allTables: boolean; members: number[] } | undefined> {
  const { rows } = await client.query(
    `SELECT p.puballtables AS all_tables,
            COALESCE((SELECT array_agg(r.prrelid::int8) FROM pg_catalog.pg_publication_rel r WHERE r.prpubid = p.oid), '{}') AS members
       FROM pg_catalog.pg_publication p WHERE p.pubname = $1`,
    [publication],
  );
  const row = rows[0] as { all_tables: boolean; members: string[] } | undefined;
  return row === undefined ? undefined : { allTables: row.all_tables, members: row.members.map(Number) };
}

async function tableInfo(
  client: PoolClient,
  table: TableName,
): Promise<{ oid: number; replicaIdentity: string; hasPrimaryKey: boolean }> {
  const { rows } = await client.query(
    `SELECT c.oid::int8 AS oid, c.relreplident AS replica_identity,
            EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_key
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [table.schema, table.name],
  );
  const row = rows[0] as { oid: string; replica_identity: string; has_key: boolean } | undefined;
  if (row === undefined) {
    throw new BusbarError('BUSBAR_ERR_NOT_FOUND', `table ${display(table)} does not exist`, { details: { ...table } });
  }
  return { oid: Number(row.oid), replicaIdentity: row.replica_identity, hasPrimaryKey: row.has_key };
}

async function inTransaction(db: SetupDatabase, work: (client: PoolClient) => Promise<void>): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`busbar-cdc-publication:${db.publication}`]);
    await work(client);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
