/**
 * Crash safety of the durable bus on SQLite: a child process publishes from
 * 16 concurrent tasks and is killed with SIGKILL mid-stream; after the
 * restart, every event whose publish had resolved is in the log, the log is
 * gap-free, and every durable subscription has handled every event (before
 * the kill, or after the restart from its checkpoint: at-least-once).
 *
 * What the child did before it died is read from outside it: acknowledged
 * ids from its stdout (a line counts only once the parent has it whole), and
 * handled ids from one file per subscription and run, appended after each
 * handler finished its work, so before the checkpoint could pass the event.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createBus } from '../../src/index.ts';
import type { LoggedEvent } from '../../src/core/event-log.ts';
import { createSqliteStore } from '../../src/store/sqlite/index.ts';
import { sleep } from '../support/async.ts';
import {
  handlerWork,
  type Checkpoints,
  parseLines,
  readHandled,
  readStart,
  type Seen,
  SUBSCRIPTIONS,
  type SubscriptionName,
  TASKS,
  TOPIC,
} from './crash-shared.ts';

const FIXTURE = fileURLToPath(new URL('./publisher.fixture.ts', import.meta.url));
/** Bound on any single wait for the child; the whole file runs in a few seconds. */
const PATIENCE = 10_000;

/** The publisher child, with what it acknowledged so far. */
class Publisher {
  /** Acknowledged id → the position its receipt reported. */
  readonly acked = new Map<string, number>();
  private readonly child: ChildProcess;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';
  private stderr = '';
  private gone = false;

  constructor(database: string, directory: string, run: string) {
    this.child = spawn(process.execPath, [FIXTURE, database, directory, run], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => {
      const text = this.partial + chunk;
      const end = text.lastIndexOf('\n') + 1;
      this.partial = text.slice(end);
      for (const { id, position } of parseLines(text.slice(0, end))) {
        assert.ok(!this.acked.has(id), `id ${id} acknowledged twice`);
        this.acked.set(id, position);
      }
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.gone = true;
        resolve({ code, signal });
      });
    });
  }

  /** Waits (polling) until `check` holds; fails if the child dies first or it takes too long. */
  async until(check: () => boolean, what: string): Promise<void> {
    const end = Date.now() + PATIENCE;
    while (!check()) {
      if (this.gone) throw new Error(`the publisher exited before ${what}:\n${this.stderr}`);
      if (Date.now() > end) throw new Error(`no ${what} after ${PATIENCE} ms (${this.acked.size} acknowledged):\n${this.stderr}`);
      await sleep(2);
    }
  }

  /** SIGKILL, then waits until every byte it wrote to stdout has been read. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    const { code, signal } = await this.exited;
    assert.equal(signal, 'SIGKILL', `the publisher ended on its own (code ${code}):\n${this.stderr}`);
    assert.equal(this.stderr.includes('bus error'), false, `the publisher reported errors:\n${this.stderr}`);
  }

  /** Kills it if a failed test left it running. */
  dispose(): void {
    if (!this.gone) this.child.kill('SIGKILL');
  }
}

/** A fresh directory for one round; removed with everything in it afterwards. */
async function inTempDirectory(work: (directory: string, database: string) => Promise<void>): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'busbar-crash-'));
  try {
    await work(directory, join(directory, 'events.db'));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

async function loadCheckpoints(store: ReturnType<typeof createSqliteStore>): Promise<Checkpoints> {
  const checkpoints = {} as Checkpoints;
  for (const { name } of SUBSCRIPTIONS) checkpoints[name] = (await store.loadCheckpoint(name)) ?? 0;
  return checkpoints;
}

/** Spawns a run of the child on `database`, waits until `ready` holds, kills it. */
async function crash(
  database: string,
  directory: string,
  tag: string,
  ready: (publisher: Publisher) => boolean,
  what: string,
): Promise<Map<string, number>> {
  const publisher = new Publisher(database, directory, tag);
  try {
    await publisher.until(() => ready(publisher), what);
    await publisher.kill();
    return publisher.acked;
  } finally {
    publisher.dispose();
  }
}

/**
 * Reopens the store in this process after the last kill and checks the log,
 * then restarts both durable subscriptions and checks that, with what each
 * run of the child (tagged `runs`, in order) handled, every event was handled.
 */
async function verify(t: TestContext, database: string, directory: string, runs: string[], acked: Map<string, number>): Promise<void> {
  const store = createSqliteStore({ path: database });
  let closed = false;
  try {
    const head = await store.head();
    const log: LoggedEvent[] = [];
    for (let after = 0; ; ) {
      const page = await store.readAll({ after, limit: 1000 });
      if (page.events.length === 0) break;
      log.push(...page.events);
      after = page.last;
    }

    // The log: gap-free positions 1..head, each id once, sequence = position.
    assert.equal(log.length, head, 'events in the log vs head');
    const gap = log.findIndex((logged, index) => logged.position !== index + 1);
    assert.equal(gap, -1, `positions are not 1..${head}: index ${gap} holds position ${log[gap]?.position}`);
    assert.equal(log.findIndex((logged) => logged.event.sequence !== logged.position), -1, 'an event whose sequence is not its position');
    const positionOf = new Map(log.map((logged) => [logged.event.id, logged.position]));
    assert.equal(positionOf.size, head, 'an id is in the log twice');

    // Every acknowledged publish is in the log, where its receipt said.
    assert.ok(acked.size > 0, 'nothing was acknowledged');
    for (const [id, position] of acked) {
      const logged = await store.getEvent(id);
      assert.ok(logged !== undefined, `acknowledged event ${id} (position ${position}) is not in the log`);
      assert.equal(logged.position, position, `acknowledged event ${id} moved`);
    }

    // Each task published n = 0, 1, 2… one after the other: no hole in a task's sequence.
    const byTask = new Map<string, number[]>();
    for (const { event } of log) {
      const { run, task, n } = event.data as { run: string; task: number; n: number };
      const key = `${run}/${task}`;
      if (!byTask.has(key)) byTask.set(key, []);
      byTask.get(key)!.push(n);
    }
    for (const [key, ns] of byTask) {
      ns.sort((a, b) => a - b);
      assert.ok(ns.every((n, index) => n === index), `task ${key} has a hole: ${ns.join(',')}`);
    }
    assert.ok(byTask.size <= TASKS * runs.length);

    // Restart the subscriptions where their checkpoints say.
    const resumed = await loadCheckpoints(store);
    const errors: Error[] = [];
    const bus = createBus({ store, onError: (error) => errors.push(error) });
    const handled = { indexer: [], mailer: [] } as Record<SubscriptionName, Seen[]>;
    const handles = SUBSCRIPTIONS.map((subscription) =>
      bus.subscribe(
        subscription.name,
        `${TOPIC.split('.')[0]}.>`,
        async (event) => {
          await handlerWork(subscription, event.sequence ?? 0);
          handled[subscription.name].push({ id: event.id, position: event.sequence ?? -1 });
        },
        { from: 'beginning', concurrency: subscription.concurrency },
      ),
    );
    await Promise.all(handles.map((handle) => handle.ready));
    const end = Date.now() + PATIENCE;
    for (;;) {
      await bus.idle();
      const lags = await Promise.all(handles.map((handle) => handle.lag()));
      if (lags.every((lag) => lag.events === 0 && lag.head === head)) break;
      if (Date.now() > end) assert.fail(`the restarted subscriptions did not catch up: ${JSON.stringify(lags)}`);
      await sleep(2);
    }
    const report = await bus.close();
    assert.deepEqual(report, { drained: true, unfinished: [] });
    assert.deepEqual(errors, []);
    assert.deepEqual(await loadCheckpoints(store), { indexer: head, mailer: head }, 'checkpoints after the restarted bus closed');

    for (const { name, concurrency } of SUBSCRIPTIONS) {
      const starts = [...runs.map((run) => readStart(directory, run)[name]), resumed[name]];
      const lists = [...runs.map((run) => readHandled(directory, name, run)), handled[name]];
      const labels = [...runs.map((run) => `run ${run}`), 'the restart'];
      assert.equal(starts[0], 0, `${name}: the first run found a checkpoint`);
      const covered = new Set<number>();
      let handlings = 0;
      for (let i = 0; i < lists.length; i++) {
        const where = `${name}, ${labels[i]} (from checkpoint ${starts[i]})`;
        const start = starts[i]!;
        const next = i + 1 < starts.length ? starts[i + 1]! : head;
        assert.ok(start <= next && next <= head, `${where}: checkpoints went ${start} → ${next} (head ${head})`);
        const positions = new Set<number>();
        for (const { id, position } of lists[i]!) {
          assert.equal(positionOf.get(id), position, `${where}: handled ${id} at position ${position}, the log has it at ${positionOf.get(id)}`);
          assert.ok(position > start, `${where}: handled position ${position}, at or below its checkpoint`);
          assert.ok(!positions.has(position), `${where}: handled position ${position} twice`);
          positions.add(position);
          covered.add(position);
        }
        handlings += positions.size;
        // The checkpoint this run left behind passed only events it had handled.
        for (let position = start + 1; position <= next; position++) {
          assert.ok(positions.has(position), `${where}: the next checkpoint is ${next} but position ${position} was not handled`);
        }
        if (concurrency === 1) {
          // One at a time: in log order, from the checkpoint on, without a skip.
          const order = lists[i]!.map((seen) => seen.position);
          assert.deepEqual(order, order.map((_, index) => start + 1 + index), `${where}: handled out of order`);
        }
      }
      // The restart handled exactly what was after its checkpoint.
      assert.equal(handled[name].length, head - resumed[name], `${name}: the restart handled ${handled[name].length} events, ${head - resumed[name]} were after its checkpoint`);
      assert.equal(covered.size, head, `${name}: ${head - covered.size} events in the log were never handled`);
      t.diagnostic(
        `${name}: checkpoints ${starts.join(' → ')} → ${head}, ${handlings - head} handled twice, ` +
          `${lists.slice(0, -1).reduce((sum, list) => sum + list.length, 0)} before the kill(s), ${handled[name].length} after`,
      );
    }
    t.diagnostic(`log head ${head}, ${acked.size} acknowledged`);
    await store.close();
    closed = true;
  } finally {
    if (!closed) await store.close();
  }
}

describe('crash: SIGKILL while 16 tasks publish', () => {
  for (const count of [50, 400, 1500]) {
    it(`keeps every acknowledged event and delivers it to each durable subscription (killed after ${count} acknowledged)`, (t) =>
      inTempDirectory(async (directory, database) => {
        const acked = await crash(database, directory, 'a', (publisher) => publisher.acked.size >= count, `${count} acknowledged publishes`);
        assert.ok(acked.size >= count);
        await verify(t, database, directory, ['a'], acked);
      }));
  }

  it('keeps every acknowledged event when killed at a random moment after the first one', (t) =>
    inTempDirectory(async (directory, database) => {
      const delay = Math.floor(Math.random() * 250);
      t.diagnostic(`killed ${delay} ms after the first acknowledged publish`);
      let first = 0;
      const acked = await crash(
        database,
        directory,
        'a',
        (publisher) => {
          if (publisher.acked.size === 0) return false;
          first ||= Date.now();
          return Date.now() - first >= delay;
        },
        'an acknowledged publish',
      );
      await verify(t, database, directory, ['a'], acked);
    }));

  it('resumes the durable subscriptions from their checkpoints across two crashes', (t) =>
    inTempDirectory(async (directory, database) => {
      // Each run publishes and handles some: wait for both in its own output.
      const progressed = (run: string) => (publisher: Publisher) =>
        publisher.acked.size >= 300 && SUBSCRIPTIONS.every(({ name }) => readHandled(directory, name, run).length >= 20);
      const what = '300 acknowledged publishes and 20 handled by each subscription';
      const first = await crash(database, directory, 'a', progressed('a'), what);
      const second = await crash(database, directory, 'b', progressed('b'), what);
      // Run b resumed from what run a checkpointed, not from the beginning it was told.
      const resumed = readStart(directory, 'b');
      for (const { name } of SUBSCRIPTIONS) assert.ok(resumed[name] > 0, `${name}: run a left no checkpoint behind`);
      await verify(t, database, directory, ['a', 'b'], new Map([...first, ...second]));
    }));
});
