/**
 * What a scenario does to capture in the middle of a write burst: the four
 * faults of issue 4 §7, and the schema changes (TRUNCATE, ADD and DROP
 * COLUMN) that must flow through the same stream.
 */
import pg from 'pg';
import type { CdcTestDatabase } from '../cdc-harness.fixture.ts';
import { type BurstLedger, type PlannedChange, runTransaction, type TransactionWork, type WriterConnection } from './burst-ledger.fixture.ts';
import type { BurstTables } from './burst-tables.fixture.ts';
import type { CaptureProcess } from './capture-process.fixture.ts';

/** Everything a step may act on. */
export interface StepContext {
  readonly mode: 'replication' | 'trigger';
  readonly db: CdcTestDatabase;
  readonly capture: CaptureProcess;
  /** Slot / reader name. */
  readonly name: string;
  readonly tables: BurstTables;
  readonly ledger: BurstLedger;
  /** The schema-change actor's connection, kept across its steps. */
  readonly ddl: WriterConnection;
}

/** One thing done at a point of the burst; a fault is followed by waiting for capture to reconnect. */
export interface Step {
  /** Fraction of the burst's transactions done before it runs. */
  readonly at: number;
  readonly kind: 'fault' | 'schema';
  readonly label: string;
  run(context: StepContext): Promise<void>;
}

/** How long a frozen server stays frozen: longer than watchdogInterval + timeout (500 + 500 ms). */
export const FREEZE_MS = 1500;

/** (a) Terminates the capture's backends: the reader (walsender or trigger reader), its watchdog and health links. */
export function terminateReader(at: number): Step {
  return {
    at,
    kind: 'fault',
    label: 'pg_terminate_backend',
    async run({ db, mode, name }) {
      const reader = mode === 'replication' ? `backend_type = 'walsender'` : `application_name = ${literal(`busbar cdc ${name}`)}`;
      const { rows } = await db.admin.query<{ reader: boolean; name: string; state: string | null }>(
        `SELECT ${reader} AS reader, application_name AS name, state, pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND application_name LIKE 'busbar%'`,
      );
      if (!rows.some((row) => row.reader)) {
        const found = rows.map((row) => `${row.name} (${row.state})`).join(', ');
        throw new Error(`no reader connection to terminate among the capture's backends: ${found}`);
      }
    },
  };
}

/** (b) Restarts PostgreSQL: fast shutdown (every session ends, open transactions roll back), then start. */
export function restartServer(at: number): Step {
  return { at, kind: 'fault', label: 'restart PostgreSQL', run: ({ db }) => db.postgres.restart() };
}

/** (c) SIGKILLs the capture process and starts another on the same store file. */
export function killReaderProcess(at: number): Step {
  return {
    at,
    kind: 'fault',
    label: 'SIGKILL the capture process',
    async run({ capture }) {
      await capture.kill();
      capture.start();
    },
  };
}

/** (d) Freezes the whole server (postmaster and backends) with SIGSTOP, then thaws it. */
export function freezeServer(at: number): Step {
  return {
    at,
    kind: 'fault',
    label: `SIGSTOP the server for ${FREEZE_MS} ms`,
    async run({ db }) {
      db.postgres.kill('SIGSTOP');
      try {
        await new Promise((resolve) => setTimeout(resolve, FREEZE_MS));
      } finally {
        db.postgres.kill('SIGCONT');
      }
    },
  };
}

/**
 * Where capture has recorded its progress in the database: the slot's
 * confirmed_flush_lsn (replication), the reader's checkpoint (trigger).
 * A fault test waits for it to move before each fault, so the fault hits a
 * capture that resumes from the middle of the burst, not from its start.
 */
export async function confirmedPosition({ db, mode, name }: StepContext): Promise<bigint> {
  const { rows } =
    mode === 'replication'
      ? await db.admin.query<{ at: string | null }>(
          `SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::text AS at FROM pg_replication_slots WHERE slot_name = $1`,
          [name],
        )
      : await db.admin.query<{ at: string | null }>(`SELECT checkpoint::text AS at FROM ${pg.escapeIdentifier(`busbar_cdc_${name}`)}.readers WHERE name = $1`, [
          name,
        ]);
  return BigInt(rows[0]?.at ?? 0);
}

/** The items the schema-change actor inserts to mark where `extra` appeared and went: every change between them carries it. */
export const COLUMN_ADDED_ITEM = 90_000_001;
export const COLUMN_DROPPED_ITEM = 90_000_002;

/** ADD COLUMN extra on the items table, with a marker row in the same transaction. */
export function addColumn(at: number): Step {
  return schemaStep(at, 'ADD COLUMN', async (work, { tables }, ids) => {
    await work.query(`SET LOCAL lock_timeout = '2s'`);
    await work.query(`ALTER TABLE ${tables.sql.items} ADD COLUMN extra text`);
    const writeId = ids.next();
    await work.query(`INSERT INTO ${tables.sql.items} (id, version, write_id, writer, extra) VALUES ($1, 1, $2, 90, 'added ü')`, [
      COLUMN_ADDED_ITEM,
      writeId,
    ]);
    work.made({ role: 'items', action: 'INSERT', key: String(COLUMN_ADDED_ITEM), version: 1, writeId });
  });
}

/** Sets `extra` on a few items the writers own (they keep updating them). */
export function fillColumn(at: number): Step {
  return schemaStep(at, 'UPDATE the added column', async (work, { tables }, ids) => {
    const writeId = ids.next(20);
    const rows = await work.query<{ id: number; version: number; write_id: number }>(
      `UPDATE ${tables.sql.items} i SET extra = 'filled ✓', version = i.version + 1, write_id = $1::int + pick.n::int - 1
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ${tables.sql.items} WHERE writer BETWEEN 1 AND 20 ORDER BY id LIMIT 20) pick
       WHERE i.id = pick.id
       RETURNING i.id, i.version, i.write_id`,
      [writeId],
    );
    for (const row of rows) work.made({ role: 'items', action: 'UPDATE', key: String(row.id), version: row.version, writeId: row.write_id });
  });
}

/** DROP COLUMN extra, then a marker row in the same transaction. */
export function dropColumn(at: number): Step {
  return schemaStep(at, 'DROP COLUMN', async (work, { tables }, ids) => {
    await work.query(`SET LOCAL lock_timeout = '2s'`);
    await work.query(`ALTER TABLE ${tables.sql.items} DROP COLUMN extra`);
    const writeId = ids.next();
    await work.query(`INSERT INTO ${tables.sql.items} (id, version, write_id, writer) VALUES ($1, 1, $2, 90)`, [COLUMN_DROPPED_ITEM, writeId]);
    work.made({ role: 'items', action: 'INSERT', key: String(COLUMN_DROPPED_ITEM), version: 1, writeId });
  });
}

/** TRUNCATE of one burst table while writers keep writing to it. */
export function truncate(at: number, role: 'lines' | 'audit'): Step {
  return schemaStep(at, `TRUNCATE ${role}`, async (work, { tables, ledger }) => {
    await work.query(`SET LOCAL lock_timeout = '2s'`);
    await work.query(`TRUNCATE ${tables.sql[role]}`);
    // Its version is its place among the table's truncations (reconciliation counts them in log order).
    const before = ledger.committed().flatMap((entry) => entry.changes).filter((change) => change.action === 'TRUNCATE' && change.role === role);
    work.made({ role, action: 'TRUNCATE', key: '*', version: before.length + 1, writeId: 0 });
  });
}

/** Write ids of the schema-change actor (writer 90). */
interface WriteIds {
  next(count?: number): number;
}

let actorWrites = 0;
const actorIds: WriteIds = {
  next(count = 1) {
    const first = 900_000_000 + actorWrites + 1;
    actorWrites += count;
    return first;
  },
};

/** A schema change in one transaction, retried until it commits (a lock timeout or deadlock only delays it). */
function schemaStep(at: number, label: string, body: (work: TransactionWork, context: StepContext, ids: WriteIds) => Promise<void>): Step {
  return {
    at,
    kind: 'schema',
    label,
    async run(context) {
      for (let attempt = 1; ; attempt++) {
        const tag = `ddl-${label}-${at}-${attempt}`;
        const entry = await runTransaction(context.ddl, context.ledger, context.tables.ledgerSql, tag, {}, (work) => body(work, context, actorIds));
        if (entry.outcome === 'committed' || entry.outcome === 'lost-committed') return;
        if (attempt === 20) throw new Error(`${label} did not commit in 20 attempts: ${[...context.ledger.errors.keys()].join(', ')}`);
      }
    },
  };
}

/** The marker transaction: once its row is in the store, everything committed before it is too. */
export async function writeMarker(context: StepContext, id: number): Promise<void> {
  const change: PlannedChange = { role: 'marker', action: 'INSERT', key: String(id), version: 1, writeId: 0 };
  for (;;) {
    const entry = await runTransaction(context.ddl, context.ledger, context.tables.ledgerSql, `marker-${id}`, {}, async (work) => {
      await work.query(`INSERT INTO ${context.tables.sql.marker} (id, version) VALUES ($1, 1)`, [id]);
      work.made(change);
    });
    if (entry.outcome === 'committed' || entry.outcome === 'lost-committed') return;
  }
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
