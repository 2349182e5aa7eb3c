/**
 * What the CDC integration tests share: a private PostgreSQL with
 * `wal_level=logical`, an admin connection for the test's own SQL, a
 * durable bus, and ways to wait for and read what arrived.
 */
import pg from 'pg';
import { createBus } from '../core/bus.ts';
import type { Bus } from '../core/bus-types.ts';
import type { BusbarEvent } from '../core/event.ts';
import type { EventLog } from '../core/event-log.ts';
import { createMemoryStore, type MemoryStore } from '../store/memory/index.ts';
import type { ChangeData } from './change.ts';
import { type PrivatePostgres, startPrivatePostgres } from './private-postgres.fixture.ts';

export interface CdcTestDatabase {
  readonly postgres: PrivatePostgres;
  readonly connectionString: string;
  /** A pool for the test's own SQL. */
  readonly admin: pg.Pool;
  stop(): Promise<void>;
}

/** Starts a private logical-replication PostgreSQL for one test file. */
export async function startCdcDatabase(settings?: Record<string, string>): Promise<CdcTestDatabase> {
  const postgres = await startPrivatePostgres(settings === undefined ? {} : { settings });
  const admin = new pg.Pool({ connectionString: postgres.connectionString, max: 4 });
  admin.on('error', () => {});
  return {
    postgres,
    connectionString: postgres.connectionString,
    admin,
    async stop() {
      await admin.end().catch(() => {});
      await postgres.stop();
    },
  };
}

/** A durable bus on a memory store: a change counts as delivered once the store holds it. */
export function durableBus(store: EventLog = createMemoryStore()): { bus: Bus; store: EventLog } {
  return { bus: createBus({ store, onError: () => {} }), store };
}

/** Every change event the store holds, in log order. */
export async function storedChanges(store: EventLog | MemoryStore): Promise<BusbarEvent<ChangeData>[]> {
  const events: BusbarEvent<ChangeData>[] = [];
  let after = 0;
  for (;;) {
    const page = await store.readAll({ after, limit: 1000 });
    for (const logged of page.events) {
      if (logged.event.type.startsWith('cdc.')) events.push(logged.event as BusbarEvent<ChangeData>);
    }
    if (page.last === after) return events;
    after = page.last;
  }
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeout` ms. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeout = 10_000): Promise<Exclude<T, false | undefined>> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The slot's confirmed_flush_lsn as a bigint (0 when it has none). */
export async function confirmedLsn(admin: pg.Pool, slot = 'busbar'): Promise<bigint> {
  const { rows } = await admin.query(
    `SELECT COALESCE(confirmed_flush_lsn, '0/0') - '0/0'::pg_lsn AS lsn FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return rows[0] === undefined ? 0n : BigInt(rows[0].lsn);
}

/** The server's current WAL insert position as a bigint. */
export async function currentLsn(admin: pg.Pool): Promise<bigint> {
  const { rows } = await admin.query(`SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS lsn`);
  return BigInt(rows[0].lsn);
}

/** Drops every replication slot of the instance (a test must leave none behind). */
export async function dropAllSlots(admin: pg.Pool): Promise<void> {
  await admin.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active`);
  await waitFor('slots to be released', async () => (await admin.query(`SELECT 1 FROM pg_replication_slots WHERE active`)).rowCount === 0);
  await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots`);
}

/** Collects warnings for assertions instead of printing process warnings. */
export function warningLog(): { warnings: string[]; onWarning: (message: string) => void } {
  const warnings: string[] = [];
  return { warnings, onWarning: (message) => warnings.push(message) };
}

/**
 * A memory store whose appends wait until `release()` (a slow or blocked
 * disk) and can be made to fail. `block()` closes the gate again.
 */
export function gatedStore(): { store: EventLog; release(): void; block(): void; fail(error: Error): void; readonly appends: number } {
  const inner = createMemoryStore();
  let open!: () => void;
  let gate: Promise<void> | undefined = new Promise<void>((resolve) => (open = resolve));
  let failure: Error | undefined;
  let appends = 0;
  const store = new Proxy(inner, {
    get(target, name, receiver) {
      if (name !== 'append') return Reflect.get(target, name, receiver);
      return async (...args: Parameters<EventLog['append']>) => {
        appends++;
        await gate;
        if (failure !== undefined) throw failure;
        return target.append(...args);
      };
    },
  }) as EventLog;
  return {
    store,
    release: () => {
      gate = undefined;
      open();
    },
    block: () => {
      gate ??= new Promise<void>((resolve) => (open = resolve));
    },
    fail: (error) => void (failure = error),
    get appends() {
      return appends;
    },
  };
}
