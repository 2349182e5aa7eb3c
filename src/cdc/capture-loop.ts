import { BusbarError, toError } from '../core/errors.ts';
import type { BusbarEvent } from '../core/event.ts';
import type { CaptureSource, SourceHealth } from './capture-source.ts';
import type { ResolvedOptions, CdcStatus } from './cdc-options.ts';
import type { ChangeData, ChangeOrigin } from './change.ts';
import { type CdcBus, type CdcHandler, createChangeSink } from './change-sink.ts';
import { Watchdog } from './watchdog.ts';
import { nowRfc3339 } from '../core/event.ts';

/** What the loop needs from the facade that owns it. */
export interface CaptureLoopHost {
  readonly source: CaptureSource;
  readonly options: ResolvedOptions;
  readonly bus: CdcBus | undefined;
  /** Live list: handlers added later take part from the next transaction. */
  readonly handlers: readonly CdcHandler[];
  /** Ensures the configured tables (until that succeeds once) and reads the origin. */
  prepare(): Promise<ChangeOrigin>;
  /** A round trip on the watchdog's connection. */
  probe(): Promise<void>;
  /** Drops the watchdog's connection (it hung). */
  resetProbe(): void;
  warn(message: string): void;
}

type State = CdcStatus['state'];

/**
 * Runs capture until closed: one attempt streams from the source; when it
 * fails, the loop waits `retryInterval` and tries again, counting failed
 * connection attempts since the last successful connect. When that count
 * reaches `retryAttempts` (> 0) it gives up with `BUSBAR_ERR_CDC_GAVE_UP`.
 * The watchdog runs beside it and aborts an attempt whose link went dead.
 *
 * @example
 * ```ts
 * const loop = new CaptureLoop(host);
 * await loop.run(closing.signal); // resolves once closing aborts, rejects when it gives up
 * ```
 */
export class CaptureLoop {
  state: State = 'idle';
  connected = false;
  failedAttempts = 0;
  delivered = 0;
  lastError: CdcStatus['lastError'];
  lastDelivered: CdcStatus['lastDelivered'];
  health: CdcStatus['health'];
  private readonly host: CaptureLoopHost;
  private attempt: AbortController | undefined;
  /** When the current attempt began streaming (Date.now()); undefined until it does. */
  private streamingSince: number | undefined;
  private deadLink: BusbarError | undefined;
  private warnings = '';

  constructor(host: CaptureLoopHost) {
    this.host = host;
  }

  async run(closing: AbortSignal): Promise<void> {
    const { options } = this.host;
    const watchdog = new Watchdog({
      interval: options.watchdogInterval,
      timeout: options.timeout,
      probe: () => this.host.probe(),
      health: () => this.host.source.health(),
      reset: () => this.host.resetProbe(),
      onHealth: (health) => this.recordHealth(health),
      onDeadLink: (error, since) => this.abortAttempt(error, since),
    });
    watchdog.start();
    try {
      while (!closing.aborted) {
        const failure = await this.runAttempt(closing);
        if (closing.aborted) break;
        this.connected = false;
        this.lastError = { code: (failure as { code?: string }).code, message: failure.message, at: new Date().toISOString() };
        if (options.retryAttempts > 0 && this.failedAttempts >= options.retryAttempts) {
          this.state = 'gave-up';
          throw new BusbarError(
            'BUSBAR_ERR_CDC_GAVE_UP',
            `change capture gave up after ${this.failedAttempts} failed connection attempt${this.failedAttempts === 1 ? '' : 's'}: ${failure.message}`,
            { cause: failure, details: { attempts: this.failedAttempts } },
          );
        }
        this.state = 'retrying';
        this.host.warn(`change capture failed (${failure.message}); reconnecting in ${options.retryInterval} ms`);
        await sleep(options.retryInterval, closing);
      }
      this.state = 'stopped';
    } finally {
      watchdog.stop();
      this.connected = false;
    }
  }

  /** One attempt: resolves with the error that ended it (a clean end counts as one too). */
  private async runAttempt(closing: AbortSignal): Promise<Error> {
    const attempt = new AbortController();
    const stop = (): void => attempt.abort();
    closing.addEventListener('abort', stop, { once: true });
    this.attempt = attempt;
    this.streamingSince = undefined;
    this.deadLink = undefined;
    this.state = 'connecting';
    let connected = false;
    try {
      const origin = await this.host.prepare();
      if (attempt.signal.aborted) return this.deadLink ?? new Error('attempt aborted');
      const sink = createChangeSink({
        origin,
        bus: this.host.bus,
        handlers: this.host.handlers,
        onDelivered: (events) => this.recordDelivered(events),
      });
      await this.host.source.stream(sink, attempt.signal, () => {
        connected = true;
        this.streamingSince = Date.now();
        this.connected = true;
        this.failedAttempts = 0;
        this.state = 'streaming';
        void this.callOnConnect();
      });
      if (this.deadLink !== undefined) return this.deadLink;
      return new Error('the capture stream ended');
    } catch (error) {
      return toError(error);
    } finally {
      closing.removeEventListener('abort', stop);
      this.attempt = undefined;
      if (!connected && !closing.aborted) this.failedAttempts++;
    }
  }

  private abortAttempt(error: BusbarError, since: number): void {
    const attempt = this.attempt;
    if (attempt === undefined || attempt.signal.aborted) return;
    // The check began before this stream connected (it judged the outage
    // the stream has just recovered from, e.g. a server restart): the next
    // check judges the new link. A stream still connecting is aborted, so a
    // frozen server cannot hold it.
    if (this.streamingSince !== undefined && this.streamingSince >= since) return;
    this.deadLink = error;
    this.connected = false;
    this.host.warn(`${error.message}: dropping the capture connection to reconnect`);
    attempt.abort(error);
  }

  private async callOnConnect(): Promise<void> {
    for (const handler of this.host.handlers) {
      try {
        await handler.onConnect?.();
      } catch (error) {
        this.host.warn(`a CDC handler's onConnect failed: ${toError(error).message}`);
      }
    }
  }

  private recordDelivered(events: readonly BusbarEvent<ChangeData>[]): void {
    const last = events.at(-1);
    if (last === undefined) return;
    this.delivered += events.length;
    // Snapshot rows have no commit position: the last change delivered stays the last streamed one.
    if (last.data.action === 'READ') return;
    this.lastDelivered = { lsn: last.data.lsn, txid: last.data.txid, timestamp: last.data.timestamp, at: nowRfc3339() };
  }

  private recordHealth(health: SourceHealth): void {
    this.health = { ...health, checkedAt: new Date().toISOString() };
    // Each distinct set of warnings is said once, not every interval.
    const warnings = health.warnings.join('\n');
    if (warnings !== this.warnings) {
      this.warnings = warnings;
      for (const warning of health.warnings) this.host.warn(warning);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
