/**
 * The process the crash test kills. Usage:
 *
 *   node test/crash/publisher.fixture.ts <database> <directory> <run>
 *
 * Opens the SQLite store at <database>, records the checkpoints the durable
 * subscriptions of `crash-shared.ts` resume from, subscribes them (each
 * handler appends `<id> <sequence>` to its own file in <directory>, tagged
 * with <run>, once its work is done), then
 * publishes `{ run, task, n }` from 16 concurrent tasks and writes
 * `<id> <sequence>` on stdout after each publish resolved. It never exits on
 * its own before the safety timer: the parent kills it with SIGKILL.
 */
import { appendFileSync } from 'node:fs';
import { createBus } from '../../src/index.ts';
import { createSqliteStore } from '../../src/store/sqlite/index.ts';
import { type Checkpoints, handledFile, handlerWork, PER_TASK, SUBSCRIPTIONS, TASKS, TOPIC, writeStart } from './crash-shared.ts';

const [database, directory, run] = process.argv.slice(2);
if (database === undefined || directory === undefined || run === undefined) {
  process.stderr.write('usage: publisher.fixture.ts <database> <directory> <run>\n');
  process.exit(64);
}

// Never outlive a test that forgot us, nor a parent that went away.
setTimeout(() => process.exit(3), 30_000);
process.stdout.on('error', () => process.exit(4));

const store = createSqliteStore({ path: database });
const bus = createBus({ store, onError: (error, origin) => process.stderr.write(`bus error (${origin}): ${error.stack}\n`) });

// Nothing writes before the subscriptions exist: these are the checkpoints they resume from.
const start = {} as Checkpoints;
for (const { name } of SUBSCRIPTIONS) start[name] = (await store.loadCheckpoint(name)) ?? 0;
writeStart(directory, run, start);

for (const subscription of SUBSCRIPTIONS) {
  const { name, concurrency } = subscription;
  const file = handledFile(directory, name, run);
  bus.subscribe(
    name,
    `${TOPIC.split('.')[0]}.>`,
    async (event) => {
      await handlerWork(subscription, event.sequence ?? 0);
      // One write(2) per line: what it wrote is in the file even if the process dies right after.
      appendFileSync(file, `${event.id} ${event.sequence}\n`);
    },
    { from: 'beginning', concurrency },
  );
}

async function task(index: number): Promise<void> {
  for (let n = 0; n < PER_TASK; n++) {
    const receipt = await bus.publish(TOPIC, { run, task: index, n });
    process.stdout.write(`${receipt.event.id} ${receipt.event.sequence}\n`);
  }
}

await Promise.all(Array.from({ length: TASKS }, (_, index) => task(index)));
// Everything published: wait for the kill (the safety timer keeps us alive).
