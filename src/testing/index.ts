/**
 * Busbar's test kit: the contract suite every event store must pass, so a
 * third-party store can prove it behaves like the built-in ones.
 *
 * @example
 * ```ts
 * import { eventStoreContract } from 'busbar/testing';
 *
 * eventStoreContract('my store', async () => ({ store: await openMyStore() }));
 * ```
 *
 * @module
 */
export { type ContractOptions, eventStoreContract, type StoreUnderTest } from './store-contract.ts';
export type {
  AppendToStreamOptions,
  AppendToStreamResult,
  EventStore,
  ExpectedVersion,
  ReadStreamOptions,
  StreamMetadata,
} from '../store/event-store.ts';
export type {
  AppendOptions,
  EventLog,
  LoggedEvent,
  ReadAllOptions,
  ReadAllPage,
  Recipients,
  StoredDeadLetter,
} from '../core/event-log.ts';
