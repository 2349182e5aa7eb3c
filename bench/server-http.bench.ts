/**
 * HTTP publish throughput: Busbar's `POST /v1/events` (durable: SQLite with
 * synchronous = FULL, and PostgreSQL when reachable) against a bare Fastify
 * route that parses the same body and answers 202, the limit. The same
 * client drives every server with the same keep-alive connections: `wrk`
 * (one thread) when it is installed, else a Node `http.Agent` loop in its
 * own process. `BUSBAR_BENCH_HTTP_CLIENT=node|wrk` picks one.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Child, machineBusyMs } from './server-children.ts';
import type { HttpLoadArgs, HttpLoadResult } from './server-load.ts';
import { type Medians, runRounds, type Trial } from './server-rounds.ts';

/** A server of the suite, started by server.bench.ts. */
export interface ServerUnderTest {
  name: string;
  child: Child;
  url: string;
  /** The status its publish route answers with. */
  status: number;
}

export interface HttpScenario {
  name: string;
  eventsPerRequest: number;
  medians: Medians;
}

export interface HttpOptions {
  servers: ServerUnderTest[];
  rounds: number;
  /** Rounds run first and not counted. */
  warmup: number;
  seconds: number;
  connections: number;
  directory: string;
  notes: string[];
}

/** One event as a client would send it: plain JSON, 129 bytes. */
const EVENT = { type: 'bench.http', data: { order: 'o-1042', customer: 'c-77', total: 129.5, note: 'x'.repeat(40) } };

interface LoadRun {
  ok: number;
  failed: number;
  seconds: number;
  p50: number;
  p99: number;
  /** CPU time the client used, ms. */
  cpuMs: number;
}

type Load = (url: string, body: string, server: ServerUnderTest) => Promise<LoadRun>;

export async function httpScenarios(options: HttpOptions): Promise<HttpScenario[]> {
  const { load, stop } = await chooseLoad(options);
  try {
    const scenarios: HttpScenario[] = [];
    for (const eventsPerRequest of [1, 100]) {
      const body = JSON.stringify(eventsPerRequest === 1 ? EVENT : Array.from({ length: eventsPerRequest }, () => EVENT));
      const trials: Trial[] = options.servers.map((server) => ({
        name: server.name,
        run: () => measure(server, body, eventsPerRequest, load),
      }));
      scenarios.push({
        name: `HTTP publish, ${eventsPerRequest === 1 ? '1 event' : `${eventsPerRequest} events`} per request, ${options.connections} connections`,
        eventsPerRequest,
        medians: await runRounds(trials, options.rounds, options.warmup),
      });
    }
    return scenarios;
  } finally {
    await stop();
  }
}

async function measure(server: ServerUnderTest, body: string, eventsPerRequest: number, load: Load) {
  const machineBefore = machineBusyMs();
  const before = await server.child.cpu();
  const run = await load(`${server.url}/v1/events`, body, server);
  const serverCpuMs = (await server.child.cpu()) - before;
  const machineMs = machineBusyMs() - machineBefore;
  return {
    eventsPerSecond: (run.ok * eventsPerRequest) / run.seconds,
    failed: run.failed,
    p50: run.p50,
    p99: run.p99,
    serverCpu: serverCpuMs / 1000 / run.seconds,
    clientCpu: run.cpuMs / 1000 / run.seconds,
    machineCpu: machineMs / 1000 / run.seconds,
  };
}

async function chooseLoad(options: HttpOptions): Promise<{ load: Load; stop(): Promise<void> }> {
  const wanted = process.env.BUSBAR_BENCH_HTTP_CLIENT;
  const hasWrk = spawnSync('wrk', ['-v']).error === undefined;
  if (wanted === 'wrk' && !hasWrk) throw new Error('BUSBAR_BENCH_HTTP_CLIENT=wrk, but wrk is not installed (apt-get install wrk)');
  if (hasWrk && wanted !== 'node') {
    options.notes.push(`HTTP client: wrk, 1 thread, ${options.connections} keep-alive connections, ${options.seconds} s per run`);
    return { load: (url, body) => wrk(url, body, options), stop: async () => {} };
  }
  options.notes.push(
    `HTTP client: Node http.Agent loop in its own process, ${options.connections} keep-alive connections, ${options.seconds} s per run` +
      (hasWrk ? '' : ' (wrk is not installed: it costs the client less CPU, see bench/README.md)'),
  );
  const child = await Child.start('http client', './server-load.ts', []);
  return {
    async load(url, body, server) {
      const before = await child.cpu();
      const args: HttpLoadArgs = { url, body, contentType: 'application/json', connections: options.connections, durationMs: options.seconds * 1000, status: server.status };
      const result = await child.call<HttpLoadResult>('http', args);
      const cpuMs = (await child.cpu()) - before;
      return { ok: result.ok, failed: result.failed, seconds: result.seconds, p50: result.latency.p50, p99: result.latency.p99, cpuMs };
    },
    stop: () => child.stop(),
  };
}

let scripts = 0;

/** One wrk run; `times` after it prints the CPU time wrk used (bash's children). */
async function wrk(url: string, body: string, options: HttpOptions): Promise<LoadRun> {
  const script = join(options.directory, `wrk-${scripts++}.lua`);
  writeFileSync(script, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[${body}]==]\n`);
  const command = `wrk -t1 -c${options.connections} -d${options.seconds}s --timeout 10s --latency -s "$0" "$1"; times`;
  const child = spawn('bash', ['-c', command, script, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const requests = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(output);
  if (code !== 0 || requests === null) throw new Error(`wrk failed (exit ${code}):\n${output}`);
  const seconds = Number(requests[2]) * { ms: 0.001, s: 1, m: 60 }[requests[3] as 'ms' | 's' | 'm'];
  const failed = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0) + socketErrors(output);
  const times = output.trim().split('\n').slice(-1)[0]!.split(/\s+/).map(minutesAndSeconds);
  return {
    ok: Number(requests[1]) - failed,
    failed,
    seconds,
    p50: latencyMs(output, '50%'),
    p99: latencyMs(output, '99%'),
    cpuMs: (times[0]! + times[1]!) * 1000,
  };
}

function socketErrors(output: string): number {
  const line = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return line === null ? 0 : line.slice(1).reduce((sum, value) => sum + Number(value), 0);
}

/** `99%    4.56ms` in wrk's latency distribution, in ms. */
function latencyMs(output: string, percentile: string): number {
  const match = new RegExp(`${percentile}\\s+([\\d.]+)(us|ms|s)`).exec(output);
  if (match === null) return Number.NaN;
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2] as 'us' | 'ms' | 's'];
}

/** `0m1.234s` → 1.234 */
function minutesAndSeconds(text: string): number {
  const match = /^(\d+)m([\d.]+)s$/.exec(text);
  return match === null ? Number.NaN : Number(match[1]) * 60 + Number(match[2]);
}
