import { BusbarError } from '../core/errors.ts';
import type { SourceHealth } from './capture-source.ts';

export interface WatchdogOptions {
  /** Milliseconds between checks. */
  readonly interval: number;
  /** Milliseconds a check may take before the link counts as dead. */
  readonly timeout: number;
  /** A round trip on the watchdog's own connection; rejects when the server cannot be reached. */
  readonly probe: () => Promise<void>;
  /** The source's health facts (slot lag, WAL…). */
  readonly health: () => Promise<SourceHealth>;
  /** Drops the watchdog's connection after a check failed or hung, so the next try starts afresh. */
  readonly reset: () => void;
  readonly onHealth: (health: SourceHealth) => void;
  /**
   * The check failed or did not answer within `timeout`. `since` is when
   * that check began: a link made after it is not what the check judged.
   */
  readonly onDeadLink: (error: BusbarError, since: number) => void;
}

/**
 * Tries a check this many times when it fails at once: each of the check's
 * connections (probe, health) may be a stale one the server already
 * dropped, and each is only found out when used.
 */
const TRIES = 3;

/**
 * Checks the database on a connection of its own every `interval`: a probe
 * query, then the source's health. A check that gives no answer within
 * `timeout`, or fails on fresh connections too, means the link is dead
 * even if the streaming socket looks open (a frozen server, a silent
 * network): the capture loop then drops the stream and reconnects.
 *
 * A check that fails at once is retried on fresh connections within the
 * same `timeout`: after the server dropped the watchdog's own connections
 * (a pg_terminate_backend, a restart), the first use of each stale one
 * fails without the database being unreachable, and calling that a dead
 * link would tear down a stream that is working.
 *
 * @example
 * ```ts
 * const watchdog = new Watchdog({ interval: 5000, timeout: 5000, probe, health, reset,
 *   onHealth: (h) => (last = h), onDeadLink: () => attempt.abort() });
 * watchdog.start();
 * ```
 */
export class Watchdog {
  private readonly options: WatchdogOptions;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(options: WatchdogOptions) {
    this.options = options;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => void this.check(), this.options.interval);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const { timeout } = this.options;
    const since = Date.now();
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true;
        reject(new BusbarError('BUSBAR_ERR_UNREACHABLE', `the database did not answer the watchdog within ${timeout} ms`));
      }, timeout);
    });
    try {
      const health = await Promise.race([this.answer(() => expired), deadline]);
      if (this.running) this.options.onHealth(health);
    } catch (error) {
      this.options.reset();
      if (this.running) {
        this.options.onDeadLink(
          error instanceof BusbarError
            ? error
            : new BusbarError('BUSBAR_ERR_UNREACHABLE', `the watchdog's check failed: ${(error as Error).message}`, { cause: error }),
          since,
        );
      }
    } finally {
      clearTimeout(timer);
      this.schedule();
    }
  }

  /** Probe, then health; a try that fails is followed by another on fresh connections, until TRIES or the deadline. */
  private async answer(expired: () => boolean): Promise<SourceHealth> {
    for (let tries = 1; ; tries++) {
      try {
        await this.options.probe();
        return await this.options.health();
      } catch (error) {
        if (tries >= TRIES || expired() || !this.running) throw error;
        this.options.reset();
      }
    }
  }
}
