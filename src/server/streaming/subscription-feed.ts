import type { BusbarEvent } from '../../core/event.ts';
import type { EventLog } from '../../core/event-log.ts';
import { EventFrames } from './event-frames.ts';
import type { HubListener, LiveHub } from './live-hub.ts';
import type { StartPosition } from './start-position.ts';
import type { StreamFilter } from './stream-filter.ts';

/** The connection side of a feed: where its frames go and how full that is. */
export interface FeedSink {
  /** Queues bytes to send; `flushed` runs once they (and all before) reached the operating system. */
  write(chunk: Buffer, flushed?: () => void): void;
  /** Bytes queued and not yet taken by the operating system. */
  readonly buffered: number;
  /** Drops the connection as a slow consumer. */
  cutOff(): void;
}

export interface FeedOptions {
  hub: LiveHub;
  log: EventLog;
  filter: StreamFilter;
  sink: FeedSink;
  serialize(event: BusbarEvent): string;
  /** Turns an event into this feed's frame (the SSE message, or a WebSocket frame naming the subscription). */
  encode(frames: EventFrames): Buffer;
  /** Past this many queued bytes the connection is cut off. */
  sendBufferBytes: number;
  /** Where a failed catch-up read goes; the feed then cuts its connection off so the client resumes. */
  onError(error: unknown): void;
  /** Events read per catch-up page. Default 256. */
  pageSize?: number;
}

/**
 * One subscription's flow of events: it catches up from its start by reading
 * the log itself, then joins the live hub in the same tick in which it sees
 * it has reached the hub's position. Anything at or below what it already
 * sent is skipped, so the switch-over has no gap and no duplicate.
 *
 * @example
 * ```ts
 * const feed = new SubscriptionFeed({ hub, log, filter, sink, serialize, encode: (frames) => frames.sse, sendBufferBytes, onError });
 * feed.start({ after: 41 }); // 41: events 42, 43… follow
 * ```
 */
export class SubscriptionFeed implements HubListener {
  readonly filter: StreamFilter;
  private readonly options: FeedOptions;
  /** The last position this feed has sent or passed over. */
  private last = 0;
  private stopped = false;
  private readonly stopping: Promise<void>;
  private resolveStopping!: () => void;

  constructor(options: FeedOptions) {
    this.options = options;
    this.filter = options.filter;
    this.stopping = new Promise((resolve) => (this.resolveStopping = resolve));
  }

  /**
   * Starts the feed and returns the position it starts after: the hub's
   * position for `end`, else the given one. Events follow asynchronously.
   */
  start(start: StartPosition): number {
    const { hub } = this.options;
    if (start === 'end' || start.after >= hub.position) {
      this.last = start === 'end' ? hub.position : start.after;
      hub.attach(this);
      return this.last;
    }
    this.last = start.after;
    void this.catchUp();
    return this.last;
  }

  /** Stops sending; safe to call more than once. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.options.hub.detach(this);
    this.resolveStopping();
  }

  deliver(frames: EventFrames): void {
    if (frames.position <= this.last || this.stopped) return;
    this.last = frames.position;
    this.options.sink.write(this.options.encode(frames));
    checkSoon(this);
  }

  /** Cuts the connection off if more than the cap is still waiting to be sent. */
  checkSendBuffer(): void {
    if (this.stopped || this.options.sink.buffered <= this.options.sendBufferBytes) return;
    this.stop();
    this.options.sink.cutOff();
  }

  private async catchUp(): Promise<void> {
    const { hub, log, filter, sink, encode } = this.options;
    const pageSize = this.options.pageSize ?? 256;
    // Catching up is pulled, not pushed: rather than cut a client off, wait
    // for its socket to take what was sent once half the cap is queued.
    const pauseAbove = this.options.sendBufferBytes / 2;
    try {
      while (!this.stopped) {
        // No await between this comparison and attach: the hub cannot move
        // in between, so everything after `last` reaches this feed once.
        if (this.last >= hub.position) {
          hub.attach(this);
          return;
        }
        const page = await log.readAll({ after: this.last, limit: pageSize, topics: filter.topics });
        if (this.stopped) return;
        let pending: Buffer | undefined;
        for (const logged of page.events) {
          if (logged.position <= this.last) continue;
          this.last = logged.position;
          if (!filter.matches(logged.event)) continue; // addressed by name, or another subject
          const frames = new EventFrames(logged, this.options.serialize);
          if (frames.expired) continue;
          if (pending !== undefined) sink.write(pending);
          pending = encode(frames);
        }
        if (pending !== undefined) {
          if (sink.buffered + pending.length <= pauseAbove) sink.write(pending);
          else {
            const last = pending;
            await Promise.race([new Promise<void>((resolve) => sink.write(last, resolve)), this.stopping]);
          }
        }
        if (page.last > this.last) this.last = page.last;
        else if (page.events.length === 0) {
          // The store has nothing past `last` though the hub is further on
          // (retention removed it): join the hub rather than spin.
          if (!this.stopped) hub.attach(this);
          return;
        }
      }
    } catch (error) {
      if (this.stopped) return;
      this.stop();
      this.options.onError(error);
      sink.cutOff();
    }
  }
}

// The send buffer is judged once per turn of the event loop, not after each
// write: Node corks an HTTP response's socket until the next tick, so during
// one fan-out even a fast client looks full. By the check the OS has taken
// what it can and what remains is truly unsent; in between a connection can
// queue at most what one hub page adds. One batch for all feeds, one timer.
const feedsToCheck = new Set<SubscriptionFeed>();
let checkScheduled = false;

function checkSoon(feed: SubscriptionFeed): void {
  feedsToCheck.add(feed);
  if (checkScheduled) return;
  checkScheduled = true;
  setImmediate(checkSendBuffers);
}

function checkSendBuffers(): void {
  checkScheduled = false;
  for (const feed of feedsToCheck) feed.checkSendBuffer();
  feedsToCheck.clear();
}
