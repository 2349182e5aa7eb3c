/**
 * A capture in a process of its own, for the crash test: it snapshots and
 * streams `<table>` and `<marker>` into a SQLite-backed bus at `<path>` until
 * it is killed. Each chunk's first READ handler waits a little, so the
 * snapshot takes long enough to be killed half-way.
 *
 *   node snapshot-child.fixture.ts <connectionString> <slot> <path> <table> <marker> <chunkSize>
 */
import { createBus } from '../../core/bus.ts';
import { createSqliteStore } from '../../store/sqlite/index.ts';
import { createPostgresCdc } from '../postgres-cdc.ts';

const [connectionString, slotName, path, table, marker, chunkSize] = process.argv.slice(2) as [string, string, string, string, string, string];
const store = createSqliteStore({ path, synchronous: 'normal' });
const bus = createBus({ store });
const cdc = createPostgresCdc({
  connectionString,
  slotName,
  publicationName: slotName,
  tables: [table, marker],
  bus,
  retryInterval: 50,
  snapshotChunkSize: Number(chunkSize),
  onWarning: () => {},
  handlers: [
    {
      onEvent: async (event) => {
        if (event.data.action === 'READ' && event.data.index === 0) await new Promise((resolve) => setTimeout(resolve, 25));
      },
    },
  ],
});
cdc.start();
process.stdout.write('started\n');
