/**
 * The server suite (issue 5 §7), every number measured in the same run
 * against its limit, with servers, load generators and clients each in
 * their own process:
 *
 * 1. HTTP publish throughput against a bare Fastify route (server-http.bench.ts);
 * 2. fan-out to 1,000 WebSocket and 1,000 SSE clients against bare broadcast
 *    loops, at a steady rate and at full speed (server-fanout.bench.ts);
 * 3. memory per idle streaming connection, against bare `ws` and SSE.
 *
 * Each run takes seconds, so the suite runs at most {@link MAX_ROUNDS}
 * rounds (plus one warm-up) whatever `--rounds` asks. Environment:
 * `BUSBAR_BENCH_DIR` (where the SQLite files go), `BUSBAR_BENCH_POSTGRES_URL`,
 * `BUSBAR_BENCH_HTTP_CLIENT` (`wrk` or `node`), `BUSBAR_BENCH_CLIENTS`,
 * `BUSBAR_BENCH_FANOUT_RATE` (events/s of the steady runs), and
 * `BUSBAR_BENCH_PROFILE=<dir>` (CPU profiles of the server processes).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Child } from './server-children.ts';
import { BARE_WS, type FanoutResults, fanoutScenarios } from './server-fanout.bench.ts';
import { type HttpScenario, httpScenarios, type ServerUnderTest } from './server-http.bench.ts';
import { count, decimals, type Medians, printMarkdownTable } from './server-rounds.ts';
import { filesystemOf } from './store.bench.ts';

const MAX_ROUNDS = 4;
const POSTGRES_URL = process.env.BUSBAR_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const HTTP_CONNECTIONS = 64;
const BARE_FASTIFY = 'bare Fastify route (202)';

export async function run(requestedRounds: number, scale: number): Promise<void> {
  const quick = scale < 1;
  // A smoke run: one round, no warm-up.
  const rounds = quick ? 1 : Math.min(requestedRounds, MAX_ROUNDS);
  const warmup = quick ? 0 : 1;
  const clients = Number(process.env.BUSBAR_BENCH_CLIENTS ?? 1000);
  checkOpenFilesLimit(clients);
  const chosen = process.env.BUSBAR_BENCH_DIR ?? (filesystemOf(tmpdir()) === 'tmpfs' ? '/var/tmp' : tmpdir());
  const directory = mkdtempSync(join(chosen, 'busbar-bench-server-'));
  const profiles = process.env.BUSBAR_BENCH_PROFILE;
  const serverArgv = ['--expose-gc', ...(profiles === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(profiles)])];
  const notes = [
    `${rounds} round${rounds === 1 ? '' : 's'} after ${warmup} warm-up (the suite's maximum is ${MAX_ROUNDS}), medians; ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}) shared by every process`,
    `SQLite files in ${directory} (${filesystemOf(directory)}), synchronous = FULL`,
    'CPU: CPU time of each process during the run over the run\'s wall time (1.00 = one core busy throughout); machine: every process of ' +
      'the machine, from /proc/stat, so machine minus the rest is what else ran; µs per event or delivery: the server\'s CPU time over what it did',
  ];
  try {
    const servers = await startHttpServers(directory, serverArgv, notes);
    try {
      printHttp(await httpScenarios({ servers, rounds, warmup, seconds: quick ? 1 : 2, connections: HTTP_CONNECTIONS, directory, notes }));
    } finally {
      for (const server of servers) await server.child.stop();
    }
    const fanout = await fanoutScenarios({
      clients,
      rounds,
      warmup,
      rate: Number(process.env.BUSBAR_BENCH_FANOUT_RATE ?? 25),
      steadySeconds: quick ? 1 : 2,
      burst: quick ? 200 : 300,
      directory,
      serverArgv,
      notes,
    });
    printFanout(fanout, clients);
    console.log('');
    for (const note of notes) console.log(`- ${note}`);
    if (profiles !== undefined) console.log(`- CPU profiles of the server processes in ${resolve(profiles)}`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Each client and each server connection is a file descriptor, in the client and the server process. */
function checkOpenFilesLimit(clients: number): void {
  let limits: string;
  try {
    limits = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return; // not Linux: too many clients will fail to connect, with the reason
  }
  const line = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  const limit = line === null || line[1] === 'unlimited' ? Infinity : Number(line[1]);
  if (limit < clients + 200) {
    throw new Error(`the open-files limit is ${limit}, too low for ${clients} clients: raise it (ulimit -n ${Math.max(4096, clients * 2)}) and run again`);
  }
}

async function startHttpServers(directory: string, serverArgv: string[], notes: string[]): Promise<ServerUnderTest[]> {
  const start = async (name: string, args: string[], status: number): Promise<ServerUnderTest> => {
    const child = await Child.start(name, './server-process.ts', args, serverArgv);
    return { name, child, url: await child.call<string>('url'), status };
  };
  const servers = [
    await start(BARE_FASTIFY, ['bare-fastify'], 202),
    await start('busbar, SQLite (synchronous = FULL)', ['busbar-sqlite', join(directory, 'http.db')], 201),
  ];
  try {
    servers.push(await start('busbar, PostgreSQL', ['busbar-postgres', POSTGRES_URL], 201));
    notes.push(`PostgreSQL at ${new URL(POSTGRES_URL).host}, a fresh schema dropped after`);
  } catch (error) {
    notes.push(`PostgreSQL rows not run: ${(error as Error).message.split('\n')[0]}`);
  }
  return servers;
}

function printHttp(scenarios: HttpScenario[]): void {
  console.log('## HTTP publish\n');
  const rows: (string | number)[][] = [];
  for (const scenario of scenarios) {
    const base = scenario.medians.get(BARE_FASTIFY)!.eventsPerSecond!;
    for (const [name, m] of scenario.medians) {
      rows.push([
        scenario.name,
        name,
        count(m.eventsPerSecond!),
        decimals(m.eventsPerSecond! / base, 3),
        decimals(m.p50!),
        decimals(m.p99!),
        decimals((m.serverCpu! / m.eventsPerSecond!) * 1e6, 1),
        shares(m.serverCpu!, m.clientCpu!, m.machineCpu!),
        count(m.failed!),
      ]);
    }
  }
  printMarkdownTable(
    ['scenario', 'competitor', 'events/s', 'ratio to bare', 'p50 ms', 'p99 ms', 'server CPU µs/event', 'CPU: server / client / machine', 'failed'],
    rows,
  );
}

/** CPU shares of one run as `0.93 / 0.41 / 1.98` (cores busy on average). */
function shares(...values: number[]): string {
  return values.map((value) => decimals(value)).join(' / ');
}

function printFanout({ steady, fullSpeed, memory, rate, burst }: FanoutResults, clients: number): void {
  console.log(`\n## Fan-out to ${clients.toLocaleString('en-US')} clients\n`);
  const rows: (string | number)[][] = [];
  const add = (scenario: string, medians: Medians) => {
    const base = medians.get(BARE_WS)!.deliveredPerSecond!;
    for (const [name, m] of medians) {
      rows.push([
        scenario,
        name,
        count(m.deliveredPerSecond!),
        decimals(m.deliveredPerSecond! / base, 3),
        decimals(m.p50!),
        decimals(m.p99!),
        decimals(m.loopDelayP99!, 1),
        decimals((m.serverCpu! / m.deliveredPerSecond!) * 1e6, 1),
        shares(m.serverCpu!, m.clientCpu!, m.publisherCpu!, m.machineCpu!),
        count(m.lost! + m.publishFailed!) + (m.closed! > 0 ? ` (${count(m.closed!)} closed)` : ''),
      ]);
    }
  };
  add(`steady, ${rate} events/s`, steady);
  add(`full speed, ${burst} events`, fullSpeed);
  printMarkdownTable(
    [
      'scenario',
      'competitor',
      'delivered/s',
      'ratio to bare ws',
      'p50 ms',
      'p99 ms',
      'server loop delay p99 ms',
      'server CPU µs/delivery',
      'CPU: server / clients / publisher / machine',
      'lost',
    ],
    rows,
  );
  console.log(`\n## Memory per idle connection (${clients.toLocaleString('en-US')} subscribed clients, after GC)\n`);
  printMarkdownTable(
    ['competitor', 'RSS KiB', 'heap KiB', 'external KiB'],
    memory.map((row) => [row.name, decimals(row.rss / 1024, 1), decimals(row.heapUsed / 1024, 1), decimals(row.external / 1024, 1)]),
  );
}
