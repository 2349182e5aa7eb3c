import { createClient, type EventInput } from '../client/index.ts';
import { type CliIo, type CommandLine, integerFlag, parseCommandLine, SERVER_FLAGS, serverOf, UsageError } from './command.ts';

export const BENCH: CommandLine = {
  name: 'bench',
  usage: '[options]',
  description:
    'Measures a server from here: HTTP publish throughput and latency (one event per request, then\n' +
    'batches) and WebSocket delivery (publish → receive) to a subscriber, and prints a table. The\n' +
    'events stay in the log, under the topic bench.<run>.event; the key needs publish and subscribe\n' +
    'rights on bench.>. Numbers include this machine and the network: run it where your clients run.',
  maxPositionals: 0,
  flags: {
    events: { type: 'string', value: 'N', description: 'events per phase (default 2000)' },
    size: { type: 'string', value: 'bytes', description: 'payload size of each event (default 100)' },
    concurrency: { type: 'string', value: 'N', description: 'requests in flight at once (default 16)' },
    batch: { type: 'string', value: 'N', description: 'events per request in the batch phase, 1-1000 (default 100)' },
    ...SERVER_FLAGS,
  },
};

/** How long the subscriber may take to receive everything after the last publish, ms. */
const DELIVERY_TIMEOUT_MS = 30_000;

interface Row {
  readonly measure: string;
  readonly perSecond: number;
  readonly latencies: number[];
}

/**
 * `busbar bench`: a quick throughput and latency check of a running server.
 *
 * @example
 * ```ts
 * await run(['--events', '1000', '--concurrency', '8'], io);
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number | void> {
  const parsed = parseCommandLine(BENCH, args, io);
  if (parsed === undefined) return;
  const { values } = parsed;
  const count = integerFlag('events', values.events, 1) ?? 2000;
  const size = integerFlag('size', values.size, 0) ?? 100;
  const concurrency = integerFlag('concurrency', values.concurrency, 1) ?? 16;
  const batchSize = integerFlag('batch', values.batch, 1) ?? 100;
  if (batchSize > 1000) throw new UsageError(`--batch must be at most 1000, got ${batchSize}`, 'bench');
  const client = createClient(serverOf(values, io.env));
  const run = Math.random().toString(36).slice(2, 8);
  const topic = `bench.${run}.event`;
  const padding = 'x'.repeat(size);

  const deliveries: number[] = [];
  let firstDelivery = 0;
  let lastDelivery = 0;
  const subscription = client.subscribe(
    topic,
    (event) => {
      const now = performance.now();
      firstDelivery ||= now;
      lastDelivery = now;
      deliveries.push(now - (event.data as { sent: number }).sent);
    },
    { signal: io.signal, bufferSize: 10_000 },
  );
  await subscription.ready;
  io.stderr.write(`busbar: bench ${run} against ${client.url}: ${count} events of ${size} bytes per phase, ${concurrency} requests in flight\n`);
  try {
    const single = await timed(count, concurrency, io.signal, async () => {
      await client.publish(topic, { sent: performance.now(), padding });
    });
    const batches = Math.ceil(count / batchSize);
    const batched = await timed(batches, concurrency, io.signal, async (index) => {
      const sent = performance.now();
      const events: EventInput[] = Array.from({ length: Math.min(batchSize, count - index * batchSize) }, () => ({ type: topic, data: { sent, padding } }));
      await client.publishBatch(events);
    });
    const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
    while (deliveries.length < 2 * count && Date.now() < deadline && !io.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 10));
    if (io.signal.aborted) return 130;
    if (deliveries.length < 2 * count) {
      io.stderr.write(`busbar: the subscriber received ${deliveries.length} of ${2 * count} events within ${DELIVERY_TIMEOUT_MS / 1000} s\n`);
    }
    io.stdout.write(`${table([
      { measure: 'HTTP publish, 1 event per request', perSecond: count / (single.seconds || Number.EPSILON), latencies: single.latencies },
      { measure: `HTTP publish, batches of ${batchSize} (latency per batch)`, perSecond: count / (batched.seconds || Number.EPSILON), latencies: batched.latencies },
      { measure: 'WebSocket delivery, publish → receive', perSecond: deliveries.length / (Math.max(lastDelivery - firstDelivery, 1) / 1000), latencies: deliveries },
    ])}\n`);
    return deliveries.length < 2 * count ? 1 : 0;
  } finally {
    await subscription.close();
  }
}

/** Runs `task` `total` times with `concurrency` in flight; each call's latency in ms, and the whole in seconds. */
async function timed(total: number, concurrency: number, signal: AbortSignal, task: (index: number) => Promise<void>): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < total && !signal.aborted) {
      const index = next++;
      const began = performance.now();
      await task(index);
      latencies.push(performance.now() - began);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return { seconds: (performance.now() - started) / 1000, latencies };
}

function table(rows: Row[]): string {
  const cells = rows.map((row) => {
    const sorted = Float64Array.from(row.latencies).sort();
    const at = (share: number): string => (sorted.length === 0 ? '-' : sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!.toFixed(2));
    return [row.measure, Math.round(row.perSecond).toLocaleString('en-US'), at(0.5), at(0.99)];
  });
  const header = ['measure', 'events/s', 'p50 ms', 'p99 ms'];
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((cell) => cell[column]!.length)));
  const line = (cell: string[]) => `| ${cell.map((text, column) => (column === 0 ? text.padEnd(widths[column]!) : text.padStart(widths[column]!))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (column === 0 ? '-'.repeat(width + 2) : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...cells.map(line)].join('\n');
}
