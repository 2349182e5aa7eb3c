export type {
  AppendToStreamOptions,
  AppendToStreamResult,
  EventStore,
  ExpectedVersion,
  ReadStreamOptions,
  StreamMetadata,
} from './event-store.ts';
export type {
  AppendOptions,
  EventLog,
  LoggedEvent,
  ReadAllOptions,
  ReadAllPage,
  Recipients,
  StoredDeadLetter,
} from '../core/event-log.ts';
export { createMemoryStore, MemoryStore, type MemoryTransaction } from './memory/index.ts';
