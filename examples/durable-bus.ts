// Durable mode: a bus on a SQLite file. publish resolves once the event is
// committed; durable subscriptions read the log from a checkpoint kept under
// their name, so a restart resumes where they stopped and what was cut off is
// delivered again. The shipper makes that harmless: its effect and the event
// id it marks processed commit in one transaction.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Bus,
  createBus,
  DEAD_LETTER_TOPIC,
  type DeadLetterNotice,
  type Receipt,
  skip,
} from '../src/index.ts';
import { createSqliteStore, type SqliteStore } from '../src/store/sqlite/index.ts';

type Events = {
  'order.created': { id: string; total: number };
  [DEAD_LETTER_TOPIC]: DeadLetterNotice;
};

const dir = mkdtempSync(join(tmpdir(), 'busbar-durable-'));
const path = join(dir, 'shop.db');
const reported: string[] = [];

/** What one process does at start: open the store, then a bus on it. */
function start(): { store: SqliteStore; bus: Bus<Events> } {
  const store = createSqliteStore({ path });
  const bus = createBus<Events>({
    store,
    onError: (error, origin) => reported.push(`${origin}: ${error.message}`),
  });
  return { store, bus };
}

const shipped: string[] = []; // what the shipper saw, across both runs
let stall: (() => void) | undefined; // set: the next shipment hangs after its commit

/**
 * Ships each order once however often it sees the event: the shipment row
 * and the processed id commit together in the store's own database.
 */
function subscribeShipper(bus: Bus<Events>, store: SqliteStore) {
  return bus.subscribe(
    'shipper',
    'order.created',
    async (event, { signal }) => {
      shipped.push(event.data.id);
      const fresh = await store.transaction(async (db) => {
        if (!(await store.markProcessed('shipper', event.id, db))) return false;
        db.prepare('INSERT INTO shipments (order_id) VALUES (?)').run(event.data.id);
        return true;
      });
      if (stall !== undefined) {
        stall(); // committed, now "crash" before returning: wait to be cut off
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      }
      return fresh ? `shipped ${event.data.id}` : skip;
    },
    { from: 'beginning' }, // only when no checkpoint is stored under "shipper"
  );
}

const statuses = async (receipt: Receipt) =>
  Object.fromEntries((await receipt.settled()).map((result) => [result.subscription, result.status]));

try {
  // ---- First run -------------------------------------------------------
  let { store, bus } = start();
  await store.transaction(async (db) => {
    db.exec('CREATE TABLE shipments (order_id TEXT NOT NULL)');
  });
  let ledgerUp = false;
  const invoiced: string[] = [];
  subscribeShipper(bus, store);
  bus.subscribe(
    'invoicer',
    'order.created',
    (event) => {
      if (!ledgerUp) throw new Error('ledger unreachable');
      invoiced.push(event.data.id);
      return `invoiced ${event.data.id}`;
    },
    { retry: { attempts: 2, initialDelay: 1, maxDelay: 5 } },
  );
  let noticed!: (notice: DeadLetterNotice) => void;
  const notice = new Promise<DeadLetterNotice>((resolve) => (noticed = resolve));
  bus.subscribe('alerts', DEAD_LETTER_TOPIC, (event) => noticed(event.data));
  // Not durable: fed by this process's publishes only, no checkpoint.
  bus.subscribe('dashboard', 'order.created', (event) => `shown ${event.data.id}`, { durable: false });

  const first = await bus.publish('order.created', { id: 'o-1', total: 40 });
  assert.equal(first.sequence, 1); // committed at log position 1 before publish resolved
  assert.deepEqual(await statuses(first), { shipper: 'completed', invoicer: 'failed', dashboard: 'completed' });
  // The dead letter is stored, and its notice is an event in the log too.
  assert.equal((await notice).eventId, first.id);
  assert.equal((await store.listDeadLetters())[0]!.event.id, first.id);

  ledgerUp = true;
  const stalled = new Promise<void>((resolve) => (stall = resolve));
  const second = await bus.publish('order.created', { id: 'o-2', total: 75 });
  // A free replacement, for the shipper only: `to` is recorded with the event,
  // so after a restart too it reaches the shipper and not the invoicer.
  const replacement = await bus.publish('order.created', { id: 'r-2', total: 0 }, { to: ['shipper'] });
  await stalled;
  const report = await bus.close({ deadline: 20 }); // the shipper is cut off on o-2
  assert.equal(report.drained, false);
  assert.deepEqual(
    report.unfinished.filter((each) => each.subscription === 'shipper').map((each) => each.eventId),
    [second.id, replacement.id],
  );
  assert.equal((await statuses(second)).shipper, 'cancelled');
  await store.close(); // the bus never closes its store

  // ---- Second run, on the same file --------------------------------------
  ({ store, bus } = start());
  stall = undefined;
  await bus.ready; // stored dead letters are back
  assert.deepEqual(bus.deadLetters().map((letter) => letter.event.id), [first.id]);
  // Committed even though no subscription is running yet: it waits in the log.
  const third = await bus.publish('order.created', { id: 'o-3', total: 20 });
  assert.deepEqual(third.recipients, []);

  const shipper = subscribeShipper(bus, store);
  const invoicer = bus.subscribe('invoicer', 'order.created', (event) => {
    invoiced.push(event.data.id);
    return `invoiced ${event.data.id}`;
  });
  await Promise.all([shipper.ready, invoicer.ready]);
  await bus.idle();
  // From its checkpoint: o-2 again (its handler was cut off, so it is
  // redelivered, and skipped as already processed), the replacement, then o-3.
  assert.deepEqual(shipped, ['o-1', 'o-2', 'o-2', 'r-2', 'o-3']);
  assert.ok(invoiced.includes('o-3') && !invoiced.includes('r-2'));

  // The dead letter survived the restart; redrive it now that the ledger is up.
  const [redriven] = await bus.redrive({ subscription: 'invoicer' });
  assert.equal((await redriven!.settled())[0]!.status, 'completed');
  assert.deepEqual(bus.deadLetters(), []);

  // A new subscription replays the log from the start, then goes live.
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const positions: number[] = [];
  const replica = bus.subscribe(
    'replica',
    '>',
    async (event) => {
      await gate;
      positions.push(event.sequence!);
    },
    { from: 'beginning' },
  );
  await replica.ready;
  const behind = await replica.lag();
  console.log('replica before catching up:', behind);
  assert.equal(behind.checkpoint, 0);
  assert.equal(behind.events, behind.head);
  // Publishes while it catches up: no gap and no repeat at the switch to live.
  const live = Promise.all(['o-4', 'o-5', 'o-6'].map((id) => bus.publish('order.created', { id, total: 10 })));
  release();
  await live;
  await bus.idle();
  const forReplica = (await store.readAll()).events.filter((logged) => logged.recipients === undefined);
  assert.deepEqual(positions, forReplica.map((logged) => logged.position));
  const caughtUp = await replica.lag();
  assert.deepEqual([caughtUp.events, caughtUp.seconds], [0, 0]);
  assert.equal(caughtUp.checkpoint, await store.head());

  await bus.close();
  await store.close();

  // ---- What the file holds now -------------------------------------------
  store = createSqliteStore({ path });
  const rows = await store.transaction(async (db) =>
    db.prepare('SELECT order_id FROM shipments ORDER BY rowid').all().map((row) => row.order_id),
  );
  console.log('shipments:', rows);
  assert.deepEqual(rows, ['o-1', 'o-2', 'r-2', 'o-3', 'o-4', 'o-5', 'o-6']); // each shipped once
  assert.deepEqual(await store.listDeadLetters(), []); // the redriven letter is gone
  assert.equal(await store.loadCheckpoint('shipper'), await store.head());
  await store.close();
  assert.deepEqual(reported, []);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
