import { it, type TestContext } from 'node:test';
import type { EventStore } from '../../store/event-store.ts';

/** A store opened on an empty database for one test of the contract suite. */
export interface StoreUnderTest<T = unknown> {
  store: EventStore<T>;
  /**
   * Reopens the same database (after the suite has closed `store`), for the
   * durability checks: events, checkpoints, dead letters and processed ids
   * survive. Without it those checks are skipped.
   */
  reopen?: () => Promise<EventStore<T>>;
}

export interface ContractOptions {
  /**
   * Whether the store keeps its data across a close and reopen (default
   * true). When true, `open` must return `reopen`, and the durability tests
   * run; false (an in-memory store) leaves them out.
   */
  persistent?: boolean;
}

/** What every part of the contract suite opens its stores with. */
export interface ContractContext<T> {
  /** Opens a store on an empty database, closed when the test ends. */
  fresh: (t: TestContext) => Promise<EventStore<T>>;
  /** Opens a store with its `reopen`, closed when the test ends. */
  openSubject: (t: TestContext) => Promise<StoreUnderTest<T>>;
  /** Closes the subject's store and opens its database again. */
  reopened: (t: TestContext, subject: StoreUnderTest<T>) => Promise<EventStore<T>>;
  /** `it` for a durability test; declares nothing for a store that is not persistent. */
  itKeeps: (name: string, test: (t: TestContext) => Promise<void>) => void;
}

export function contractContext<T>(
  open: () => Promise<StoreUnderTest<T>>,
  options: ContractOptions,
): ContractContext<T> {
  async function openSubject(t: TestContext): Promise<StoreUnderTest<T>> {
    const subject = await open();
    t.after(() => subject.store.close());
    return subject;
  }

  return {
    openSubject,
    async fresh(t) {
      return (await openSubject(t)).store;
    },
    async reopened(t, subject) {
      await subject.store.close();
      const store = await subject.reopen!();
      t.after(() => store.close());
      return store;
    },
    // A store that keeps nothing across a reopen (memory) is not asked to:
    // those tests are left out rather than skipped.
    itKeeps: options.persistent === false ? () => {} : it,
  };
}
