import { describe } from 'node:test';
import { describeAppends } from './store-contract/appends.ts';
import { describeDurableState } from './store-contract/durable-state.ts';
import { describeExpectedVersions } from './store-contract/expected-versions.ts';
import { describeHostileInputAndClosing } from './store-contract/hostile-input-and-closing.ts';
import { describeLiveTailAndConcurrency } from './store-contract/live-tail-and-concurrency.ts';
import { describeReads } from './store-contract/reads.ts';
import { describeRetention } from './store-contract/retention.ts';
import { type ContractOptions, contractContext, type StoreUnderTest } from './store-contract/store-under-test.ts';

export type { ContractOptions, StoreUnderTest };

/**
 * Declares the contract every {@link EventStore} must meet as a `node:test`
 * suite: appends, idempotency, expected versions, reads, retention,
 * checkpoints, dead letters, processed ids, the live tail, concurrent
 * writers, hostile input and closing. `open` must return a store on an empty
 * database each time; the suite closes it when the test ends.
 *
 * @example
 * ```ts
 * import { eventStoreContract } from 'busbar/testing';
 *
 * eventStoreContract('my store', async () => {
 *   const file = await freshDatabaseFile();
 *   return { store: await openMyStore(file), reopen: () => openMyStore(file) };
 * });
 * ```
 */
export function eventStoreContract<T>(
  name: string,
  open: () => Promise<StoreUnderTest<T>>,
  options: ContractOptions = {},
): void {
  const context = contractContext(open, options);
  describe(name, () => {
    describeAppends(context);
    describeExpectedVersions(context);
    describeReads(context);
    describeRetention(context);
    describeDurableState(context);
    describeLiveTailAndConcurrency(context);
    describeHostileInputAndClosing(context);
  });
}
