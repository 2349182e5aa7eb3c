import { BusbarError } from '../core/errors.ts';
import type { EventOf, EventMap } from '../core/typed-events.ts';
import type { EventStore } from '../store/event-store.ts';
import { assertStreamId } from '../store/expected-version.ts';

/** Streams are read this many events at a time unless `pageSize` says otherwise. */
export const DEFAULT_PAGE_SIZE = 1000;

/**
 * Any event of `Events`: a union over its topics, so checking `event.type`
 * narrows `event.data`. With the default map it is a plain `BusbarEvent`.
 */
export type StreamEvent<Events extends EventMap = EventMap> = EventOf<Events, keyof Events & string>;

/** Folds one event into the state. Pure: it returns a new state and touches nothing else. */
export type Evolve<State, Events extends EventMap = EventMap> = (
  state: State,
  event: StreamEvent<Events>,
) => State;

export interface AggregateStreamOptions<State, Events extends EventMap = EventMap> {
  evolve: Evolve<State, Events>;
  /** The state before the first event read: the empty state, or a snapshot taken at `from - 1`. */
  initialState: State;
  /** The first version to read. Default 1; pass a snapshot's version + 1 to resume from it. */
  from?: number;
  /** How many events each read fetches. Default 1000. */
  pageSize?: number;
}

export interface AggregatedStream<State> {
  readonly state: State;
  /**
   * The version of the last event folded in: 0 for an empty stream (or
   * `from - 1` when nothing was read from `from` on). Pass it as the next
   * append's `expectedVersion`.
   */
  readonly version: number;
}

/**
 * Rebuilds a stream's state by folding its events, oldest first, through
 * `evolve`. The stream is read a page at a time, so a long stream is never
 * held in memory at once.
 *
 * @example
 * ```ts
 * type Events = { 'account.deposited': { amount: number } };
 * const { state, version } = await aggregateStream<{ balance: number }, Events>(store, 'account-1', {
 *   initialState: { balance: 0 },
 *   evolve: (state, event) => ({ balance: state.balance + event.data.amount }),
 * });
 * ```
 */
export async function aggregateStream<State, Events extends EventMap = EventMap>(
  store: EventStore,
  streamId: string,
  options: AggregateStreamOptions<State, Events>,
): Promise<AggregatedStream<State>> {
  assertStreamId(streamId);
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('aggregateStream needs options { evolve, initialState }');
  }
  const { evolve, initialState, from = 1, pageSize = DEFAULT_PAGE_SIZE } = options;
  assertFunction('evolve', evolve);
  assertInteger('from', from, 1);
  assertInteger('pageSize', pageSize, 1);

  let state = initialState;
  let version = from - 1;
  for (;;) {
    const page = await store.readStream(streamId, { from: version + 1, limit: pageSize });
    for (const logged of page) {
      state = evolve(state, logged.event as StreamEvent<Events>);
      version = logged.streamVersion!;
    }
    if (page.length < pageSize) return { state, version };
  }
}

export function invalidArgument(message: string, details?: Record<string, unknown>): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', message, details && { details });
}

export function assertFunction(name: string, value: unknown): void {
  if (typeof value !== 'function') {
    throw invalidArgument(`option "${name}" must be a function, got ${typeof value}`, { option: name });
  }
}

export function assertInteger(name: string, value: unknown, minimum: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw invalidArgument(`option "${name}" must be an integer >= ${minimum}, got ${JSON.stringify(value)}`, {
      option: name,
    });
  }
}
