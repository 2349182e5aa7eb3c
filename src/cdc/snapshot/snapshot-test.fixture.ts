/**
 * What the snapshot integration tests share: a capture into a durable bus,
 * the store replayed as upserts and deletes by key, the table read back the
 * same way, and the check that no READ is older than a change before it.
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import type { BusbarEvent } from '../../core/event.ts';
import type { EventLog } from '../../core/event-log.ts';
import { durableBus, waitFor, warningLog } from '../cdc-harness.fixture.ts';
import type { PostgresCdcOptions } from '../cdc-options.ts';
import type { ChangeData, Row } from '../change.ts';
import { createPostgresCdc } from '../postgres-cdc.ts';
import type { TableSnapshotStatus } from './snapshot-progress.ts';

let slots = 0;
const open = new Set<{ stop(): Promise<void> }>();

/** Stops every capture a test left running (one that failed half-way): call it in `afterEach`. */
export async function stopCaptures(): Promise<void> {
  await Promise.all([...open].map((run) => run.stop().catch(() => {})));
}

/** A capture on a slot of its own into a durable memory bus, recording every event its handler sees. */
export function snapshotCapture(connectionString: string, options: Partial<PostgresCdcOptions> & { store?: EventLog } = {}) {
  const { bus, store } = durableBus(options.store);
  const seen: BusbarEvent<ChangeData>[] = [];
  const log = warningLog();
  const slotName = `snap_${process.pid}_${++slots}`;
  const cdc = createPostgresCdc({
    connectionString,
    slotName,
    publicationName: slotName,
    bus,
    retryInterval: 50,
    onWarning: log.onWarning,
    ...options,
    handlers: [{ onEvent: (event) => void seen.push(event) }, ...(options.handlers ?? [])],
  });
  let stopped: Promise<void> | undefined;
  const run = {
    cdc,
    bus,
    store,
    seen,
    warnings: log.warnings,
    slotName,
    /** The snapshot of `table` (`schema.name`) once it is no longer pending or running. */
    async settled(table: string, timeout = 30_000): Promise<TableSnapshotStatus> {
      try {
        return await waitFor(
          `the snapshot of ${table} to finish`,
          () => cdc.status().snapshots.find((each) => `${each.schema}.${each.table}` === table && (each.state === 'done' || each.state === 'skipped')),
          timeout,
        );
      } catch (error) {
        const { snapshots, lastError } = cdc.status();
        throw new Error(`${(error as Error).message}; snapshots ${JSON.stringify(snapshots)}; last error ${lastError?.message}`, { cause: error });
      }
    },
    stop(): Promise<void> {
      stopped ??= (async () => {
        open.delete(run);
        await cdc.dropSlot();
        await bus.close();
      })();
      return stopped;
    },
  };
  open.add(run);
  return run;
}

/**
 * Replays `events` of one table as a consumer keeping a copy would: READ,
 * INSERT and UPDATE upsert the row by key (an UPDATE that moved the key
 * deletes the old one), DELETE removes it, TRUNCATE empties the copy.
 */
export function replayByKey(events: readonly BusbarEvent<ChangeData>[], schema: string, table: string): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const { data: change } of events) {
    if (change.schema !== schema || change.table !== table) continue;
    if (change.action === 'TRUNCATE') rows.clear();
    else if (change.action === 'DELETE') rows.delete(JSON.stringify(change.id));
    else {
      if (change.action === 'UPDATE' && change.old !== null && JSON.stringify(change.old.id) !== JSON.stringify(change.id)) {
        rows.delete(JSON.stringify(change.old.id));
      }
      rows.set(JSON.stringify(change.id), change.data!);
    }
  }
  return rows;
}

/** The table's rows by the same key text, read with `SELECT *` (types that pg parses as the decoders map them). */
export async function tableByKey(admin: pg.Pool, qualified: string, key: (row: Row) => unknown = (row) => row.id): Promise<Map<string, Row>> {
  const { rows } = await admin.query(`SELECT * FROM ${qualified}`);
  return new Map((rows as Row[]).map((row) => [JSON.stringify(key(row)), row]));
}

/** Asserts the replayed copy equals the table, row by row. */
export function assertSameRows(replayed: Map<string, Row>, table: Map<string, Row>): void {
  const sorted = (rows: Map<string, Row>) => [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  assert.equal(replayed.size, table.size, 'as many rows in the replayed store as in the table');
  assert.deepEqual(sorted(replayed), sorted(table));
}

/**
 * Asserts that each READ shows the row exactly as the last stream change of
 * its key before it left it (or is the first word on that key), and that a
 * key is READ once per snapshot: a READ never goes back in time.
 */
export function assertReadsNeverStale(events: readonly BusbarEvent<ChangeData>[], schema: string, table: string): number {
  const last = new Map<string, ChangeData>();
  const read = new Set<string>();
  let reads = 0;
  for (const { data: change } of events) {
    if (change.schema !== schema || change.table !== table) continue;
    const key = JSON.stringify(change.id);
    if (change.action === 'TRUNCATE') {
      last.clear();
      continue;
    }
    if (change.action === 'READ') {
      reads++;
      const once = `${change.lsn}:${key}`;
      assert.ok(!read.has(once), `key ${key} READ twice in snapshot ${change.lsn}`);
      read.add(once);
      const before = last.get(key);
      if (before !== undefined) {
        assert.notEqual(before.action, 'DELETE', `key ${key} READ after its DELETE: the READ is older than the change`);
        assert.deepEqual(change.data, before.data, `key ${key}: the READ shows another row than the change before it left`);
      }
    }
    last.set(key, change);
    if (change.action === 'UPDATE' && change.old !== null) {
      const oldKey = JSON.stringify(change.old.id);
      if (oldKey !== key) last.set(oldKey, { ...change, action: 'DELETE' });
    }
  }
  return reads;
}
