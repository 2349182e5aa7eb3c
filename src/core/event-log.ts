import type { BusbarEvent } from './event.ts';

/**
 * The seam a durable store plugs into: with one configured, `publish`
 * resolves only after the event is committed here, and the event carries the
 * position the log assigned as `sequence`. The stores in `busbar/store/…`
 * implement it; user code does not change.
 */
export interface EventLog {
  /**
   * Appends the events atomically and resolves with their positions once
   * they are durable. An event whose id is already stored is not appended
   * again: its original position is returned.
   */
  append(events: readonly BusbarEvent[]): Promise<readonly number[]>;
}
