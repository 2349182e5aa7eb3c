/**
 * Reconciles what a durable bus stored against what the writers committed:
 * every committed change exactly once (by event id and by table, key and
 * version), nothing from a rolled-back transaction or savepoint, every
 * transaction contiguous and numbered, transactions in commit order, each
 * row's versions in order, and the store replayed as upserts and deletes
 * by key equal to the tables' final contents.
 */
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import type { BusbarEvent } from '../../core/event.ts';
import type { ChangeData, Row } from '../change.ts';
import { type BurstLedger, changeIdentity, isCommitted, type LedgerEntry, type PlannedChange } from './burst-ledger.fixture.ts';
import { type BurstTables, expectedEventId, type Role, rowKey } from './burst-tables.fixture.ts';

/** A stored change with what reconciliation derived from it. */
export interface StoredChange {
  readonly event: BusbarEvent<ChangeData>;
  readonly role: Role;
  readonly change: PlannedChange;
  readonly identity: string;
}

export interface Reconciliation {
  readonly stored: number;
  readonly expected: number;
  /** Committed changes the store lacks. */
  readonly missing: string[];
  /** Changes stored more than once (under any event id). */
  readonly doubled: string[];
  /** Stored changes no committed transaction made, including rolled-back writes. */
  readonly unexpected: string[];
  /** Transactions split, misnumbered or out of commit order. */
  readonly transactions: string[];
  /** A row's changes out of version order. */
  readonly rows: string[];
  /** Events whose fields disagree with the row (id, write id). */
  readonly fields: string[];
  /** Where the replayed store differs from the table. */
  readonly replay: string[];
  /**
   * READ rows of the initial snapshot (it runs while the burst starts) that
   * do not show their row as the stream last left it: every row here was
   * inserted after capture began, so a READ may only repeat that state.
   */
  readonly reads: string[];
  /** READ rows stored (they are not changes: counted apart). */
  readonly readCount: number;
  /** The scenario's stored changes in log order. */
  readonly changes: readonly StoredChange[];
}

/**
 * Reconciles `events` (the store's, in log order) of `tables` against
 * `ledger` and the tables' contents now.
 *
 * @example
 * ```ts
 * const result = await reconcile(await storedChanges(store), tables, ledger, admin);
 * assertReconciled(result);
 * ```
 */
export async function reconcile(
  events: readonly BusbarEvent<ChangeData>[],
  tables: BurstTables,
  ledger: BurstLedger,
  admin: pg.Pool,
): Promise<Reconciliation> {
  const fields: string[] = [];
  const reads: string[] = [];
  const { changes, readCount } = storedChanges(events, tables, fields, reads);
  const expected = new Map<string, { entry: LedgerEntry; change: PlannedChange }>();
  const rolledBackWrites = new Set<number>();
  for (const entry of ledger.entries) {
    const committed = isCommitted(entry);
    for (const change of entry.changes) {
      if (committed) expected.set(changeIdentity(change), { entry, change });
      else if (change.action === 'INSERT' || change.action === 'UPDATE') rolledBackWrites.add(change.writeId);
    }
    for (const change of entry.discarded) if (change.action === 'INSERT' || change.action === 'UPDATE') rolledBackWrites.add(change.writeId);
  }

  const seen = new Map<string, number>();
  const doubled: string[] = [];
  const unexpected: string[] = [];
  for (const { identity, change, event } of changes) {
    const times = (seen.get(identity) ?? 0) + 1;
    seen.set(identity, times);
    if (times === 2) doubled.push(`${identity} (event ${event.id})`);
    const wanted = expected.get(identity);
    if ((change.action === 'INSERT' || change.action === 'UPDATE') && rolledBackWrites.has(change.writeId)) {
      unexpected.push(`${identity}: write ${change.writeId} was rolled back`);
    } else if (wanted === undefined) unexpected.push(`${identity}: no committed transaction made it`);
    else if (wanted.change.writeId !== change.writeId) {
      fields.push(`${identity}: write id ${change.writeId}, the committed change wrote ${wanted.change.writeId}`);
    }
  }
  const missing = [...expected.keys()].filter((identity) => !seen.has(identity));
  const ids = new Set(events.map((event) => event.id));
  if (ids.size !== events.length) doubled.push(`${events.length - ids.size} event ids stored twice`);

  return {
    stored: changes.length,
    expected: expected.size,
    missing,
    doubled,
    unexpected,
    transactions: checkTransactions(changes, expected),
    rows: checkRowVersions(changes),
    fields,
    replay: await checkReplay(changes, tables, admin),
    reads,
    readCount,
    changes,
  };
}

/** Fails with the first few of each kind of violation, and the counts. */
export function assertReconciled(result: Reconciliation): void {
  const kinds = ['missing', 'doubled', 'unexpected', 'transactions', 'rows', 'fields', 'replay', 'reads'] as const;
  const problems = kinds.filter((kind) => result[kind].length > 0);
  if (problems.length === 0) return;
  const lines = problems.map((kind) => `${kind} (${result[kind].length}): ${result[kind].slice(0, 8).join('; ')}`);
  throw new Error(`the store does not reconcile (${result.stored} stored, ${result.expected} committed):\n${lines.join('\n')}`);
}

function storedChanges(
  events: readonly BusbarEvent<ChangeData>[],
  tables: BurstTables,
  fields: string[],
  reads: string[],
): { changes: StoredChange[]; readCount: number } {
  const truncations = new Map<Role, number>();
  const out: StoredChange[] = [];
  // Each row as the stream last left it (null: deleted), for checking READs.
  const latest = new Map<string, Row | null>();
  let readCount = 0;
  for (const event of events) {
    const data = event.data;
    if (data.schema !== tables.schema) continue;
    const role = tables.roleOf.get(data.table);
    if (role === undefined) {
      fields.push(`event ${event.id} names table ${JSON.stringify(data.table)}, which the burst never wrote`);
      continue;
    }
    let change: PlannedChange;
    if (data.action === 'TRUNCATE') {
      const version = (truncations.get(role) ?? 0) + 1;
      truncations.set(role, version);
      change = { role, action: 'TRUNCATE', key: '*', version, writeId: 0 };
    } else if (data.data === null) {
      fields.push(`event ${event.id}: ${data.action} without a row`);
      continue;
    } else if (data.action === 'READ') {
      readCount++;
      const key = `${role}|${rowKey(role, data.data)}`;
      const streamed = latest.get(key);
      if (streamed === undefined) reads.push(`${key}: READ (event ${event.id}) before any change of the row`);
      else if (streamed === null) reads.push(`${key}: READ (event ${event.id}) after the row was deleted`);
      else if (!sameRowAcrossSchemaChanges(data.data, streamed)) reads.push(`${key}: READ ${clip(data.data)}, the stream last had ${clip(streamed)}`);
      continue;
    } else {
      const row = data.data;
      if (!isDeepStrictEqual(data.id, expectedEventId(role, row))) {
        fields.push(`event ${event.id}: id ${JSON.stringify(data.id)}, the row says ${JSON.stringify(expectedEventId(role, row))}`);
      }
      change = { role, action: data.action, key: rowKey(role, row), version: Number(row.version), writeId: Number(row.write_id ?? 0) };
    }
    if (change.action === 'TRUNCATE') {
      for (const key of latest.keys()) if (key.startsWith(`${role}|`)) latest.delete(key);
    } else latest.set(`${role}|${change.key}`, change.action === 'DELETE' ? null : data.data);
    out.push({ event, role, change, identity: changeIdentity(change) });
  }
  return { changes: out, readCount };
}

/** Each transaction one contiguous run, numbered 0..n-1 with `last` on the final one, whole, and runs in commit order. */
function checkTransactions(changes: readonly StoredChange[], expected: ReadonlyMap<string, { entry: LedgerEntry }>): string[] {
  const problems: string[] = [];
  const finished = new Set<string>();
  let previous: bigint | undefined;
  for (let start = 0; start < changes.length; ) {
    const txid = changes[start]!.event.data.txid;
    let end = start;
    while (end < changes.length && changes[end]!.event.data.txid === txid) end++;
    const run = changes.slice(start, end);
    start = end;
    if (finished.has(txid)) problems.push(`transaction ${txid} is split: it appears again after other transactions`);
    finished.add(txid);
    const positions = new Set(run.map(({ event }) => event.data.lsn));
    if (positions.size !== 1) problems.push(`transaction ${txid} has ${positions.size} commit positions`);
    const position = commitPosition(run[0]!.event.data.lsn);
    if (previous !== undefined && position <= previous) {
      problems.push(`transaction ${txid} at ${run[0]!.event.data.lsn} is stored after a transaction that committed at or after it`);
    }
    previous = position;
    run.forEach(({ event }, index) => {
      if (event.data.index !== index || event.data.last !== (index === run.length - 1)) {
        problems.push(`transaction ${txid}: change ${index} has index ${event.data.index}, last ${event.data.last} of ${run.length}`);
      }
    });
    const entries = new Set(run.map(({ identity }) => expected.get(identity)?.entry));
    const [entry] = entries;
    if (entries.size !== 1 || entry === undefined) {
      problems.push(`transaction ${txid} holds changes of ${entries.size} writer transactions`);
    } else if (entry.changes.length !== run.length) {
      problems.push(`transaction ${txid} (${entry.tag}) has ${run.length} changes stored together, it made ${entry.changes.length}`);
    }
  }
  return problems;
}

/** `16/B374D848` (replication) or `t:1234` (trigger) as a number that orders commits. */
function commitPosition(lsn: string): bigint {
  if (lsn.startsWith('t:')) return BigInt(lsn.slice(2));
  const [high, low] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/** Per row, in log order: INSERT at version 1, each UPDATE one higher, DELETE at the last version and nothing after; TRUNCATE forgets the table. */
function checkRowVersions(changes: readonly StoredChange[]): string[] {
  const problems: string[] = [];
  const rows = new Map<string, { version: number; deleted: boolean }>();
  for (const { change, identity } of changes) {
    if (change.action === 'TRUNCATE') {
      for (const key of rows.keys()) if (key.startsWith(`${change.role}|`)) rows.delete(key);
      continue;
    }
    const key = `${change.role}|${change.key}`;
    const before = rows.get(key);
    if (before?.deleted === true) problems.push(`${identity} after the row was deleted`);
    else if (change.action === 'INSERT') {
      if (before !== undefined || change.version !== 1) problems.push(`${identity}: an INSERT of a row already at version ${before?.version}`);
    } else if (before === undefined) problems.push(`${identity} before the row's INSERT`);
    else if (change.action === 'UPDATE' && change.version !== before.version + 1) {
      problems.push(`${identity} follows version ${before.version}`);
    } else if (change.action === 'DELETE' && change.version !== before.version) {
      problems.push(`${identity} deletes a row last seen at version ${before.version}`);
    }
    rows.set(key, { version: change.version, deleted: change.action === 'DELETE' });
  }
  return problems;
}

/** Replays the store by key and compares each table's rows, column by column. */
async function checkReplay(changes: readonly StoredChange[], tables: BurstTables, admin: pg.Pool): Promise<string[]> {
  const replayed = new Map<Role, Map<string, Row>>();
  for (const { change, event, role } of changes) {
    let rows = replayed.get(role);
    if (rows === undefined) replayed.set(role, (rows = new Map()));
    if (change.action === 'TRUNCATE') rows.clear();
    else if (change.action === 'DELETE') rows.delete(change.key);
    else rows.set(change.key, event.data.data!);
  }
  const problems: string[] = [];
  for (const role of tables.roleOf.values()) {
    const result = await admin.query(`SELECT * FROM ${tables.sql[role]}`);
    const columns = result.fields.map((field) => field.name);
    const copy = replayed.get(role) ?? new Map<string, Row>();
    const actual = new Map((result.rows as Row[]).map((row) => [rowKey(role, row), row]));
    for (const [key, row] of actual) {
      const stored = copy.get(key);
      if (stored === undefined) problems.push(`${role} ${key}: in the table, not in the replayed store`);
      else {
        const projected = Object.fromEntries(columns.map((column) => [column, stored[column]]));
        if (!isDeepStrictEqual(projected, row)) problems.push(`${role} ${key}: replayed ${clip(projected)}, table ${clip(row)}`);
      }
    }
    for (const key of copy.keys()) if (!actual.has(key)) problems.push(`${role} ${key}: in the replayed store, not in the table`);
  }
  return problems;
}

/**
 * A READ shows the row as the table has it when the chunk is read: a column
 * added since the row's last change is there (NULL, no change event carried
 * it), one dropped since is gone. Every column both have must agree.
 */
function sameRowAcrossSchemaChanges(read: Row, streamed: Row): boolean {
  for (const [column, value] of Object.entries(read)) {
    if (Object.hasOwn(streamed, column) ? !isDeepStrictEqual(value, streamed[column]) : value !== null) return false;
  }
  return true;
}

function clip(row: Row): string {
  const text = JSON.stringify(row);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
