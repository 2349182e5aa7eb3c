// The harness of the durable-bus tests: every scenario runs once against the
// memory store, once against a SQLite file and once against a fresh schema of
// the PostgreSQL test database. "Restarting" means what it means for each: a
// new bus on the same memory store, or closing the SQLite (PostgreSQL) store
// and opening the same file (schema) again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext } from 'node:test';
import { type Bus, type BusOptions, createBus, type EventMap } from '../../src/index.ts';
import type { EventStore } from '../../src/store/event-store.ts';
import { createMemoryStore } from '../../src/store/memory/index.ts';
import { freshSchemaName, openTestStore } from '../../src/store/postgres/test-database.fixture.ts';
import { createSqliteStore } from '../../src/store/sqlite/index.ts';

export type StoreKindName = 'memory' | 'sqlite' | 'postgres';

export interface DurableFixture {
  readonly kind: StoreKindName;
  /** The store as it is open now (a new object after each SQLite or PostgreSQL restart). */
  readonly store: EventStore;
  /** A new bus on the current store; closed by `restart` and at the end of the test. */
  bus<Events extends EventMap = EventMap>(options?: Omit<BusOptions, 'store'>): Bus<Events>;
  /**
   * Closes every bus opened so far (within `deadline` ms: handlers still
   * running then are abandoned, as in a crash) and, for SQLite and
   * PostgreSQL, the store; then opens the store again on the same data.
   */
  restart(deadline?: number): Promise<void>;
  /** The position of the last committed event. */
  head(): Promise<number>;
  /**
   * The store another writer appends through. On PostgreSQL, a second store
   * instance on the same schema, as another process would open it: its
   * commits reach this fixture's readers only through LISTEN/NOTIFY. On the
   * memory and SQLite stores, which wake only their own readers, the current
   * store itself. The same instance on every call; it survives restarts and
   * is closed at the end of the test.
   */
  otherWriter(): Promise<EventStore>;
}

/** How one kind of store opens, reopens and goes away. */
interface Backing {
  readonly store: EventStore;
  /**
   * Opens the store again on the same data once the current one is closed;
   * undefined when a restart keeps the store (memory).
   */
  readonly reopen: (() => Promise<EventStore>) | undefined;
  /** A second writer's store; undefined to use the current store. */
  readonly otherWriter: (() => Promise<EventStore>) | undefined;
  /** Closes every store still open (given the current one) and removes the data. */
  remove(current: EventStore): Promise<void>;
}

interface StoreKind {
  readonly kind: StoreKindName;
  open(): Promise<Backing>;
}

const kinds: StoreKind[] = [
  {
    kind: 'memory',
    async open() {
      const store = createMemoryStore();
      return { store, reopen: undefined, otherWriter: undefined, remove: (current) => current.close() };
    },
  },
  {
    kind: 'sqlite',
    async open() {
      const directory = mkdtempSync(join(tmpdir(), 'busbar-durable-'));
      const path = join(directory, 'events.db');
      return {
        store: createSqliteStore({ path }),
        reopen: async () => createSqliteStore({ path }),
        otherWriter: undefined,
        async remove(current) {
          await current.close();
          rmSync(directory, { recursive: true, force: true });
        },
      };
    },
  },
  {
    kind: 'postgres',
    async open() {
      // Fails with a message saying what to start when PostgreSQL is down.
      const database = await openTestStore({ schema: freshSchemaName('busbar_durable') });
      let other: Promise<EventStore> | undefined;
      return {
        store: database.store,
        reopen: () => database.reopen(),
        otherWriter: () => (other ??= database.reopen()),
        // Closes every store opened on the schema (current, earlier, other writer), then drops it.
        remove: () => database.cleanup(),
      };
    },
  },
];

async function fixture(t: TestContext, kind: StoreKindName, backing: Backing): Promise<DurableFixture> {
  let store = backing.store;
  let buses: Bus<any>[] = [];
  const closeBuses = async (deadline: number) => {
    const open = buses;
    buses = [];
    await Promise.all(open.map((bus) => bus.close({ deadline })));
  };
  t.after(async () => {
    try {
      await closeBuses(100);
    } finally {
      await backing.remove(store);
    }
  });
  return {
    kind,
    get store() {
      return store;
    },
    bus<Events extends EventMap = EventMap>(options: Omit<BusOptions, 'store'> = {}): Bus<Events> {
      const bus = createBus<Events>({ ...options, store });
      buses.push(bus);
      return bus;
    },
    async restart(deadline = 1000) {
      await closeBuses(deadline);
      if (backing.reopen === undefined) return;
      await store.close();
      store = await backing.reopen();
    },
    head: () => store.head(),
    otherWriter: async () => (backing.otherWriter === undefined ? store : await backing.otherWriter()),
  };
}

/**
 * Declares the tests of `suite` once per store kind, each in its own
 * `describe`; `await open(t)` gives a test its own empty store, removed
 * after it, and `kind` says which store the tests are declared for.
 */
export function forEachStore(suite: (open: (t: TestContext) => Promise<DurableFixture>, kind: StoreKindName) => void): void {
  for (const each of kinds) {
    describe(`with the ${each.kind} store`, () => suite(async (t) => fixture(t, each.kind, await each.open()), each.kind));
  }
}

