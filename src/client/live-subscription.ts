import { BusbarError } from '../core/errors.ts';
import { backoffDelay } from './backoff.ts';
import type { Connect, Connection, ConnectionSink, ConnectionStart } from './connection.ts';
import type { LiveHandler, LiveOptions, LiveSubscription, ReconnectOptions, StartFrom, StateChange, SubscriptionState } from './live-options.ts';
import type { ReceivedEvent } from './wire-types.ts';

const DEFAULT_RECONNECT = { initialDelayMs: 250, maxDelayMs: 10_000, maxAttempts: Number.POSITIVE_INFINITY };

/**
 * Runs a live subscription over `connect` (a WebSocket or SSE transport):
 * reconnects with backoff and jitter, resumes after the last event received
 * (buffered events are kept, so nothing repeats and nothing is skipped),
 * hands events to the handler one at a time in order, and bounds what it
 * buffers: a handler that falls `bufferSize` behind pauses the connection
 * (an SSE stream stops being read; a WebSocket, which cannot push back in
 * browsers, is closed and opened again once the handler catches up).
 *
 * @example
 * ```ts
 * const live = startLiveSubscription(wsConnector(…), (event) => console.log(event.sequence), { from: 'beginning' });
 * await live.ready;
 * ```
 */
export function startLiveSubscription(connect: Connect, handler: LiveHandler, options: LiveOptions = {}): LiveSubscription {
  return new Subscription(connect, handler, options);
}

interface Queued {
  readonly position: number;
  readonly event: ReceivedEvent;
}

class Subscription implements LiveSubscription {
  readonly ready: Promise<void>;
  readonly closed: Promise<void>;
  private readonly connect: Connect;
  private readonly handler: LiveHandler;
  private readonly options: LiveOptions;
  private readonly bufferSize: number;
  private readonly reconnect: Required<ReconnectOptions>;
  private current: SubscriptionState = 'connecting';
  private connection: Connection | undefined;
  /** Bumped whenever a connection is given up, so its late calls are ignored. */
  private generation = 0;
  /** The last position taken into the queue (or the start): connections resume after it. */
  private received: number | undefined;
  private handled: number | undefined;
  private queue: Queued[] = [];
  private queueHead = 0;
  /** True while a drain loop runs (it may finish synchronously, before `draining` is even assigned). */
  private handing = false;
  /** The latest drain loop, which `close()` waits for. */
  private draining: Promise<void> | undefined;
  private failures = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private heard = true;
  private pinged = false;
  private settleReady!: (error?: unknown) => void;
  private settleClosed!: (error?: unknown) => void;
  private readonly onAbort = (): void => void this.close();

  constructor(connect: Connect, handler: LiveHandler, options: LiveOptions) {
    this.connect = connect;
    this.handler = handler;
    this.options = options;
    this.bufferSize = positiveInteger('bufferSize', options.bufferSize ?? 1000);
    this.reconnect = { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.ready = new Promise((resolve, reject) => (this.settleReady = (error) => (error === undefined ? resolve() : reject(error))));
    this.closed = new Promise((resolve, reject) => (this.settleClosed = (error) => (error === undefined ? resolve() : reject(error))));
    // Marked handled: a caller who never awaits them must not crash the process.
    this.ready.catch(() => {});
    this.closed.catch(() => {});
    this.received = startAfter(options.from);
    this.handled = this.received;
    const heartbeatMs = positiveInteger('heartbeatMs', options.heartbeatMs ?? 30_000);
    this.heartbeat = setInterval(() => this.checkPulse(), heartbeatMs);
    if (options.signal?.aborted) {
      void this.close();
      return;
    }
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.open();
  }

  get state(): SubscriptionState {
    return this.current;
  }

  get position(): number | undefined {
    return this.handled;
  }

  private get isClosed(): boolean {
    return this.current === 'closed';
  }

  async close(): Promise<void> {
    this.shut(undefined);
    await this.draining;
  }

  private open(): void {
    const generation = ++this.generation;
    this.heard = true;
    this.pinged = false;
    const start: ConnectionStart = this.received === undefined ? 'end' : { after: this.received };
    const live = (): boolean => generation === this.generation;
    const sink: ConnectionSink = {
      opened: (after) => {
        if (!live()) return;
        this.failures = 0;
        this.received ??= after;
        this.handled ??= after;
        this.become({ state: 'open' });
        this.settleReady();
      },
      event: (position, event) => {
        if (live()) this.take(position, event);
      },
      alive: () => {
        if (live()) this.heard = true;
      },
      ended: (error, fatal) => {
        if (!live()) return;
        this.generation++;
        this.connection = undefined;
        if (fatal) this.shut(error);
        else this.retry(error);
      },
    };
    let connection: Connection;
    try {
      connection = this.connect(start, sink);
    } catch (error) {
      this.shut(error);
      return;
    }
    if (live()) this.connection = connection;
    else connection.close();
  }

  private take(position: number, event: ReceivedEvent): void {
    // A transport never repeats itself, but a duplicate must not reach the handler whatever happens.
    if (this.received !== undefined && position <= this.received) return;
    this.received = position;
    this.queue.push({ position, event });
    if (this.queue.length - this.queueHead >= this.bufferSize && this.current === 'open') this.pauseConnection();
    if (!this.handing) this.draining = this.drain();
  }

  private pauseConnection(): void {
    if (this.connection?.pause !== undefined) {
      this.connection.pause();
    } else {
      this.generation++;
      this.connection?.close();
      this.connection = undefined;
    }
    this.become({ state: 'paused' });
  }

  /** The handler caught up: read on, or open a new connection after the last event received. */
  private resumeConnection(): void {
    if (this.connection?.resume !== undefined) {
      // The silence while paused was ours, not the link's.
      this.heard = true;
      this.pinged = false;
      this.connection.resume();
      this.become({ state: 'open' });
    } else {
      this.become({ state: 'connecting' });
      this.open();
    }
  }

  private async drain(): Promise<void> {
    this.handing = true;
    try {
      while (this.queueHead < this.queue.length && this.current !== 'closed') {
        const { position, event } = this.queue[this.queueHead]!;
        this.queue[this.queueHead++] = undefined as unknown as Queued; // let it be collected
        try {
          const result = this.handler(event);
          // Only real promises are awaited: a synchronous handler costs no extra turn per event.
          if (isThenable(result)) await result;
        } catch (error) {
          this.shut(error);
          return;
        }
        this.handled = position;
        // The handler (or anyone while it ran) may have closed the subscription.
        if (this.isClosed) return;
        if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.queueHead);
          this.queueHead = 0;
        }
        if (this.current === 'paused' && this.queue.length - this.queueHead <= this.bufferSize / 2) this.resumeConnection();
      }
    } finally {
      this.handing = false;
    }
  }

  private retry(error: unknown): void {
    if (this.current === 'closed') return;
    if (this.failures >= this.reconnect.maxAttempts) {
      this.shut(error);
      return;
    }
    const delayMs = Math.round(backoffDelay(this.failures++, this.reconnect));
    this.become({ state: 'reconnecting', error, attempt: this.failures, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.current !== 'reconnecting') return;
      this.become({ state: 'connecting' });
      this.open();
    }, delayMs);
  }

  /** Two silent intervals in a row: the link is dead, even if no close ever arrives. */
  private checkPulse(): void {
    if (this.connection === undefined || (this.current !== 'open' && this.current !== 'connecting')) return;
    if (this.heard) {
      this.heard = false;
      this.pinged = false;
    } else if (!this.pinged) {
      this.pinged = true;
      this.connection.ping?.();
    } else {
      const connection = this.connection;
      this.generation++;
      this.connection = undefined;
      connection.close();
      this.retry(new BusbarError('BUSBAR_ERR_UNREACHABLE', 'the connection went silent: no event, heartbeat or pong for two heartbeat intervals'));
    }
  }

  private shut(error: unknown): void {
    if (this.current === 'closed') return;
    this.generation++;
    this.connection?.close();
    this.connection = undefined;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.queue = [];
    this.queueHead = 0;
    this.become(error === undefined ? { state: 'closed' } : { state: 'closed', error });
    this.settleReady(error ?? new BusbarError('BUSBAR_ERR_CLOSED', 'the subscription was closed before it opened'));
    this.settleClosed(error);
  }

  private become(change: StateChange): void {
    this.current = change.state;
    try {
      this.options.onStateChange?.(change);
    } catch {
      // A listener's failure is its own; the subscription carries on.
    }
  }
}

/** The position a start resumes after, or undefined for `end` (the server says where that is). */
function startAfter(from: StartFrom | undefined): number | undefined {
  if (from === undefined || from === 'end') return undefined;
  if (from === 'beginning') return 0;
  if (isPosition(from)) return Math.max(from - 1, 0);
  if (typeof from === 'object' && from !== null && isPosition((from as { after?: unknown }).after)) return from.after;
  throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `"from" must be 'end', 'beginning', a position or { after: position }, got ${JSON.stringify(from)}`);
}

function isPosition(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `option "${name}" must be an integer ≥ 1, got ${String(value)}`);
  }
  return value;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
