import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BusbarError } from '../core/errors.ts';
import type { CaptureSource, ChangeSink, SourceHealth } from './capture-source.ts';
import { CaptureLoop } from './capture-loop.ts';
import { resolveOptions } from './cdc-options.ts';
import { Watchdog, type WatchdogOptions } from './watchdog.ts';

const HEALTHY: SourceHealth = { lagBytes: 0, lagSeconds: 0, walStatus: 'reserved', retainedBytes: 0, warnings: [] };
const STALE = (): Error => new Error('Client has encountered a connection error and is not queryable');

/** Runs one watchdog check (interval 1 ms) and reports what it concluded. */
async function oneCheck(options: Partial<WatchdogOptions>): Promise<{ health: SourceHealth | undefined; dead: BusbarError | undefined; resets: number }> {
  let resets = 0;
  return new Promise((resolve) => {
    const watchdog: Watchdog = new Watchdog({
      interval: 1,
      timeout: 50,
      probe: async () => {},
      health: async () => HEALTHY,
      reset: () => void resets++,
      onHealth: (health) => finish(health, undefined),
      onDeadLink: (error) => finish(undefined, error),
      ...options,
    });
    function finish(health: SourceHealth | undefined, dead: BusbarError | undefined): void {
      watchdog.stop();
      resolve({ health, dead, resets });
    }
    watchdog.start();
  });
}

describe('the watchdog', () => {
  test('stale connections the server already dropped are replaced within the check, and the link counts as alive', async () => {
    // As after a pg_terminate_backend of every capture connection: the probe's
    // connection fails on first use, then the health link does.
    let probes = 0;
    let healths = 0;
    const result = await oneCheck({
      probe: async () => {
        if (++probes === 1) throw STALE();
      },
      health: async () => {
        if (++healths === 1) throw STALE();
        return HEALTHY;
      },
    });
    assert.equal(result.dead, undefined);
    assert.deepEqual(result.health, HEALTHY);
    assert.equal(probes, 3);
    assert.equal(result.resets, 2, 'each failed try starts on a fresh connection');
  });

  test('a check that keeps failing on fresh connections is a dead link, with the cause', async () => {
    const result = await oneCheck({ probe: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) });
    assert.equal(result.dead?.code, 'BUSBAR_ERR_UNREACHABLE');
    assert.match(result.dead!.message, /the watchdog's check failed: connect ECONNREFUSED/);
  });

  test('a check that does not answer within timeout is a dead link at once, not retried', async () => {
    let probes = 0;
    const started = Date.now();
    const result = await oneCheck({
      timeout: 40,
      probe: () => {
        probes++;
        return new Promise(() => {}); // a frozen server
      },
    });
    assert.match(result.dead!.message, /did not answer the watchdog within 40 ms/);
    assert.equal(probes, 1);
    assert.ok(Date.now() - started < 1000);
  });
});

describe('the capture loop with its watchdog', () => {
  test('a check that began during an outage and fails after the stream came back does not drop the new stream', async () => {
    // As around a server restart: the first attempt is refused, the second
    // connects while a watchdog check started during the outage is still
    // waiting; that check's verdict is about the outage, not the new link.
    let attempts = 0;
    const source: CaptureSource = {
      mode: 'replication',
      ensureFor: async () => {},
      ensureForAll: async () => {},
      removeFor: async () => {},
      drop: async () => {},
      close: async () => {},
      health: async () => HEALTHY,
      async stream(_sink: ChangeSink, signal: AbortSignal, connected: () => void) {
        if (++attempts === 1) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        await new Promise((resolve) => setTimeout(resolve, 30));
        connected();
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
    };
    let probes = 0;
    const warnings: string[] = [];
    const loop = new CaptureLoop({
      source,
      options: resolveOptions({ connectionString: 'postgres://unused', retryInterval: 1, watchdogInterval: 10, timeout: 60 }),
      bus: undefined,
      handlers: [],
      prepare: async () => ({ source: 'postgresql://x:1/db', idPrefix: 'pg-1-db' }),
      probe: () => (++probes === 1 ? new Promise<void>(() => {}) : Promise.resolve()),
      resetProbe: () => {},
      warn: (message) => warnings.push(message),
    });
    const closing = new AbortController();
    const running = loop.run(closing.signal);
    await new Promise((resolve) => setTimeout(resolve, 250));
    closing.abort();
    await running;
    assert.ok(warnings.some((warning) => /did not answer the watchdog/.test(warning)) === false, warnings.join('\n'));
    assert.equal(attempts, 2, 'the stream that came back kept streaming');
    assert.ok(probes >= 2, 'later checks judged the new link');
  });
});
