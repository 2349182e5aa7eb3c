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
  /** Drops the watchdog's connection after a check hung, so the next one starts afresh. */
  readonly reset: () => void;
  readonly onHealth: (health: SourceHealth) => void;
  /** The check failed or did not answer within `timeout`. */
  readonly onDeadLink: (error: BusbarError) => void;
}

/**
 * Checks the database on a connection of its own every `interval`: a probe
 * query, then the source's health. A check that fails, or gives no answer
 * within `timeout`, means the link is dead even if the streaming socket
 * looks open (a frozen server, a silent network): the capture loop then
 * drops the stream and reconnects.
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
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BusbarError('BUSBAR_ERR_UNREACHABLE', `the database did not answer the watchdog within ${timeout} ms`)),
        timeout,
      );
    });
    try {
      const health = await Promise.race([
        (async () => {
          await this.options.probe();
          return this.options.health();
        })(),
        deadline,
      ]);
      if (this.running) this.options.onHealth(health);
    } catch (error) {
      this.options.reset();
      if (this.running) {
        this.options.onDeadLink(
          error instanceof BusbarError
            ? error
            : new BusbarError('BUSBAR_ERR_UNREACHABLE', `the watchdog's check failed: ${(error as Error).message}`, { cause: error }),
        );
      }
    } finally {
      clearTimeout(timer);
      this.schedule();
    }
  }
}
