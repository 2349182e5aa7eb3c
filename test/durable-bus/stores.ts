// The harness of the durable-bus tests: every scenario runs once against the
// memory store and once against a SQLite file, and "restarting" means what it
// means for each: a new bus on the same memory store, or closing the SQLite
// store and opening the same file again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext } from 'node:test';
import { type Bus, type BusOptions, createBus, type EventMap } from '../../src/index.ts';
import type { EventStore } from '../../src/store/event-store.ts';
import { createMemoryStore } from '../../src/store/memory/index.ts';
import { createSqliteStore } from '../../src/store/sqlite/index.ts';

export interface DurableFixture {
  readonly kind: 'memory' | 'sqlite';
  /** The store as it is open now (a new object after each SQLite restart). */
  readonly store: EventStore;
  /** A new bus on the current store; closed by `restart` and at the end of the test. */
  bus<Events extends EventMap = EventMap>(options?: Omit<BusOptions, 'store'>): Bus<Events>;
  /**
   * Closes every bus opened so far (within `deadline` ms: handlers still
   * running then are abandoned, as in a crash) and, for SQLite, the store;
   * then opens the store again on the same data.
   */
  restart(deadline?: number): Promise<void>;
  /** The position of the last committed event. */
  head(): Promise<number>;
}

interface StoreKind {
  readonly kind: DurableFixture['kind'];
  open(t: TestContext): DurableFixture;
}

const kinds: StoreKind[] = [
  { kind: 'memory', open: (t) => fixture(t, 'memory', () => createMemoryStore(), () => {}) },
  {
    kind: 'sqlite',
    open(t) {
      const directory = mkdtempSync(join(tmpdir(), 'busbar-durable-'));
      const path = join(directory, 'events.db');
      return fixture(t, 'sqlite', () => createSqliteStore({ path }), () => rmSync(directory, { recursive: true, force: true }));
    },
  },
];

function fixture(
  t: TestContext,
  kind: DurableFixture['kind'],
  openStore: () => EventStore,
  removeData: () => void,
): DurableFixture {
  let store = openStore();
  let buses: Bus<any>[] = [];
  const closeBuses = async (deadline: number) => {
    const open = buses;
    buses = [];
    await Promise.all(open.map((bus) => bus.close({ deadline })));
  };
  t.after(async () => {
    await closeBuses(100);
    await store.close();
    removeData();
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
      if (kind === 'memory') return;
      await store.close();
      store = openStore();
    },
    head: () => store.head(),
  };
}

/**
 * Declares the tests of `suite` once per store kind, each in its own
 * `describe`; `open(t)` gives a test its own empty store, removed after it.
 */
export function forEachStore(suite: (open: (t: TestContext) => DurableFixture) => void): void {
  for (const each of kinds) {
    describe(`with the ${each.kind} store`, () => suite((t) => each.open(t)));
  }
}
