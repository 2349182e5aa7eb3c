/**
 * The scenarios of the fault suite (issue 4 §7): one kind of fault each,
 * injected at fixed points of the burst, and the checks that are particular
 * to it. `fault-suite.fixture.ts` runs each in both capture modes.
 */
import assert from 'node:assert/strict';
import type { CaptureProcess } from './capture-process.fixture.ts';
import {
  addColumn,
  COLUMN_ADDED_ITEM,
  COLUMN_DROPPED_ITEM,
  dropColumn,
  fillColumn,
  freezeServer,
  killReaderProcess,
  restartServer,
  type Step,
  terminateReader,
  truncate,
} from './fault-steps.fixture.ts';
import type { Reconciliation } from './reconcile.fixture.ts';

export interface FaultScenario {
  /** Lower-case letters only: it names the slot, reader and schema. */
  readonly name: string;
  /** How the test name describes the fault. */
  readonly fault: string;
  readonly steps: () => Step[];
  /**
   * Errors a writer transaction may end with (SQLSTATE or message start):
   * what the fault explains. Anything else is a bug in the burst itself.
   */
  readonly writerErrors?: RegExp;
  /** Checks of its own after reconciliation. */
  readonly check?: (result: Reconciliation, capture: CaptureProcess) => void;
}

/** Deadlocks are PostgreSQL's to resolve; the burst locks contended rows in order, so they are rare. */
export const DEADLOCK = /^40P01$/;

/** In the order they run; each gets its own tables, slot or reader, and store. */
export const SCENARIOS: readonly FaultScenario[] = [
  {
    name: 'terminate',
    fault: "the capture's connections killed with pg_terminate_backend three times",
    steps: () => [terminateReader(0.2), terminateReader(0.45), terminateReader(0.7)],
  },
  {
    name: 'restart',
    fault: 'PostgreSQL restarted (fast shutdown, start) twice',
    steps: () => [restartServer(0.25), restartServer(0.6)],
    writerErrors: /^(57P01|40P01|Connection terminated|Client has encountered a connection error)/,
  },
  {
    name: 'sigkill',
    fault: 'the capture process SIGKILLed and started again on its store three times',
    steps: () => [killReaderProcess(0.2), killReaderProcess(0.45), killReaderProcess(0.7)],
  },
  {
    name: 'freeze',
    fault: 'the server frozen with SIGSTOP for longer than watchdogInterval + timeout twice',
    steps: () => [freezeServer(0.25), freezeServer(0.6)],
    check: (_result, capture) => {
      const noticed = capture.warnings.filter((warning) => /did not answer the watchdog/.test(warning)).length;
      assert.ok(noticed >= 2, `the watchdog called the frozen link dead each time (${noticed}): ${capture.warnings.slice(-5).join(' | ')}`);
    },
  },
  {
    name: 'schema',
    fault: 'ADD COLUMN, TRUNCATE, DROP COLUMN and a terminated reader',
    steps: () => [
      addColumn(0.15),
      truncate(0.3, 'lines'),
      fillColumn(0.4),
      terminateReader(0.5),
      dropColumn(0.65),
      truncate(0.8, 'audit'),
    ],
    // 55P03: a schema change's lock_timeout; 40P01: a writer queued behind it.
    writerErrors: /^(40P01|55P03)$/,
    check: (result) => assertColumnWindow(result),
  },
];

/** The burst's hard cases went through this scenario's faults, not just through the tables. */
export function assertContentCovered(result: Reconciliation): void {
  const noteLengths = result.changes.map(({ event }) => String(event.data.data?.note ?? '').length);
  assert.ok(noteLengths.some((length) => length > 1_000_000), 'a row over 1 MB was captured');
  assert.ok(noteLengths.some((length) => length > 8192 && length < 1_000_000), 'rows over 8 kB were captured');
  const roles = new Set(result.changes.map((change) => `${change.role} ${change.change.action}`));
  for (const expected of ['lines INSERT', 'lines UPDATE', 'lines DELETE', 'audit INSERT', 'audit DELETE', 'hot UPDATE', 'items DELETE']) {
    assert.ok(roles.has(expected), `${expected} changes were captured`);
  }
}

/** Items changed between ADD COLUMN and DROP COLUMN carry `extra`; before and after, they do not. */
function assertColumnWindow(result: Reconciliation): void {
  const items = result.changes.filter((change) => change.role === 'items' && change.change.action !== 'TRUNCATE');
  const added = items.findIndex((change) => change.change.key === String(COLUMN_ADDED_ITEM));
  const dropped = items.findIndex((change) => change.change.key === String(COLUMN_DROPPED_ITEM));
  assert.ok(added >= 0 && dropped > added, 'both schema-change markers stored, in order');
  const wrong = items.filter((change, i) => Object.hasOwn(change.event.data.data!, 'extra') !== (i >= added && i < dropped));
  assert.deepEqual(wrong.map((change) => change.identity), [], 'each item change carries the columns the table had when it committed');
  const filled = items.filter((change) => change.event.data.data!.extra === 'filled ✓').length;
  assert.ok(filled > 0, 'values written to the added column arrive');
}
