/**
 * What trigger-mode capture costs writers: 8 pgbench clients doing
 * single-row INSERT commits, on a table without capture, with Busbar's
 * trigger capture (its reader attached and draining), and with a seed-style
 * trigger that sends the row as the NOTIFY payload (a listener attached).
 * Rounds rotate the order; the table shows medians and the median of each
 * round's ratio to no capture (robust against a machine shared with others).
 *
 *   node bench/cdc-trigger-writers.ts [--rounds 7] [--seconds 5] [--clients 8]
 *
 * Needs pgbench on the PATH; BUSBAR_BENCH_POSTGRES_URL picks the database.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import type { CapturedTransaction } from '../src/cdc/change.ts';
import { createTriggerSource } from '../src/cdc/trigger/index.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    clients: { type: 'string' },
    'commit-delay': { type: 'string' },
  },
});
const rounds = Number(values.rounds ?? 7);
const seconds = Number(values.seconds ?? 5);
const clients = Number(values.clients ?? 8);
/**
 * Microseconds each WAL flush waits (commit_delay, with commit_siblings 0):
 * emulates a disk whose fsync takes that long, where a VM's is nearly free.
 */
const commitDelay = Number(values['commit-delay'] ?? 0);
const url = process.env.BUSBAR_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const suffix = randomBytes(4).toString('hex');
const app = `bench_cdc_app_${suffix}`;
const busbarSchema = `bench_cdc_busbar_${suffix}`;
const seedChannel = `bench_seed_${suffix}`;

const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`
  CREATE SCHEMA ${app};
  CREATE TABLE ${app}.plain (id bigserial PRIMARY KEY, name text NOT NULL, amount numeric, at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE ${app}.captured (LIKE ${app}.plain INCLUDING ALL);
  CREATE TABLE ${app}.seed (LIKE ${app}.plain INCLUDING ALL);
  CREATE FUNCTION ${app}.seed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('${seedChannel}', json_build_object('timestamp', now(), 'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME,
      'action', TG_OP, 'data', row_to_json(NEW))::text);
    RETURN NULL;
  END $$;
  CREATE TRIGGER seed AFTER INSERT OR UPDATE OR DELETE ON ${app}.seed FOR EACH ROW EXECUTE FUNCTION ${app}.seed_notify();
`);

// Busbar's capture on "captured", with a reader streaming into a counting sink.
const source = createTriggerSource({ connectionString: url, schema: busbarSchema, onWarning: () => {} });
await source.ensureFor([{ schema: app, name: 'captured' }], { replicaIdentityFull: new Map() });
let delivered = 0;
const sink = { deliver: async (transaction: CapturedTransaction) => void (delivered += transaction.changes.length) };
const stop = new AbortController();
const streaming = source.stream(sink, stop.signal, () => {});

// The seed's listener.
const listener = new pg.Client({ connectionString: url, application_name: 'bench seed listener' });
await listener.connect();
let heard = 0;
listener.on('notification', () => heard++);
await listener.query(`LISTEN ${seedChannel}`);
const listenerPid = (await listener.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
const readerPid = (
  await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'busbar cdc %' LIMIT 1")
).rows[0]?.pid;

const variants = ['no capture', 'busbar trigger capture', 'seed trigger (NOTIFY payload)'] as const;
const tables: Record<(typeof variants)[number], string> = {
  'no capture': 'plain',
  'busbar trigger capture': 'captured',
  'seed trigger (NOTIFY payload)': 'seed',
};
const scripts = new Map<string, string>();
for (const variant of variants) {
  const file = join(tmpdir(), `busbar-bench-${suffix}-${tables[variant]}.sql`);
  await writeFile(file, `INSERT INTO ${app}.${tables[variant]} (name, amount) VALUES ('writer ' || :client_id, random() * 1000);\n`);
  scripts.set(variant, file);
}

/** CPU seconds a process has used (user + system), from /proc; undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // CLK_TCK is 100 on Linux
  } catch {
    return undefined;
  }
}

/**
 * CPU used by everything a variant runs: pgbench itself, its backends, the
 * capture reader (its backend and this Node process) and the seed's listener.
 * Time on a machine shared with other work swings; CPU per transaction does not.
 */
async function pgbench(script: string): Promise<{ tps: number; cpuMicrosPerTx: number }> {
  const target = new URL(url);
  const env = commitDelay > 0 ? { ...process.env, PGOPTIONS: `-c commit_delay=${commitDelay} -c commit_siblings=0` } : process.env;
  const last = new Map<number, number>();
  const first = new Map<number, number>();
  const sample = async (): Promise<void> => {
    const { rows } = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name IN ('pgbench', 'bench seed listener') OR application_name LIKE 'busbar cdc %'",
    );
    for (const { pid } of rows) {
      const used = cpuSeconds(pid);
      if (used === undefined) continue;
      if (!first.has(pid)) first.set(pid, pid === listenerPid || pid === readerPid ? used : 0);
      last.set(pid, used);
    }
  };
  await sample();
  const nodeBefore = process.cpuUsage();
  const child = run('pgbench', [
    '-h', target.hostname, '-p', target.port || '5432', '-U', decodeURIComponent(target.username || 'postgres'),
    '-n', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds), '-f', script,
    target.pathname.slice(1),
  ], { env });
  const pgbenchPid = child.child.pid!;
  let pgbenchCpu = 0;
  const sampler = setInterval(() => {
    pgbenchCpu = cpuSeconds(pgbenchPid) ?? pgbenchCpu;
    sample().catch(() => {});
  }, 100);
  const { stdout } = await child.finally(() => clearInterval(sampler));
  await sample();
  const nodeCpu = process.cpuUsage(nodeBefore);
  const tps = /tps = ([\d.]+)/.exec(stdout);
  const processed = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (tps === null || processed === null) throw new Error(`pgbench printed no tps:\n${stdout}`);
  const node = (nodeCpu.user + nodeCpu.system) / 1e6;
  let backends = 0;
  let helpers = 0; // the reader's and the listener's backends
  for (const [pid, used] of last) {
    if (pid === listenerPid || pid === readerPid) helpers += used - first.get(pid)!;
    else backends += used - first.get(pid)!;
  }
  const perTx = (seconds: number): number => (seconds * 1e6) / Number(processed[1]);
  breakdown.push(
    `${script.includes('captured') ? 'capture' : script.includes('seed') ? 'seed' : 'plain'}: writers' backends ${Math.round(perTx(backends))}, ` +
      `pgbench ${Math.round(perTx(pgbenchCpu))}, reader/listener backend ${Math.round(perTx(helpers))}, node ${Math.round(perTx(node))} µs/tx`,
  );
  return { tps: Number(tps[1]), cpuMicrosPerTx: perTx(backends + helpers + pgbenchCpu + node) };
}

const breakdown: string[] = [];
const scores = new Map<string, number[]>(variants.map((variant) => [variant, []]));
const ratios = new Map<string, number[]>(variants.map((variant) => [variant, []]));
const cpus = new Map<string, number[]>(variants.map((variant) => [variant, []]));
const drains: number[] = [];
console.log(
  `# trigger capture vs writers: ${clients} clients, single-row INSERT commits, ${seconds} s x ${rounds} rounds` +
    (commitDelay > 0 ? `, commit_delay ${commitDelay} µs` : '') +
    '\n',
);
for (let round = 0; round < rounds; round++) {
  const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
  const tps = new Map<string, number>();
  for (const variant of order) {
    const result = await pgbench(scripts.get(variant)!);
    tps.set(variant, result.tps);
    cpus.get(variant)!.push(result.cpuMicrosPerTx);
    if (variant === 'busbar trigger capture') {
      // How long the reader needs to deliver what the writers committed.
      const started = Date.now();
      const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${app}.captured`);
      while (delivered < rows[0]!.n) await new Promise((resolve) => setTimeout(resolve, 5));
      drains.push(Date.now() - started);
    }
  }
  for (const variant of variants) {
    scores.get(variant)!.push(tps.get(variant)!);
    ratios.get(variant)!.push(tps.get(variant)! / tps.get('no capture')!);
  }
  console.log(`round ${round + 1}: ${variants.map((variant) => `${variant} ${Math.round(tps.get(variant)!)}`).join(', ')}`);
  if (process.env.BENCH_VERBOSE) for (const line of breakdown.splice(0)) console.log(`  ${line}`);
}

const median = (list: readonly number[]): number => {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const baseCpu = median(cpus.get('no capture')!);
console.log('\n| writers | median tx/s | median ratio to no capture | CPU µs per tx (all processes) | CPU-bound ratio (base CPU / CPU) |');
console.log('|---|---:|---:|---:|---:|');
for (const variant of variants) {
  const cpu = median(cpus.get(variant)!);
  console.log(
    `| ${variant} | ${Math.round(median(scores.get(variant)!))} | ${median(ratios.get(variant)!).toFixed(2)} | ${Math.round(cpu)} | ${(baseCpu / cpu).toFixed(2)} |`,
  );
}
console.log(`\nreader drain after each capture round (ms): ${drains.join(', ')}; changes delivered: ${delivered}; seed NOTIFYs heard: ${heard}`);

stop.abort();
await streaming;
await source.drop();
await source.close();
await listener.end();
await admin.query(`DROP SCHEMA ${app} CASCADE`);
await admin.end();
