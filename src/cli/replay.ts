import { BusbarError, type BusbarClient, createClient, type ReceivedEvent } from '../client/index.ts';
import { type CliIo, type CommandLine, integerFlag, parseCommandLine, SERVER_FLAGS, serverOf, UsageError, writeResult } from './command.ts';

export const REPLAY: CommandLine = {
  name: 'replay',
  usage: '--from <N> --to-url <url> [options]',
  description:
    'Re-publishes the events at positions --from to --to of the log of --server to the server at\n' +
    '--to-url, in order, in batches. Events keep their ids, so replaying a range twice stores each\n' +
    'event once. Busbar\'s own events (busbar.* topics) are skipped unless --topics asks for them.\n' +
    'Stream membership is not copied: the events arrive as plain events. Progress goes to stderr.',
  maxPositionals: 0,
  flags: {
    from: { type: 'string', value: 'N', description: 'first position to copy (inclusive); required' },
    to: { type: 'string', value: 'N', description: 'last position to copy (inclusive; default: the head of the log when the replay starts)' },
    topics: { type: 'string', value: 'patterns', description: 'only these topics: comma-separated patterns (order.*,payment.>)' },
    subject: { type: 'string', value: 'subject', description: 'only events with this subject' },
    'to-url': { type: 'string', value: 'url', description: 'the server to publish to; required' },
    'to-api-key': { type: 'string', value: 'key', description: 'API key for --to-url (env BUSBAR_TO_API_KEY)' },
    batch: { type: 'string', value: 'N', description: 'events per publish request, 1-1000 (default 100)' },
    ...SERVER_FLAGS,
  },
  epilogue: `Example:
  busbar replay --from 1 --to 5000 --topics 'order.>' --to-url http://staging:2872`,
};

/** How often progress is reported, ms. */
const PROGRESS_EVERY_MS = 1000;

/**
 * `busbar replay`: copies a range of one server's log to another, in
 * position order, batch by batch; a batch too large for the target's body
 * limit is split. Interrupted (Ctrl-C), it finishes the batch in flight and
 * says where to continue.
 *
 * @example
 * ```ts
 * await run(['--from', '1', '--to', '500', '--to-url', 'http://127.0.0.1:2873'], io);
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number | void> {
  const parsed = parseCommandLine(REPLAY, args, io);
  if (parsed === undefined) return;
  const { values } = parsed;
  const from = integerFlag('from', values.from, 1);
  if (from === undefined) throw new UsageError('--from is required: the first position to copy', 'replay');
  if (values['to-url'] === undefined) throw new UsageError('--to-url is required: the server to publish to', 'replay');
  const batchSize = integerFlag('batch', values.batch, 1) ?? 100;
  if (batchSize > 1000) throw new UsageError(`--batch must be at most 1000, got ${batchSize}`, 'replay');
  const topics = values.topics as string | undefined;
  const source = createClient(serverOf(values, io.env));
  const targetUrl = values['to-url'] as string;
  if (!URL.canParse(targetUrl) || !/^https?:$/.test(new URL(targetUrl).protocol)) {
    throw new UsageError(`--to-url must be an http:// or https:// URL, got ${JSON.stringify(targetUrl)}`, 'replay');
  }
  const target = createClient({ url: targetUrl, apiKey: (values['to-api-key'] as string | undefined) ?? (io.env.BUSBAR_TO_API_KEY || undefined) });
  const to = integerFlag('to', values.to, 1) ?? (await source.read({ limit: 1 })).head;
  if (to < from) throw new UsageError(`--to (${to}) is before --from (${from})`, 'replay');

  const progress = new Progress(io, from, to);
  let batch: ReceivedEvent[] = [];
  let copied = 0;
  let done = from - 1; // the last position whose event (if any) is on the target
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await publishAll(target, batch);
    copied += batch.length;
    done = batch.at(-1)!.sequence;
    batch = [];
    progress.report(copied, done);
  };
  try {
    for await (const event of source.readAll({ after: from - 1, to, topics, subject: values.subject as string | undefined })) {
      if (topics === undefined && event.type.startsWith('busbar.')) continue;
      batch.push(event);
      if (batch.length >= batchSize) await flush();
      if (io.signal.aborted) break;
    }
    if (!io.signal.aborted) {
      await flush();
      done = to;
    }
  } catch (error) {
    progress.end(copied, done);
    io.stderr.write(`busbar: stopped after position ${done}; continue with --from ${done + 1}\n`);
    throw error;
  }
  progress.end(copied, done);
  if (io.signal.aborted) {
    io.stderr.write(`busbar: interrupted after position ${done}; continue with --from ${done + 1}\n`);
    return 130;
  }
  writeResult(io, `replayed ${copied} events (positions ${from}–${to}) to ${target.url}`, { replayed: copied, from, to, target: target.url });
}

/** Publishes events as one batch, halving it when the target finds it too large. */
async function publishAll(target: BusbarClient, events: ReceivedEvent[]): Promise<void> {
  try {
    await target.publishBatch(events);
  } catch (error) {
    if (error instanceof BusbarError && error.code === 'BUSBAR_ERR_PAYLOAD_TOO_LARGE' && events.length > 1) {
      const half = Math.ceil(events.length / 2);
      await publishAll(target, events.slice(0, half));
      await publishAll(target, events.slice(half));
      return;
    }
    const range = events.length === 1 ? `position ${events[0]!.sequence}` : `positions ${events[0]!.sequence}–${events.at(-1)!.sequence}`;
    throw error instanceof BusbarError
      ? new BusbarError(error.code, `the target refused the events at ${range}: ${error.message}`, { cause: error, details: error.details })
      : error;
  }
}

/** Progress on stderr: rewritten in place in a terminal, a line a second otherwise; silent for short runs. */
class Progress {
  private readonly io: CliIo;
  private readonly from: number;
  private readonly to: number;
  private readonly started = Date.now();
  private lastReport = Date.now();
  private shown = false;

  constructor(io: CliIo, from: number, to: number) {
    this.io = io;
    this.from = from;
    this.to = to;
  }

  report(copied: number, position: number): void {
    const now = Date.now();
    if (now - this.lastReport < PROGRESS_EVERY_MS) return;
    this.lastReport = now;
    this.shown = true;
    this.write(copied, position, false);
  }

  end(copied: number, position: number): void {
    if (this.shown) this.write(copied, position, true);
  }

  private write(copied: number, position: number, last: boolean): void {
    const share = Math.floor(((position - this.from + 1) / (this.to - this.from + 1)) * 100);
    const rate = Math.round(copied / Math.max((Date.now() - this.started) / 1000, 0.001));
    const line = `busbar: replayed ${copied} events, at position ${position} of ${this.to} (${share}%), ${rate} events/s`;
    if (this.io.stderr.isTTY === true) this.io.stderr.write(`\r${line}\u001b[K${last ? '\n' : ''}`);
    else this.io.stderr.write(`${line}\n`);
  }
}
