import type { Bus } from '../core/bus-types.ts';
import type { BusbarEvent } from '../core/event.ts';
import type { ChangeSink } from './capture-source.ts';
import { type ChangeData, type ChangeOrigin, changeEvent } from './change.ts';

/**
 * Reacts to a capture's life and its change events. Every method may be
 * async; `onEvent` is awaited before the change's position is confirmed, so
 * a change whose handler has not returned is delivered again after a crash
 * or reconnect (at-least-once), and a handler that throws makes capture
 * reconnect and deliver the transaction again.
 *
 * @example
 * ```ts
 * const logger: CdcHandler = {
 *   onConnect: () => console.log('streaming'),
 *   onEvent: (event) => console.log(event.type, event.data.id),
 * };
 * ```
 */
export interface CdcHandler {
  /** Capture is starting (once, at `start()` / `run()`). */
  onStart?(): void | Promise<void>;
  /** Streaming has begun (after every successful connect). */
  onConnect?(): void | Promise<void>;
  onEvent?(event: BusbarEvent<ChangeData>): void | Promise<void>;
  /** Capture is closing (once, at `close()`). */
  onClose?(): void | Promise<void>;
}

/**
 * The part of a bus the sink needs: `publishEvent`, and `publishEvents`
 * (atomic, contiguous positions) when the bus has it.
 */
export type CdcBus = Pick<Bus<any>, 'publishEvent'> & {
  publishEvents?: (events: readonly BusbarEvent[]) => Promise<unknown>;
};

export interface ChangeSinkOptions {
  readonly origin: ChangeOrigin;
  /** Where events are published; omitted, only the handlers see them. */
  readonly bus?: CdcBus | undefined;
  /** Read on every delivery, so handlers added later take part. */
  readonly handlers: readonly CdcHandler[];
  /** Called once a transaction (or chunk) is fully handled, in order. */
  readonly onDelivered?: (events: readonly BusbarEvent<ChangeData>[]) => void;
}

/**
 * The sink both capture modes deliver into: it builds each change's event
 * (deterministic id, so a redelivered change is stored once), publishes a
 * transaction's events into the bus as one unit, then awaits each handler's
 * `onEvent` in order. Deliveries resolve in call order; one that fails fails
 * every later one too, so no position past it is confirmed.
 *
 * One publish is in flight at a time; transactions that arrive meanwhile go
 * out together in the next one, in order (one append for many small
 * transactions, and commit order kept in the log). Handlers of a batch run
 * while the next batch is being published.
 *
 * With a durable bus (one with a store) a delivery resolves after the store
 * committed: at-least-once into the store, exactly once in it by event id.
 * With a memory bus it resolves once the events are queued: a crash loses
 * what subscribers had not handled (at-most-once for them).
 *
 * @example
 * ```ts
 * const sink = createChangeSink({ origin, bus, handlers: [] });
 * await sink.deliver(transaction); // in the store now
 * ```
 */
export function createChangeSink(options: ChangeSinkOptions): ChangeSink {
  const { origin, bus, handlers, onDelivered } = options;
  let waiting: Waiting[] = [];
  let publishing = false;
  let handled: Promise<void> = Promise.resolve();
  let failure: unknown;

  const handle = (batch: readonly Waiting[]): void => {
    for (const delivery of batch) {
      const step = handled.then(async () => {
        if (failure !== undefined) throw failure;
        for (const event of delivery.events) {
          for (const handler of handlers) if (handler.onEvent !== undefined) await handler.onEvent(event);
        }
        onDelivered?.(delivery.events);
      });
      handled = step.catch((error: unknown) => {
        failure ??= error;
      });
      step.then(delivery.resolve, delivery.reject);
    }
  };

  const pump = (): void => {
    if (publishing || waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    if (bus === undefined || failure !== undefined) {
      handle(batch);
      return;
    }
    publishing = true;
    const events = batch.length === 1 ? batch[0]!.events : batch.flatMap((delivery) => delivery.events);
    publishAll(bus, events).then(
      () => {
        publishing = false;
        handle(batch);
        pump();
      },
      (error: unknown) => {
        publishing = false;
        failure ??= error;
        handle(batch);
        pump();
      },
    );
  };

  return {
    deliver(transaction) {
      const changes = transaction.changes;
      const events: BusbarEvent<ChangeData>[] = new Array(changes.length);
      for (let i = 0; i < changes.length; i++) events[i] = changeEvent(changes[i]!, origin);
      return new Promise<void>((resolve, reject) => {
        waiting.push({ events, resolve, reject });
        pump();
      });
    },
  };
}

interface Waiting {
  readonly events: BusbarEvent<ChangeData>[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

async function publishAll(bus: CdcBus, events: readonly BusbarEvent[]): Promise<void> {
  if (bus.publishEvents !== undefined) {
    await bus.publishEvents(events);
    return;
  }
  // A bus without publishEvents: each event is its own append, issued in
  // order, so positions keep commit order, but another publisher's event may
  // land between two changes of one transaction.
  await Promise.all(events.map((event) => bus.publishEvent(event)));
}
