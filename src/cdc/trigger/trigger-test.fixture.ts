/**
 * The harness trigger mode's integration tests share: a fresh application
 * schema and a fresh Busbar schema per test file on the shared test
 * database (so files run in parallel), a sink that records what arrives,
 * and a stream that can be stopped and restarted. These tests never skip:
 * without PostgreSQL they fail saying what to start.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { dropSchema, TEST_DATABASE_URL, testPool } from '../../store/postgres/test-database.fixture.ts';
import type { CapturedTransaction, ChangeData } from '../change.ts';
import type { CaptureSource, ChangeSink } from '../capture-source.ts';
import { createTriggerSource, type TriggerSourceOptions } from './index.ts';

export { TEST_DATABASE_URL };

/** Records every delivered transaction; optionally slow or failing. */
export class RecordingSink implements ChangeSink {
  readonly transactions: CapturedTransaction[] = [];
  /** Delay each delivery by this many ms (a slow bus). */
  delayMs = 0;
  /**
   * When set, the next delivery rejects with it, and so does every later one
   * until `recover()` — as the real sink fails every delivery after a failed one.
   */
  failNext: Error | undefined;
  private failed: Error | undefined;
  private readonly waiters = new Set<() => void>();

  recover(): void {
    this.failed = undefined;
  }

  async deliver(transaction: CapturedTransaction): Promise<void> {
    if (this.failNext !== undefined) {
      this.failed = this.failNext;
      this.failNext = undefined;
    }
    if (this.failed !== undefined) throw this.failed;
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.transactions.push(transaction);
    for (const wake of this.waiters) wake();
  }

  get changes(): ChangeData[] {
    return this.transactions.flatMap((transaction) => transaction.changes);
  }

  /** Resolves once `ready()` holds; fails the test with `what` after `timeoutMs`. */
  async until(ready: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`timed out waiting for ${what}: ${this.changes.length} changes arrived`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 50));
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.add(done);
      }).finally(() => this.waiters.clear());
    }
  }
}

/** A running `stream` that can be stopped. */
export interface RunningStream {
  readonly done: Promise<void>;
  readonly connected: Promise<void>;
  stop(): Promise<void>;
}

export function startStream(source: CaptureSource, sink: ChangeSink): RunningStream {
  const controller = new AbortController();
  let markConnected: () => void = () => {};
  const connected = new Promise<void>((resolve) => (markConnected = resolve));
  const done = source.stream(sink, controller.signal, () => markConnected());
  done.catch(() => {}); // observed by whoever awaits `done` or `stop()`
  const connectedOrFailed = Promise.race([connected, done.then(() => assert.fail('stream ended before it connected'))]);
  connectedOrFailed.catch(() => {}); // likewise: a test that expects `done` to reject need not await this
  return {
    done,
    connected: connectedOrFailed,
    async stop() {
      controller.abort();
      await done;
    },
  };
}

/** A test file's database: its own app schema (`app`) and Busbar schema. */
export interface CaptureDatabase {
  readonly admin: pg.Pool;
  /** The application schema the test's tables live in. */
  readonly app: string;
  readonly quotedApp: string;
  /** Busbar's schema for this file. */
  readonly busbarSchema: string;
  readonly warnings: string[];
  /** A source on this file's Busbar schema (closed at cleanup). */
  source(options?: Partial<TriggerSourceOptions>): CaptureSource;
  /** Runs SQL on a dedicated connection (its own session: SET lasts), returning it for further use. */
  connect(): Promise<pg.PoolClient>;
  cleanup(): Promise<void>;
}

export async function openCaptureDatabase(): Promise<CaptureDatabase> {
  const admin = await testPool(20);
  const suffix = randomBytes(5).toString('hex');
  const app = `cdc_app_${suffix}`;
  const busbarSchema = `cdc_busbar_${suffix}`;
  await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(app)}`);
  const sources: CaptureSource[] = [];
  const clients: pg.PoolClient[] = [];
  const warnings: string[] = [];
  return {
    admin,
    app,
    quotedApp: pg.escapeIdentifier(app),
    busbarSchema,
    warnings,
    source(options = {}) {
      const source = createTriggerSource({
        connectionString: TEST_DATABASE_URL,
        schema: busbarSchema,
        pollInterval: 200,
        onWarning: (message) => warnings.push(message),
        ...options,
      });
      sources.push(source);
      return source;
    },
    async connect() {
      const client = await admin.connect();
      clients.push(client);
      return client;
    },
    async cleanup() {
      for (const client of clients) client.release(true);
      const last = sources[0];
      if (last !== undefined) await last.drop().catch(() => {});
      await Promise.allSettled(sources.map((source) => source.close()));
      await dropSchema(admin, busbarSchema);
      await dropSchema(admin, app);
      await admin.end();
    },
  };
}

/** The ids of `changes` of one table, in order. */
export function idsOf(changes: readonly ChangeData[], table?: string): unknown[] {
  return changes.filter((change) => table === undefined || change.table === table).map((change) => change.id);
}

/** A database of its own (for capture-all and role tests, which must not touch other tests' tables). */
export interface ScratchDatabase {
  readonly name: string;
  readonly url: string;
  /** A pool on the scratch database, as the superuser. */
  readonly pool: pg.Pool;
  /** The URL of the scratch database as `role`. */
  urlAs(role: string): string;
  cleanup(): Promise<void>;
}

export async function createScratchDatabase(): Promise<ScratchDatabase> {
  const admin = await testPool(2);
  const name = `cdc_scratch_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 10 });
  pool.on('error', () => {});
  return {
    name,
    url: url.toString(),
    pool,
    urlAs(role) {
      const as = new URL(url);
      as.username = encodeURIComponent(role);
      as.password = '';
      return as.toString();
    },
    async cleanup() {
      await pool.end();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
