/**
 * Event sourcing on a Busbar store: rebuild a stream's state with
 * `aggregateStream`, handle commands with `handleCommand` (decide, evolve,
 * append with an expected version, retry on conflict). Works on every
 * `EventStore`: memory, `busbar/store/sqlite`, `busbar/store/postgres`.
 *
 * @module
 */
export {
  type AggregatedStream,
  aggregateStream,
  type AggregateStreamOptions,
  DEFAULT_PAGE_SIZE,
  type Evolve,
  type StreamEvent,
} from './aggregate-stream.ts';
export {
  type CommandResult,
  type Decide,
  type Decider,
  type Decision,
  handleCommand,
  type HandleCommandOptions,
  type NewEvent,
} from './command-handler.ts';
