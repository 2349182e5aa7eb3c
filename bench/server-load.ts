/**
 * The server suite's HTTP load generator, in its own process (never in a
 * server's event loop, or the client's cost would be charged to the
 * server):
 *
 * - `http`: `connections` keep-alive connections (an `http.Agent`), each
 *   sending the same POST again as soon as the answer is in, for a fixed
 *   time; used when `wrk` is not installed;
 * - `publish`: the fan-out publisher: `count` events to a URL, each
 *   stamped with its send time in `data.sent`, at a steady rate or as fast
 *   as `concurrency` requests in flight allow.
 */
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve } from './server-children.ts';
import { LatencyHistogram, type LatencySummary, wallClockMs } from './server-latency-histogram.ts';

export interface HttpLoadArgs {
  url: string;
  body: string;
  contentType: string;
  connections: number;
  durationMs: number;
  /** The status every answer should have; others are counted apart. */
  status: number;
}

export interface HttpLoadResult {
  /** Answers with the expected status. */
  ok: number;
  /** Answers with another status, or failed requests. */
  failed: number;
  seconds: number;
  latency: LatencySummary;
}

export interface PublishArgs {
  url: string;
  count: number;
  /** Events per second; 0 publishes as fast as `concurrency` requests in flight allow. */
  rate: number;
  concurrency: number;
  /** Length of the filler string in each event's data, so frames have a realistic size. */
  padBytes: number;
}

export interface PublishResult {
  published: number;
  failed: number;
  /** Wall-clock ms (comparable across processes) of the first send. */
  firstSentAt: number;
}

const latency = new LatencyHistogram();

/** One POST; resolves with the status, or 0 when the request failed. */
function post(agent: Agent, url: URL, body: Buffer, contentType: string): Promise<number> {
  return new Promise((resolve) => {
    const outgoing = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': body.length } },
      (response) => {
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', () => resolve(0));
        response.resume();
      },
    );
    outgoing.on('error', () => resolve(0));
    outgoing.end(body);
  });
}

async function httpLoad(args: HttpLoadArgs): Promise<HttpLoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: args.connections });
  const url = new URL(args.url);
  const body = Buffer.from(args.body);
  latency.reset();
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = started + args.durationMs;
  const loop = async () => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      const status = await post(agent, url, body, args.contentType);
      latency.record(performance.now() - sent);
      if (status === args.status) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: args.connections }, loop));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { ok, failed, seconds, latency: latency.summary() };
}

async function publish(args: PublishArgs): Promise<PublishResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: Math.max(args.concurrency, 64) });
  const url = new URL(args.url);
  const pad = 'x'.repeat(args.padBytes);
  let published = 0;
  let failed = 0;
  const firstSentAt = wallClockMs();
  const send = async () => {
    // The stamp is taken last, right before the request goes out.
    const body = Buffer.from(`{"type":"bench.fan","data":{"pad":"${pad}","sent":${wallClockMs()}}}`);
    const status = await post(agent, url, body, 'application/json');
    if (status >= 200 && status < 300) published++;
    else failed++;
  };
  if (args.rate === 0) {
    let started = 0;
    const loop = async () => {
      while (started < args.count) {
        started++;
        await send();
      }
    };
    await Promise.all(Array.from({ length: args.concurrency }, loop));
  } else {
    const interval = 1000 / args.rate;
    const start = performance.now();
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < args.count; i++) {
      const wait = start + i * interval - performance.now();
      if (wait > 0) await sleep(wait);
      const sending = send();
      inFlight.add(sending);
      void sending.then(() => inFlight.delete(sending));
      // A bound on requests in flight: a server that stops answering stalls the publisher, not its memory.
      if (inFlight.size >= 1024) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }
  agent.destroy();
  return { published, failed, firstSentAt };
}

serve({ http: httpLoad, publish });
