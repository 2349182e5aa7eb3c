import type { DatabaseSync } from 'node:sqlite';
import { BusbarError } from '../../core/errors.ts';

/**
 * Migrations, in order; the database's `user_version` is how many have run.
 * Append new ones, never edit old ones: a file written by this version must
 * open in every later one.
 */
const migrations: readonly string[] = [
  `CREATE TABLE busbar_events (
     position INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     stream TEXT,
     stream_version INTEGER,
     recipients TEXT,
     event TEXT NOT NULL,
     recorded_at INTEGER NOT NULL
   );
   CREATE UNIQUE INDEX busbar_events_by_stream ON busbar_events (stream, stream_version)
     WHERE stream IS NOT NULL;
   CREATE INDEX busbar_events_by_time ON busbar_events (recorded_at);
   -- The last position ever assigned. Not max(position): retention may delete
   -- the newest rows, and a position must never be handed out twice.
   CREATE TABLE busbar_head (
     only INTEGER PRIMARY KEY CHECK (only = 1),
     position INTEGER NOT NULL
   );
   INSERT INTO busbar_head VALUES (1, 0);
   CREATE TABLE busbar_streams (
     stream TEXT PRIMARY KEY,
     version INTEGER NOT NULL,
     metadata TEXT
   ) WITHOUT ROWID;
   CREATE TABLE busbar_checkpoints (
     name TEXT PRIMARY KEY,
     position INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE busbar_dead_letters (
     id TEXT PRIMARY KEY,
     subscription TEXT NOT NULL,
     position INTEGER NOT NULL,
     letter TEXT NOT NULL
   );
   CREATE TABLE busbar_processed (
     consumer TEXT NOT NULL,
     id TEXT NOT NULL,
     PRIMARY KEY (consumer, id)
   ) WITHOUT ROWID;`,
];

export const SCHEMA_VERSION = migrations.length;

/**
 * Brings the schema up to date in one immediate transaction, so two
 * processes opening the same new file do not both migrate it.
 */
export function migrate(database: DatabaseSync, location: string): void {
  database.exec('BEGIN IMMEDIATE');
  try {
    const { user_version: current } = database.prepare('PRAGMA user_version').get() as { user_version: number };
    if (current > SCHEMA_VERSION) {
      throw new BusbarError(
        'BUSBAR_ERR_STORE_SCHEMA',
        `${location} has Busbar schema version ${current}, but this code knows up to ${SCHEMA_VERSION}: upgrade busbar`,
        { details: { database: current, code: SCHEMA_VERSION } },
      );
    }
    for (let version = current; version < SCHEMA_VERSION; version++) database.exec(migrations[version]!);
    // PRAGMA takes no parameters; SCHEMA_VERSION is our own integer.
    if (current < SCHEMA_VERSION) database.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    database.exec('COMMIT');
  } catch (error) {
    database.exec('ROLLBACK');
    throw error;
  }
}
