/**
 * The fault suite both capture modes run, scenario for scenario (issue 4
 * §7): a write burst from several writers into the burst tables, captured by
 * a capture process into a SQLite-backed bus, with one kind of fault
 * injected at fixed points of the burst; then, once capture caught up, the
 * store is reconciled against what the writers committed. Each test file
 * calls `describeFaultSuite(mode)` and gets a private PostgreSQL.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { createSqliteStore } from '../../store/sqlite/index.ts';
import { type CdcTestDatabase, startCdcDatabase, storedChanges, waitFor } from '../cdc-harness.fixture.ts';
import { BurstLedger, WriterConnection } from './burst-ledger.fixture.ts';
import { burstTables, createBurstTables } from './burst-tables.fixture.ts';
import { WriteBurst } from './burst-writers.fixture.ts';
import { CaptureProcess } from './capture-process.fixture.ts';
import { assertContentCovered, DEADLOCK, type FaultScenario, SCENARIOS } from './fault-scenarios.fixture.ts';
import { confirmedPosition, type Step, type StepContext, writeMarker } from './fault-steps.fixture.ts';
import { assertReconciled, type Reconciliation, reconcile } from './reconcile.fixture.ts';

/** Sized so a file stays well inside its time budget on a busy 2-core machine, with tens of thousands of changes. */
const WRITERS = 6;
const TRANSACTIONS_PER_WRITER = 300;
/** Fraction of the burst written between reaching a step's point and holding writers back for it. */
const STEP_LEAD = 0.04;
/** Small, so the frozen-server fault is detected fast; the freeze lasts longer than both together. */
const WATCHDOG = { watchdogInterval: 500, timeout: 500, retryInterval: 100 };

/**
 * Registers one test per scenario for `mode`, on a private PostgreSQL with
 * `wal_level=logical` started before them.
 *
 * @example
 * ```ts
 * describeFaultSuite('trigger'); // in trigger-faults.int.test.ts
 * ```
 */
export function describeFaultSuite(mode: 'replication' | 'trigger'): void {
  let db: CdcTestDatabase;
  let directory: string;

  before(async () => {
    db = await startCdcDatabase();
    directory = mkdtempSync(join(tmpdir(), `busbar-faults-${mode}-`));
  });

  after(async () => {
    await db?.stop();
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
  });

  for (const scenario of SCENARIOS) {
    test(
      `${mode} mode, ${scenario.fault} during a burst of ${WRITERS} writers: every committed change is stored exactly once, in commit order, and replays to the tables`,
      { timeout: 120_000 },
      (t) => runScenario(t, mode, db, directory, scenario),
    );
  }
}

async function runScenario(
  t: TestContext,
  mode: 'replication' | 'trigger',
  db: CdcTestDatabase,
  directory: string,
  scenario: FaultScenario,
): Promise<void> {
  const started = Date.now();
  const name = `${scenario.name}_${mode}`;
  const tables = burstTables(scenario.name);
  await createBurstTables(db.admin, tables);
  const storePath = join(directory, `${name}.db`);
  const capture = new CaptureProcess({
    mode,
    connectionString: db.connectionString,
    storePath,
    name,
    tables: tables.specs,
    marker: { schema: tables.schema, name: 'marker' },
    ...WATCHDOG,
  });
  const ledger = new BurstLedger();
  const context: StepContext = { mode, db, capture, name, tables, ledger, ddl: new WriterConnection(db.connectionString) };
  capture.start();
  try {
    await capture.connectedAfter(0);
    const gate = new StepGate();
    const burst: WriteBurst = new WriteBurst({
      connectionString: db.connectionString,
      tables,
      ledger,
      writers: WRITERS,
      transactionsPerWriter: TRANSACTIONS_PER_WRITER,
      seed: name,
      beforeTransaction: (): Promise<void> => gate.pass(() => burst.done),
    });
    const steps = scenario.steps();
    const recoveries: string[] = [];
    const writing = burst.run();
    const stepping = runSteps(steps, burst, gate, context, recoveries);
    await Promise.all([writing, stepping]);
    assert.equal(burst.done, burst.total, 'every writer transaction ran');

    const written = Date.now();
    await writeMarker(context, 1);
    const caughtUp = (await capture.markerStored(1)) - written;
    await capture.stop();

    const store = createSqliteStore({ path: storePath });
    let result: Reconciliation;
    try {
      result = await reconcile(await storedChanges(store), tables, ledger, db.admin);
    } finally {
      await store.close();
    }
    t.diagnostic(
      `${mode} ${scenario.name}: ${ledger.committedChanges()} changes committed in ${ledger.count('committed') + ledger.count('lost-committed')} ` +
        `transactions (${ledger.count('rolled-back')} rolled back on purpose, lost in flight: ${ledger.count('lost-committed')} committed, ` +
        `${ledger.count('lost-rolled-back')} not); ${result.stored} stored; missing ${result.missing.length}, doubled ${result.doubled.length}, ` +
        `unexpected ${result.unexpected.length}; ${result.readCount} snapshot READs; caught up ${caughtUp} ms after the burst; ${Math.round((Date.now() - started) / 100) / 10} s in all`,
    );
    for (const line of recoveries) t.diagnostic(`  ${line}`);
    t.diagnostic(`  ${capture.connects.length} connects in ${capture.generations} capture processes; warnings: ${summarize(capture.warnings)}`);
    if (ledger.errors.size > 0) t.diagnostic(`  writer errors: ${[...ledger.errors].map(([code, n]) => `${code} ×${n}`).join(', ')}`);
    assertReconciled(result);
    assert.equal(result.stored, ledger.committedChanges(), 'as many changes stored as committed');
    assert.equal(recoveries.length, steps.filter((step) => step.kind === 'fault').length, 'every fault injected and recovered from');
    const unexplained = [...ledger.errors.keys()].filter((error) => !(scenario.writerErrors ?? DEADLOCK).test(error));
    assert.deepEqual(unexplained, [], 'writer transactions failed only in ways the fault explains');
    assertContentCovered(result);
    const { rows } = await db.admin.query(`SELECT to_regclass('public.y') IS NOT NULL AS survived`);
    assert.equal(rows[0].survived, true, 'the table a hostile name would drop is still there');
    scenario.check?.(result, capture);
  } finally {
    await capture.kill();
    await context.ddl.end();
    if (mode === 'replication') {
      await db.admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [name]).catch(() => {});
    }
  }
}

/**
 * Runs each step when the burst reaches its point. Writers are held only a
 * little past it (when the previous fault's recovery took that long), so
 * every step happens mid-burst; held writers first write freely again for a
 * while, so the step hits a capture streaming under load. A fault waits
 * until capture has recorded progress since the last one, so it resumes
 * from the middle of the burst, and is followed by waiting for capture to
 * stream again; `recoveries` gets a line per fault.
 */
async function runSteps(steps: readonly Step[], burst: WriteBurst, gate: StepGate, context: StepContext, recoveries: string[]): Promise<void> {
  const { capture } = context;
  const lead = Math.ceil(STEP_LEAD * burst.total);
  const point = (step: Step): number => Math.floor(step.at * burst.total);
  let confirmed = await confirmedPosition(context);
  gate.holdAt(point(steps[0]!) + lead);
  for (const [i, step] of steps.entries()) {
    const target = point(step);
    await waitFor(`the burst to reach ${step.at * 100}%`, () => burst.done >= target, 60_000);
    if (step.kind === 'fault') {
      const before = confirmed;
      await waitFor('capture to record progress since the last fault', async () => ((await confirmedPosition(context)) > before ? true : undefined), 30_000);
    }
    const held = burst.done >= target + lead;
    const next = steps[i + 1];
    gate.holdAt(next === undefined ? undefined : point(next) + lead);
    if (held) await waitFor('writers to write again', () => burst.done >= target + 2 * lead, 60_000);
    const at = Date.now();
    const progress = Math.round((burst.done / burst.total) * 100);
    await step.run(context).catch((error: unknown) => {
      throw new Error(`${step.label} failed: ${(error as Error).message}; capture: ${capture.summary()}`, { cause: error });
    });
    const ended = Date.now();
    if (step.kind === 'fault') {
      const reconnected = await capture.connectedAfter(at);
      confirmed = await confirmedPosition(context);
      recoveries.push(
        `${step.label} at ${progress}% of the burst: streaming again ${reconnected - at} ms after it began, ${Math.max(0, reconnected - ended)} ms after it ended`,
      );
    }
  }
}

/**
 * Holds writers at a point of the burst until the step planned there has
 * started, so every step lands mid-burst however fast the writers are.
 */
class StepGate {
  threshold: number | undefined;
  private released: Promise<void> = Promise.resolve();
  private release: () => void = () => {};

  /** Writers stop before a transaction once `done` reaches `threshold`; undefined lets them run to the end. */
  holdAt(threshold: number | undefined): void {
    const release = this.release;
    this.threshold = threshold;
    this.released = new Promise((resolve) => (this.release = resolve));
    release();
  }

  async pass(done: () => number): Promise<void> {
    while (this.threshold !== undefined && done() >= this.threshold) await this.released;
  }
}

/** Warnings by kind (numbers and names stripped), with counts. */
function summarize(warnings: readonly string[]): string {
  const kinds = new Map<string, number>();
  for (const warning of warnings) {
    const kind = warning.replace(/"[^"]*"/g, '…').replace(/\d+/g, 'n').slice(0, 120);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return [...kinds].map(([kind, n]) => `${n}× ${kind}`).join(' | ');
}
