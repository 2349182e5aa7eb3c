import { type BusbarEvent, buildEvent, type EventOptions } from '../core/event.ts';
import { assertTopic } from '../core/topic.ts';
import type { EventMap } from '../core/typed-events.ts';
import type { EventStore } from '../store/event-store.ts';
import { assertStreamId } from '../store/expected-version.ts';
import {
  aggregateStream,
  assertFunction,
  assertInteger,
  type Evolve,
  invalidArgument,
  type StreamEvent,
} from './aggregate-stream.ts';

/**
 * An event `decide` wants appended: its topic as `type`, its `data`, and any
 * publish option (`subject`, `key` for the partition key, `id`, `time`,
 * `extensions`…) beside them.
 */
export type NewEvent<Events extends EventMap = EventMap> = {
  [Topic in keyof Events & string]: { type: Topic; data: Events[Topic] } & EventOptions;
}[keyof Events & string];

/** One event, several, or none (`[]`: the command changes nothing). */
export type Decision<Events extends EventMap = EventMap> = NewEvent<Events> | readonly NewEvent<Events>[];

/**
 * Turns a command and the current state into the events that record it, or
 * throws a domain error to refuse it. Runs again on every retry, so it should
 * not have side effects.
 */
export type Decide<State, Command, Events extends EventMap = EventMap> = (
  command: Command,
  state: State,
) => Decision<Events> | Promise<Decision<Events>>;

/**
 * An aggregate's initial state, `evolve` and `decide`: define it once, hand
 * it to `handleCommand` (and to `aggregateStream`, which needs only the first two).
 *
 * @example
 * ```ts
 * const counter: Decider<number, { add: number }, { 'counter.added': { amount: number } }> = {
 *   initialState: 0,
 *   evolve: (total, event) => total + event.data.amount,
 *   decide: (command) => ({ type: 'counter.added', data: { amount: command.add } }),
 * };
 * ```
 */
export interface Decider<State, Command, Events extends EventMap = EventMap> {
  decide: Decide<State, Command, Events>;
  evolve: Evolve<State, Events>;
  initialState: State;
}

export interface HandleCommandOptions<State, Command, Events extends EventMap = EventMap>
  extends Decider<State, Command, Events> {
  /** How many times to reload and decide again after a `ConcurrencyError`. Default 3. */
  retries?: number;
  /** The `source` of the new events unless an event sets its own. Default `busbar`. */
  source?: string;
  /** How many events each read of the stream fetches. Default 1000. */
  pageSize?: number;
}

export interface CommandResult<State, Events extends EventMap = EventMap> {
  /** The state with the new events folded in. */
  readonly newState: State;
  /** The events appended, as stored (`sequence` is their position). */
  readonly newEvents: readonly StreamEvent<Events>[];
  /** The stream's version after the append. */
  readonly version: number;
  /** The global position of each new event. */
  readonly positions: readonly number[];
}

const DEFAULT_RETRIES = 3;

const EVENT_OPTIONS: ReadonlySet<string> = new Set([
  'id',
  'source',
  'subject',
  'time',
  'key',
  'traceparent',
  'transactionid',
  'ttl',
  'expirytime',
  'priority',
  'datacontenttype',
  'dataschema',
  'extensions',
]);

/**
 * Handles one command against a stream: rebuilds the state with `evolve`,
 * asks `decide` for the new events and appends them, expecting the stream to
 * be at the version it was read at. If another writer got there first, it
 * reloads and decides again, up to `retries` times, then throws the
 * `ConcurrencyError`. An error thrown by `decide` propagates and nothing is
 * appended.
 *
 * @example
 * ```ts
 * type Events = { 'account.deposited': { amount: number } };
 * const account: Decider<{ balance: number }, { amount: number }, Events> = {
 *   initialState: { balance: 0 },
 *   evolve: (state, event) => ({ balance: state.balance + event.data.amount }),
 *   decide: (command) => ({ type: 'account.deposited', data: { amount: command.amount } }),
 * };
 * const { newState, version } = await handleCommand(store, 'account-1', { amount: 50 }, account);
 * ```
 */
export async function handleCommand<State, Command, Events extends EventMap = EventMap>(
  store: EventStore,
  streamId: string,
  command: NoInfer<Command>,
  options: HandleCommandOptions<State, Command, Events>,
): Promise<CommandResult<State, Events>> {
  assertStreamId(streamId);
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('handleCommand needs options { decide, evolve, initialState }');
  }
  const { decide, evolve, initialState, retries = DEFAULT_RETRIES, source = 'busbar', pageSize } = options;
  assertFunction('decide', decide);
  assertFunction('evolve', evolve);
  assertInteger('retries', retries, 0);
  if (typeof source !== 'string' || source.length === 0) {
    throw invalidArgument('option "source" must be a non-empty string', { option: 'source' });
  }

  const load = () => aggregateStream(store, streamId, { evolve, initialState, pageSize });
  for (let attempt = 0; ; attempt++) {
    const { state, version } = await load();
    const events = toArray(await decide(command, state)).map((input) => toEvent(input, source));
    if (events.length === 0) return { newState: state, newEvents: [], version, positions: [] };
    try {
      const { positions, version: newVersion } = await store.appendToStream(streamId, events, {
        expectedVersion: version === 0 ? 'no_stream' : version,
      });
      const newEvents = events.map(
        (event, i) => Object.freeze({ ...event, sequence: positions[i] }) as StreamEvent<Events>,
      );
      if (newVersion === version + events.length) {
        return { newState: newEvents.reduce(evolve, state), newEvents, version: newVersion, positions };
      }
      // Some ids were already in the stream (a repeated command with fixed
      // ids), so they were not appended again and are already in `state`.
      const reloaded = await load();
      return { newState: reloaded.state, newEvents, version: reloaded.version, positions };
    } catch (error) {
      if (attempt >= retries || !isConcurrencyError(error)) throw error;
    }
  }
}

function isConcurrencyError(error: unknown): boolean {
  // By code rather than class: a store may come from another copy of Busbar.
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'BUSBAR_ERR_CONCURRENCY';
}

function toArray<T>(decision: T | readonly T[]): readonly T[] {
  return Array.isArray(decision) ? decision : [decision as T];
}

function toEvent(input: unknown, source: string): BusbarEvent {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidArgument(
      `decide must return { type, data } or an array of them, got ${input === null ? 'null' : typeof input}`,
    );
  }
  const { type, data, ...options } = input as { type: unknown; data: unknown } & Record<string, unknown>;
  assertTopic(type);
  for (const name of Object.keys(options)) {
    if (!EVENT_OPTIONS.has(name)) {
      const hint = name === 'partitionkey' ? ' (the partition key is "key")' : '';
      throw invalidArgument(`event "${type}" from decide has an unknown option "${name}"${hint}`, {
        option: name,
      });
    }
  }
  return buildEvent(type, data, options as EventOptions, source);
}
