/**
 * The database every CDC benchmark runs against: a private PostgreSQL with
 * `wal_level=logical` (the test fixture's), started with production-like
 * durability, so the shared server is never touched; plus the PostgreSQL
 * client programs the suite compares against (`pg_recvlogical`, `pgbench`)
 * and what the parts share (slots, pgbench, CPU readings).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { type PrivatePostgres, startPrivatePostgres } from '../src/cdc/private-postgres.fixture.ts';

const execute = promisify(execFile);

/** The publication every replication reader of the suite reads (pg_recvlogical, the raw reader, Busbar). */
export const PUBLICATION = 'bench';

/**
 * Unlike the test fixture's (fsync off), what a production server runs
 * with: commits are flushed, so writers pay a real WAL flush; a large
 * max_wal_size keeps checkpoints out of the timed runs.
 */
const SETTINGS: Record<string, string> = {
  fsync: 'on',
  full_page_writes: 'on',
  synchronous_commit: 'on',
  shared_buffers: '128MB',
  max_wal_size: '4GB',
  checkpoint_timeout: '30min',
  max_connections: '60',
  max_replication_slots: '20',
  max_wal_senders: '20',
};

export interface BenchDatabase {
  readonly postgres: PrivatePostgres;
  readonly url: string;
  readonly admin: pg.Pool;
  /** `/usr/lib/postgresql/<version>/bin`. */
  readonly bin: string;
  readonly version: string;
  /** Settings worth printing with the numbers. */
  readonly settings: Record<string, string>;
  stop(): Promise<void>;
}

export async function startBenchDatabase(): Promise<BenchDatabase> {
  const bin = binDirectory();
  const postgres = await startPrivatePostgres({ settings: SETTINGS });
  const admin = new pg.Pool({ connectionString: postgres.connectionString, max: 4 });
  admin.on('error', () => {});
  const { rows } = await admin.query<{ name: string; setting: string; unit: string | null }>(
    `SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)`,
    [['server_version', 'fsync', 'synchronous_commit', 'wal_level', 'shared_buffers', 'wal_sync_method', 'track_commit_timestamp']],
  );
  const settings = Object.fromEntries(rows.map((row) => [row.name, row.unit === '8kB' ? `${(Number(row.setting) * 8) / 1024}MB` : row.setting]));
  return {
    postgres,
    url: postgres.connectionString,
    admin,
    bin,
    version: settings.server_version ?? '?',
    settings,
    async stop() {
      await admin.end().catch(() => {});
      await postgres.stop();
    },
  };
}

/** `PG_BIN`, else the highest `/usr/lib/postgresql/<version>/bin` (as the fixture picks its server). */
function binDirectory(): string {
  if (process.env.PG_BIN !== undefined) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root).filter((name) => existsSync(join(root, name, 'bin', 'pg_recvlogical'))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error(`no pg_recvlogical under ${root}/<version>/bin: install postgresql, or set PG_BIN`);
  return join(root, versions[0]!, 'bin');
}

/** Connection flags of the PostgreSQL client programs. */
function connectionFlags(database: BenchDatabase): string[] {
  return ['-h', '127.0.0.1', '-p', String(database.postgres.port), '-U', 'postgres'];
}

/** A fresh logical slot for pgoutput, at the current end of the WAL. */
export async function createSlot(database: BenchDatabase, slot: string): Promise<void> {
  await database.admin.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
}

/** Drops a slot, first ending whoever still reads it. */
export async function dropSlot(database: BenchDatabase, slot: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const { rows } = await database.admin.query<{ active_pid: number | null }>(
      `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    if (rows.length === 0) return;
    if (rows[0]!.active_pid === null) {
      await database.admin.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
      return;
    }
    await database.admin.query(`SELECT pg_terminate_backend($1)`, [rows[0]!.active_pid]);
    await sleep(10);
  }
  throw new Error(`slot ${slot} stayed active`);
}

/**
 * Moves a slot nobody reads to the current end of the WAL, so a reader
 * attached next does not first decode what other variants wrote.
 */
export async function advanceSlot(database: BenchDatabase, slot: string): Promise<void> {
  // The last reader's walsender may still be exiting: the slot is free once it did.
  for (let attempt = 0; ; attempt++) {
    const { rows } = await database.admin.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    if (rows[0]?.active !== true) break;
    if (attempt === 1000) throw new Error(`slot ${slot} is still in use`);
    await sleep(10);
  }
  await database.admin.query(`SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [slot]);
}

/** The WAL position once everything written so far is flushed: a drain that reaches it is caught up. */
export async function flushedEnd(database: BenchDatabase): Promise<string> {
  const { rows } = await database.admin.query<{ lsn: string }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
  const target = rows[0]!.lsn;
  for (;;) {
    const { rows: flushed } = await database.admin.query<{ done: boolean }>(`SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS done`, [target]);
    if (flushed[0]!.done) return target;
    await sleep(5);
  }
}

/**
 * `pg_recvlogical` draining `slot` with pgoutput to /dev/null until `endpos`
 * (the raw limit of catch-up). Resolves with the seconds from streaming
 * start (its `-v` line saying so) to exit, so connecting is not counted, as
 * it is not for Busbar; `watch` follows its CPU.
 */
export async function recvlogicalUntil(database: BenchDatabase, slot: string, endpos: string, watch?: CpuWatch): Promise<number> {
  const child = spawn(join(database.bin, 'pg_recvlogical'), [...recvlogicalArgs(database, slot), '-v', '--no-loop', '-E', endpos], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  watch?.track('client', child.pid);
  let started: bigint | undefined;
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
    if (started === undefined && errors.includes('starting log streaming')) started = process.hrtime.bigint();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const ended = process.hrtime.bigint();
  if (code !== 0 || started === undefined) throw new Error(`pg_recvlogical failed (${code}): ${errors}`);
  return Number(ended - started) / 1e9;
}

/** `pg_recvlogical` streaming `slot` to /dev/null until stopped (the raw reader attached to writers). */
export function recvlogicalAttached(database: BenchDatabase, slot: string): { pid: number; stop(): Promise<void> } {
  const child = spawn(join(database.bin, 'pg_recvlogical'), recvlogicalArgs(database, slot), { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) throw new Error(`pg_recvlogical exited early: ${errors}`);
      child.kill('SIGINT');
      await exited;
    },
  };
}

function recvlogicalArgs(database: BenchDatabase, slot: string): string[] {
  return [
    ...connectionFlags(database), '-d', 'postgres', '--slot', slot, '--start', '-f', '/dev/null', '-F', '0',
    '-o', 'proto_version=1', '-o', `publication_names=${PUBLICATION}`,
  ];
}

export interface PgbenchRun {
  /** Transactions per second, as pgbench reports them. */
  readonly tps: number;
  /** Latency average in ms, as pgbench reports it. */
  readonly latencyMs: number;
}

/** pgbench running `sql` with `clients` connections for `seconds` (optionally throttled to `rate` tx/s). */
export async function pgbench(
  database: BenchDatabase,
  sql: string,
  options: { clients: number; threads: number; seconds: number; rate?: number; file: string },
): Promise<PgbenchRun> {
  await writeFile(options.file, `${sql}\n`);
  const { stdout } = await execute(join(database.bin, 'pgbench'), [
    ...connectionFlags(database), '-n', '-c', String(options.clients), '-j', String(options.threads), '-T', String(options.seconds),
    ...(options.rate === undefined ? [] : ['-R', String(options.rate)]),
    '-f', options.file, 'postgres',
  ]);
  const tps = /tps = ([\d.]+)/.exec(stdout);
  const latency = /latency average = ([\d.]+) ms/.exec(stdout);
  if (tps === null) throw new Error(`pgbench printed no tps:\n${stdout}`);
  return { tps: Number(tps[1]), latencyMs: latency === null ? Number.NaN : Number(latency[1]) };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const WATCH_EVERY_MS = 50;

/** CPU seconds a process has used so far (user + system), from /proc; undefined once it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * Follows the CPU time of processes that may exit before the measurement
 * ends (pg_recvlogical, a walsender whose connection closes): their /proc
 * entry is read every 50 ms and the last reading kept. A process tracked
 * from its start needs no first reading; one tracked later is measured from then.
 */
export class CpuWatch {
  private readonly processes = new Map<string, { pid: number; first: number; last: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.read(), WATCH_EVERY_MS);
    this.timer.unref();
  }

  /** `fromStart`: the process began with the measurement, so all its CPU counts. */
  track(name: string, pid: number | undefined, fromStart = true): void {
    if (pid === undefined) return;
    const now = cpuSecondsOf(pid) ?? 0;
    this.processes.set(name, { pid, first: fromStart ? 0 : now, last: now });
  }

  /** Tracks the walsender serving `slot` once it appears. */
  async trackWalsender(database: BenchDatabase, slot: string): Promise<void> {
    this.track('walsender', await walsenderOf(database, slot));
  }

  /** CPU seconds per tracked name since it was tracked. */
  stop(): Record<string, number> {
    this.read();
    clearInterval(this.timer);
    return Object.fromEntries([...this.processes].map(([name, each]) => [name, each.last - each.first]));
  }

  private read(): void {
    for (const each of this.processes.values()) {
      const now = cpuSecondsOf(each.pid);
      if (now !== undefined) each.last = now;
    }
  }
}

/** The walsender process serving `slot`, once a reader attached. */
export async function walsenderOf(database: BenchDatabase, slot: string): Promise<number | undefined> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const { rows } = await database.admin.query<{ active_pid: number | null }>(
      `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    const pid = rows[0]?.active_pid;
    if (pid !== null && pid !== undefined) return pid;
    await sleep(2);
  }
  return undefined;
}

/**
 * CPU seconds the whole PostgreSQL server has used so far: the postmaster,
 * its live children (backends, walsenders, background workers), and the
 * children that already exited (the postmaster's cutime/cstime: a writer's
 * backend is gone once pgbench disconnects).
 */
export function serverCpuSeconds(postmaster: number): number {
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(name);
      if (pid === postmaster) {
        total += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      } else if (Number(fields[1]) === postmaster) {
        total += Number(fields[11]) + Number(fields[12]);
      }
    } catch {
      // The process exited meanwhile: the postmaster's cutime has it.
    }
  }
  return total / TICKS_PER_SECOND;
}

/** CPU seconds this process has used so far. */
export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** The machine's 1-minute load average: how busy the shared machine was around a measurement. */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

export async function rowCount(database: BenchDatabase, table: string): Promise<number> {
  const { rows } = await database.admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}

/** Polls `done` every few ms; fails naming `what` after `timeoutMs`. */
export async function until(done: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
