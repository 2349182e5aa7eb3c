import type { CdcBus } from '../cdc/index.ts';
import type { Accepted, BusbarClient } from '../client/index.ts';
import { BusbarError } from '../core/errors.ts';
import type { BusbarEvent } from '../core/event.ts';
import type { Receipt } from '../core/delivery.ts';

export interface ServerOutputOptions {
  readonly client: Pick<BusbarClient, 'publishBatch'>;
  /**
   * The server refused events in a way retrying cannot fix (a 4xx such as
   * 401, 403, 400, or one event over its body limit). The publish also fails,
   * so nothing past it is confirmed; the caller should stop capturing.
   */
  readonly onRefused: (error: BusbarError) => void;
  /** Events per request at most. Default 1000 (the chunk a capture hands on of a larger transaction). */
  readonly maxBatch?: number;
}

/** Successful requests after which a batch size halved by a 413 may double again. */
const REGROW_AFTER = 100;

/**
 * A Busbar server as the bus a change capture publishes into: the capture
 * hands it each transaction (and, while a request is in flight, the
 * transactions that arrived meanwhile, together), and it publishes them
 * with `publishBatch`, in order, one request at a time, so a change is
 * confirmed to PostgreSQL only once the server answered 2xx. The change
 * events keep their deterministic ids: what is published again after a
 * restart is stored once by the server.
 *
 * Requests hold at most `maxBatch` events and end at a transaction's last
 * change when they can, so a transaction is one request unless it is larger
 * than that; one the server refuses as too large (413) is split in halves,
 * and later requests stay that small for a while. A network failure or a 5xx fails the publish (the capture then
 * reconnects and delivers it again); a refusal retrying cannot fix goes to
 * `onRefused` too.
 *
 * @example
 * ```ts
 * const bus = serverOutput({ client: createClient({ url }), onRefused: (error) => stop(error) });
 * const cdc = createPostgresCdc({ connectionString, tables: ['orders'], bus });
 * ```
 */
export function serverOutput(options: ServerOutputOptions): CdcBus {
  const { client, onRefused } = options;
  const maxBatch = options.maxBatch ?? 1000;
  let batchSize = maxBatch;
  let successes = 0;

  const publishEvents = async (events: readonly BusbarEvent[]): Promise<Receipt[]> => {
    const receipts: Receipt[] = [];
    let next = 0;
    while (next < events.length) {
      const chunk = events.slice(next, chunkEnd(events, next, batchSize));
      let accepted: Accepted[];
      try {
        accepted = await client.publishBatch(chunk);
      } catch (error) {
        if (isTooLarge(error) && chunk.length > 1) {
          batchSize = Math.ceil(chunk.length / 2);
          successes = 0;
          continue;
        }
        if (isPermanent(error)) onRefused(error);
        throw error;
      }
      for (let k = 0; k < chunk.length; k++) receipts.push(remoteReceipt(chunk[k]!, accepted[k]));
      next += chunk.length;
      if (batchSize < maxBatch && ++successes >= REGROW_AFTER) {
        batchSize = Math.min(maxBatch, batchSize * 2);
        successes = 0;
      }
    }
    return receipts;
  };

  return {
    publishEvents,
    publishEvent: async (event) => (await publishEvents([event as BusbarEvent]))[0]!,
  };
}

/** Where the request starting at `start` ends: at most `size` events, after a transaction's last change if one is in reach. */
function chunkEnd(events: readonly BusbarEvent[], start: number, size: number): number {
  const end = Math.min(events.length, start + size);
  if (end === events.length) return end;
  for (let k = end - 1; k >= start; k--) if ((events[k]!.data as { last?: unknown } | null)?.last === true) return k + 1;
  return end;
}

function isTooLarge(error: unknown): boolean {
  return error instanceof BusbarError && error.code === 'BUSBAR_ERR_PAYLOAD_TOO_LARGE';
}

/** A 4xx other than a timeout or a rate limit: sending the same events again gets the same answer. */
function isPermanent(error: unknown): error is BusbarError {
  return error instanceof BusbarError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429;
}

/** The receipt of an event another process's bus took: its position there, no local recipients. */
function remoteReceipt(event: BusbarEvent, accepted: Accepted | undefined): Receipt {
  return {
    id: accepted?.id ?? event.id,
    event,
    sequence: accepted?.position,
    recipients: [],
    settled: async () => [],
  };
}
