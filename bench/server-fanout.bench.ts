/**
 * Fan-out: 1,000 WebSocket and, separately, 1,000 SSE clients of one topic,
 * against bare broadcast loops (`ws`, and `node:http` for SSE) that send
 * each published event, encoded once, to every client. Each competitor is
 * a server process with its own crowd of clients in another process; one
 * publisher process POSTs events stamped with their send time, at a steady
 * rate and at full speed. Before any event, each server's memory is read
 * with and without its 1,000 idle, subscribed connections.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Child, machineBusyMs } from './server-children.ts';
import type { ConnectArgs, ExpectResult } from './server-fanout-clients.ts';
import type { PublishArgs, PublishResult } from './server-load.ts';
import { type Medians, runRounds, type Trial } from './server-rounds.ts';

export interface FanoutOptions {
  clients: number;
  rounds: number;
  /** Rounds run first and not counted. */
  warmup: number;
  /** Events per second of the steady runs, and how long each lasts. */
  rate: number;
  steadySeconds: number;
  /** Events per full-speed run. */
  burst: number;
  directory: string;
  serverArgv: string[];
  notes: string[];
}

export interface MemoryRow {
  name: string;
  /** Bytes per connection. */
  rss: number;
  heapUsed: number;
  external: number;
}

export interface FanoutResults {
  rate: number;
  burst: number;
  steady: Medians;
  fullSpeed: Medians;
  memory: MemoryRow[];
}

/** The baseline every fan-out ratio is relative to. */
export const BARE_WS = 'bare ws broadcast';

/** Filler in each event's data: frames of 330–350 bytes, Busbar's and the bare ones alike. */
const PAD_BYTES = 100;
const PUBLISHERS_IN_FLIGHT = 16;

interface Competitor {
  name: string;
  server: [kind: string, target?: string];
  clients(url: string): Omit<ConnectArgs, 'count'>;
  publishPath: string;
}

const COMPETITORS: Competitor[] = [
  {
    name: BARE_WS,
    server: ['bare-ws'],
    clients: (url) => ({ kind: 'ws', url: url.replace('http', 'ws'), readyOnFirstMessage: false }),
    publishPath: '/publish',
  },
  {
    name: 'bare SSE broadcast',
    server: ['bare-sse'],
    clients: (url) => ({ kind: 'sse', url: `${url}/stream`, readyOnFirstMessage: false }),
    publishPath: '/publish',
  },
  {
    name: 'busbar WebSocket',
    server: ['busbar-sqlite', 'fanout-ws.db'],
    clients: (url) => ({ kind: 'ws', url: `${url.replace('http', 'ws')}/v1/ws?topics=bench.fan`, readyOnFirstMessage: true }),
    publishPath: '/v1/events',
  },
  {
    name: 'busbar SSE',
    server: ['busbar-sqlite', 'fanout-sse.db'],
    clients: (url) => ({ kind: 'sse', url: `${url}/v1/stream?topics=bench.fan`, readyOnFirstMessage: false }),
    publishPath: '/v1/events',
  },
];

interface Running {
  competitor: Competitor;
  server: Child;
  crowd: Child;
  publishUrl: string;
}

export async function fanoutScenarios(options: FanoutOptions): Promise<FanoutResults> {
  const started: Child[] = [];
  try {
    const publisher = await Child.start('publisher', './server-load.ts', []);
    started.push(publisher);
    const running: Running[] = [];
    const memory: MemoryRow[] = [];
    for (const competitor of COMPETITORS) {
      const [kind, file] = competitor.server;
      const server = await Child.start(competitor.name, './server-process.ts', file === undefined ? [kind] : [kind, join(options.directory, file)], options.serverArgv);
      started.push(server);
      const crowd = await Child.start(`${competitor.name} clients`, './server-fanout-clients.ts', []);
      started.push(crowd);
      const url = await server.call<string>('url');
      memory.push(await connectMeasured(competitor, server, crowd, url, options.clients));
      running.push({ competitor, server, crowd, publishUrl: `${url}${competitor.publishPath}` });
    }
    options.notes.push(
      `fan-out: ${options.clients} clients per competitor in one client process each; publisher: one process, plain JSON POSTs, ` +
        `${PUBLISHERS_IN_FLIGHT} in flight at full speed; frames of 330–350 bytes`,
    );
    const trials = (publish: Omit<PublishArgs, 'url'>, timeoutMs: number): Trial[] =>
      running.map((entry) => ({ name: entry.competitor.name, run: () => measure(entry, publisher, { ...publish, url: entry.publishUrl }, timeoutMs) }));
    const steadyCount = Math.round(options.rate * options.steadySeconds);
    const steady = await runRounds(
      trials({ count: steadyCount, rate: options.rate, concurrency: PUBLISHERS_IN_FLIGHT, padBytes: PAD_BYTES }, options.steadySeconds * 1000 + 30_000),
      options.rounds,
      options.warmup,
    );
    const fullSpeed = await runRounds(trials({ count: options.burst, rate: 0, concurrency: PUBLISHERS_IN_FLIGHT, padBytes: PAD_BYTES }, 60_000), options.rounds, options.warmup);
    return { rate: options.rate, burst: options.burst, steady, fullSpeed, memory };
  } finally {
    for (const child of started.reverse()) await child.stop();
  }
}

/** Connects the crowd and returns the server's memory growth per connection. */
async function connectMeasured(competitor: Competitor, server: Child, crowd: Child, url: string, clients: number): Promise<MemoryRow> {
  const before = await server.call<NodeJS.MemoryUsage>('memory');
  const connected = await crowd.call<number>('connect', { ...competitor.clients(url), count: clients } satisfies ConnectArgs);
  // Let the last handshakes' garbage and buffers settle before reading.
  await sleep(500);
  const held = await server.call<number>('connections');
  if (connected !== clients || held !== clients) {
    throw new Error(`${competitor.name}: ${connected} clients connected, the server holds ${held}; expected ${clients}`);
  }
  const after = await server.call<NodeJS.MemoryUsage>('memory');
  const per = (field: 'rss' | 'heapUsed' | 'external' | 'arrayBuffers') => (after[field] - before[field]) / clients;
  // arrayBuffers is part of external in Node's accounting.
  return { name: competitor.name, rss: per('rss'), heapUsed: per('heapUsed'), external: per('external') };
}

async function measure(entry: Running, publisher: Child, publish: PublishArgs, timeoutMs: number) {
  const cpu = () => Promise.all([entry.server.cpu(), entry.crowd.cpu(), publisher.cpu(), machineBusyMs()]);
  await entry.crowd.call('reset');
  await entry.server.call('loopDelay');
  const before = await cpu();
  const started = performance.now();
  const receiving = entry.crowd.call<ExpectResult>('expect', { messages: publish.count, timeoutMs });
  const sent = await publisher.call<PublishResult>('publish', publish);
  const got = await receiving;
  const after = await cpu();
  const elapsedMs = performance.now() - started;
  const loop = await entry.server.call<{ p99: number }>('loopDelay');
  // Cores busy on average: CPU ms over wall ms of the same window.
  const share = (index: number) => (after[index]! - before[index]!) / elapsedMs;
  return {
    deliveredPerSecond: got.received / ((got.lastReceivedAt - sent.firstSentAt) / 1000),
    p50: got.latency.p50,
    p99: got.latency.p99,
    lost: got.expected - got.received,
    publishFailed: sent.failed,
    closed: got.closed,
    serverCpu: share(0),
    clientCpu: share(1),
    publisherCpu: share(2),
    machineCpu: share(3),
    loopDelayP99: loop.p99,
  };
}
