import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CaptureSource, ChangeSink, SourceHealth } from './capture-source.ts';
import { CaptureLoop, type CaptureLoopHost } from './capture-loop.ts';
import { resolveOptions } from './cdc-options.ts';

type Attempt = (sink: ChangeSink, signal: AbortSignal, connected: () => void) => Promise<void>;

const HEALTHY: SourceHealth = { lagBytes: 0, lagSeconds: 0, walStatus: 'reserved', retainedBytes: 0, warnings: [] };

/** A source that plays one scripted attempt per stream() call, then streams until aborted. */
function scriptedSource(attempts: Attempt[], health: () => Promise<SourceHealth> = async () => HEALTHY): CaptureSource & { calls: number } {
  const source = {
    mode: 'replication' as const,
    calls: 0,
    ensureFor: async () => {},
    ensureForAll: async () => {},
    removeFor: async () => {},
    drop: async () => {},
    close: async () => {},
    health,
    stream(sink: ChangeSink, signal: AbortSignal, connected: () => void): Promise<void> {
      const attempt = attempts[source.calls++] ?? untilAborted;
      return attempt(sink, signal, connected);
    },
  };
  return source;
}

const untilAborted: Attempt = (_sink, signal, connected) => {
  connected();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
};
const refused: Attempt = async () => {
  throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
};
const connectsThenDrops: Attempt = async (_sink, _signal, connected) => {
  connected();
  throw new Error('terminating connection due to administrator command');
};

function host(source: CaptureSource, options: Record<string, unknown> = {}, probe: () => Promise<void> = async () => {}) {
  const warnings: string[] = [];
  const loopHost: CaptureLoopHost = {
    source,
    options: resolveOptions({ connectionString: 'postgres://unused', retryInterval: 1, watchdogInterval: 1000, ...options }),
    bus: undefined,
    handlers: [],
    prepare: async () => ({ source: 'postgresql://x:1/db', idPrefix: 'pg-1-db' }),
    probe,
    resetProbe: () => {},
    warn: (message) => warnings.push(message),
  };
  return { loopHost, warnings };
}

describe('the capture loop', () => {
  test('gives up after retryAttempts failed connection attempts in a row, with the last error as cause', async () => {
    const source = scriptedSource([refused, refused, refused]);
    const { loopHost, warnings } = host(source, { retryAttempts: 3 });
    const loop = new CaptureLoop(loopHost);
    await assert.rejects(loop.run(new AbortController().signal), (error: Error & { code?: string; cause?: Error }) => {
      assert.equal(error.code, 'BUSBAR_ERR_CDC_GAVE_UP');
      assert.match(error.cause!.message, /ECONNREFUSED/);
      return true;
    });
    assert.equal(source.calls, 3);
    assert.equal(loop.state, 'gave-up');
    assert.equal(warnings.length, 2); // a warning per retry, none for the give-up
  });

  test('a session that connected and then dropped does not count as a failed attempt', async () => {
    const source = scriptedSource([refused, connectsThenDrops, refused, connectsThenDrops, refused]);
    const { loopHost } = host(source, { retryAttempts: 2 });
    const loop = new CaptureLoop(loopHost);
    const closing = new AbortController();
    const running = loop.run(closing.signal);
    while (source.calls < 6) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(loop.state, 'streaming');
    assert.equal(loop.failedAttempts, 0);
    closing.abort();
    await running;
    assert.equal(loop.state, 'stopped');
  });

  test('retryAttempts 0 retries for ever', async () => {
    const source = scriptedSource(Array.from({ length: 20 }, () => refused));
    const { loopHost } = host(source, { retryAttempts: 0 });
    const loop = new CaptureLoop(loopHost);
    const closing = new AbortController();
    const running = loop.run(closing.signal);
    while (loop.state !== 'streaming') await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(source.calls, 21);
    closing.abort();
    await running;
  });

  test('the watchdog drops a link whose check does not answer in time, and the loop reconnects', async () => {
    let frozen = true;
    const source = scriptedSource([untilAborted], () => (frozen ? new Promise<SourceHealth>(() => {}) : Promise.resolve(HEALTHY)));
    const { loopHost, warnings } = host(source, { watchdogInterval: 10, timeout: 20 });
    const loop = new CaptureLoop(loopHost);
    const closing = new AbortController();
    const running = loop.run(closing.signal);
    while (source.calls < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    frozen = false;
    assert.ok(warnings.some((warning) => /did not answer the watchdog within 20 ms/.test(warning)), warnings.join('\n'));
    while (loop.health === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(loop.health.walStatus, 'reserved');
    closing.abort();
    await running;
  });
});
