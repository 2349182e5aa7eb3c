import { setTimeout as sleep, setImmediate as yieldToIo } from 'node:timers/promises';
import { BusbarError } from '../../core/errors.ts';
import type { BusbarEvent } from '../../core/event.ts';
import type { EventLog } from '../../core/event-log.ts';
import { EventFrames } from './event-frames.ts';
import type { StreamFilter } from './stream-filter.ts';

/** Something the hub hands live events to: one subscription of one connection. */
export interface HubListener {
  readonly filter: StreamFilter;
  /** Called for every event past the hub's position that matches `filter`. */
  deliver(frames: EventFrames): void;
}

interface Group {
  readonly filter: StreamFilter;
  readonly listeners: Set<HubListener>;
}

export interface LiveHubOptions {
  log: EventLog;
  serialize(event: BusbarEvent): string;
  /** Where read failures go (the hub retries them). */
  onError(error: unknown): void;
  /** Events read per page. Default 256. */
  pageSize?: number;
  /** Wait after a failed read before the next. Default 1000 ms. */
  retryMs?: number;
}

/**
 * The one reader of the log behind every streaming connection of a server.
 * It tails the log (`waitForAppend` + `readAll`, page by page) and hands
 * each event, serialised once, to every attached listener whose filter
 * matches. Listeners with the same filter form a group that is tested once
 * per event, so a thousand viewers of `order.*` cost one pattern match.
 *
 * `position` is the last position handed to every attached listener: a
 * listener attached now receives exactly the events after it.
 *
 * @example
 * ```ts
 * const hub = new LiveHub({ log: store, serialize: serializeEvent, onError: console.error });
 * await hub.start();
 * hub.attach({ filter, deliver: (frames) => response.write(frames.sse) });
 * ```
 */
export class LiveHub {
  private readonly options: LiveHubOptions;
  private readonly groups = new Map<string, Group>();
  private readonly stopping = new AbortController();
  private listenerCount = 0;
  private running: Promise<void> | undefined;
  private current = 0;

  constructor(options: LiveHubOptions) {
    this.options = options;
  }

  /** The last position every attached listener has been handed (or skipped as not matching). */
  get position(): number {
    return this.current;
  }

  /** How many listeners are attached. */
  get size(): number {
    return this.listenerCount;
  }

  /** Starts tailing from the current head of the log. */
  async start(): Promise<void> {
    if (this.running !== undefined) return;
    this.current = await this.options.log.head();
    this.running = this.run();
  }

  /** Stops tailing; listeners receive nothing more. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.running;
    this.groups.clear();
    this.listenerCount = 0;
  }

  attach(listener: HubListener): void {
    const key = listener.filter.key;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = { filter: listener.filter, listeners: new Set() };
      this.groups.set(key, group);
    }
    if (!group.listeners.has(listener)) {
      group.listeners.add(listener);
      this.listenerCount++;
    }
  }

  detach(listener: HubListener): void {
    const group = this.groups.get(listener.filter.key);
    if (group === undefined || !group.listeners.delete(listener)) return;
    this.listenerCount--;
    if (group.listeners.size === 0) this.groups.delete(listener.filter.key);
  }

  private async run(): Promise<void> {
    const { log } = this.options;
    const signal = this.stopping.signal;
    const pageSize = this.options.pageSize ?? 256;
    while (!signal.aborted) {
      try {
        await log.waitForAppend(this.current, signal);
        if (signal.aborted) return;
        if (this.listenerCount === 0) {
          // Nobody to hand events to: skip reading them. A listener that
          // attaches later catches up from its own position by itself.
          this.current = Math.max(this.current, await log.head());
          continue;
        }
        const page = await log.readAll({ after: this.current, limit: pageSize });
        if (signal.aborted) return;
        for (const logged of page.events) this.fanOut(new EventFrames(logged, this.options.serialize));
        if (page.last > this.current) this.current = page.last;
        else await sleep(10, undefined, { signal }); // the head moved but nothing is readable yet
        // A full page means more are waiting: let sockets flush and clients
        // speak before the next one, so a burst never starves the server.
        if (page.events.length === pageSize) await yieldToIo();
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof BusbarError && error.code === 'BUSBAR_ERR_CLOSED') return;
        this.options.onError(error);
        await sleep(this.options.retryMs ?? 1000, undefined, { signal }).catch(() => {});
      }
    }
  }

  private fanOut(frames: EventFrames): void {
    if (frames.expired) return;
    const event = frames.logged.event;
    for (const group of this.groups.values()) {
      if (!group.filter.matches(event)) continue;
      for (const listener of group.listeners) listener.deliver(frames);
    }
  }
}
