import { BusbarError } from '../core/errors.ts';
import type { ServerMeters } from './context.ts';

/** One number contributed to stats and metrics. */
export interface Meter {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  read(): number;
}

const NAME = /^[a-z][a-z0-9_]*$/;

/**
 * The registry behind `context.meters`: parts of the server register their
 * numbers once and `/v1/stats` and `/metrics` read them when asked, so
 * counting costs nothing until someone looks.
 *
 * @example
 * ```ts
 * const meters = new MeterRegistry();
 * let open = 0;
 * meters.gauge('sse_connections', 'Open Server-Sent Events connections.', () => open);
 * meters.list()[0]?.read(); // 0
 * ```
 */
export class MeterRegistry implements ServerMeters {
  private readonly meters = new Map<string, Meter>();

  gauge(name: string, help: string, read: () => number): void {
    this.add({ name, help, type: 'gauge', read });
  }

  counter(name: string, help: string): { add(amount?: number): void } {
    let total = 0;
    this.add({ name, help, type: 'counter', read: () => total });
    return {
      add(amount = 1) {
        total += amount;
      },
    };
  }

  list(): Meter[] {
    return [...this.meters.values()];
  }

  /** Current values by name, for `/v1/stats`. */
  snapshot(): Record<string, number> {
    const values: Record<string, number> = {};
    for (const meter of this.meters.values()) values[meter.name] = meter.read();
    return values;
  }

  private add(meter: Meter): void {
    if (!NAME.test(meter.name)) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `meter name ${JSON.stringify(meter.name)} must match [a-z][a-z0-9_]*`);
    }
    if (this.meters.has(meter.name)) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `a meter named "${meter.name}" is already registered`);
    }
    this.meters.set(meter.name, meter);
  }
}
