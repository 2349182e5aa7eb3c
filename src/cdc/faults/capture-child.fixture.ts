/**
 * A capture in a process of its own, so a fault test can SIGKILL it for
 * real: it opens the SQLite store at `storePath`, a durable bus on it and
 * `createPostgresCdc`, and runs until killed (SIGTERM closes it cleanly).
 * It reports on stdout, one line each: `connected`, `marker <id>` when a
 * marker row is in the store, `warning <json>`, `gave-up <json>`, `closed`.
 *
 *   node capture-child.fixture.ts '<CaptureChildConfig as JSON>'
 */
import { createBus } from '../../core/bus.ts';
import { createSqliteStore } from '../../store/sqlite/index.ts';
import { createPostgresCdc } from '../postgres-cdc.ts';

/** What the parent passes in argv[2]. */
export interface CaptureChildConfig {
  readonly mode: 'replication' | 'trigger';
  readonly connectionString: string;
  readonly storePath: string;
  /** Slot and publication (replication), or reader and `busbar_cdc_<name>` schema (trigger). */
  readonly name: string;
  readonly tables: readonly { schema: string; name: string }[];
  readonly marker: { readonly schema: string; readonly name: string };
  readonly watchdogInterval: number;
  readonly timeout: number;
  readonly retryInterval: number;
}

const config = JSON.parse(process.argv[2]!) as CaptureChildConfig;
const say = (line: string): void => void process.stdout.write(`${line}\n`);

const store = createSqliteStore({ path: config.storePath, synchronous: 'normal' });
const bus = createBus({ store, onError: () => {} });
const cdc = createPostgresCdc({
  connectionString: config.connectionString,
  mode: config.mode,
  tables: config.tables,
  slotName: config.name,
  publicationName: config.name,
  trigger: { schema: `busbar_cdc_${config.name}`, readerName: config.name },
  bus,
  retryAttempts: 0,
  retryInterval: config.retryInterval,
  watchdogInterval: config.watchdogInterval,
  timeout: config.timeout,
  onWarning: (message) => say(`warning ${JSON.stringify(message)}`),
  onError: (error) => say(`gave-up ${JSON.stringify(`${error.code}: ${error.message}`)}`),
  handlers: [
    {
      onConnect: () => say('connected'),
      // Handlers run after the store committed: a marker seen here is durable.
      onEvent: (event) => {
        const change = event.data;
        if (change.action === 'INSERT' && change.table === config.marker.name && change.schema === config.marker.schema) {
          say(`marker ${String(change.id)}`);
        }
      },
    },
  ],
});
cdc.start();

process.once('SIGTERM', () => {
  void (async () => {
    await cdc.close();
    await bus.close();
    await store.close();
    say('closed');
    process.exit(0);
  })();
});
