import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { BusbarError, toError } from '../../core/errors.ts';
import type { Principal } from '../context.ts';
import type { StreamingConnection } from './connection-registry.ts';
import { wsEventPrefix } from './event-frames.ts';
import { checkStart, wsStart } from './start-position.ts';
import { streamFilter } from './stream-filter.ts';
import type { StreamingRuntime } from './streaming-runtime.ts';
import { type FeedSink, SubscriptionFeed } from './subscription-feed.ts';
import {
  ackFrame,
  type ClientMessage,
  errorFrame,
  type MessageNames,
  pongFrame,
  readClientMessage,
  subscribedFrame,
  unsubscribedFrame,
} from './ws-messages.ts';

/** WebSocket close codes Busbar uses besides the standard ones (`docs/protocol.md`). */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_INTERNAL_ERROR = 1011;
export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_SLOW_CONSUMER = 4008;

/** How long a cut-off slow consumer has to read up to its close frame before its socket is destroyed. */
const SLOW_CONSUMER_GRACE_MS = 2_000;

/** Subscriptions one socket may hold at once. */
export const MAX_SUBSCRIPTIONS = 256;
/** Publishes awaiting their commit before the socket stops reading (TCP backpressure, not an error). */
const MAX_PENDING_PUBLISHES = 64;

const SEND_TEXT = { binary: false } as const;

/**
 * One WebSocket client speaking the Busbar protocol: its subscriptions (each
 * a feed from the live hub, all sharing the socket's send buffer),
 * publishes, pings and errors. Bad input gets an `error` frame and the
 * socket stays open; only a slow consumer (4008), a shutdown (1001) or a
 * peer that stopped answering pings loses the connection.
 *
 * @example
 * ```ts
 * registry.add(new WsSession(socket, principal, runtime));
 * ```
 */
export class WsSession implements StreamingConnection, FeedSink {
  readonly closed: Promise<void>;
  private readonly socket: WebSocket;
  private readonly principal: Principal;
  private readonly runtime: StreamingRuntime;
  private readonly subscriptions = new Map<string, SubscriptionFeed | object>();
  private pendingPublishes = 0;
  private alive = true;
  private ended = false;
  private corked = false;
  private checkScheduled = false;

  constructor(socket: WebSocket, principal: Principal, runtime: StreamingRuntime) {
    this.socket = socket;
    this.principal = principal;
    this.runtime = runtime;
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.stopFeeds();
        resolve();
      }),
    );
    socket.on('pong', () => (this.alive = true));
    // Text or binary alike: a frame is UTF-8 JSON (binaryType is nodebuffer).
    socket.on('message', (data) => {
      this.alive = true;
      this.receive((data as Buffer).toString('utf8'));
    });
  }

  /** How many subscriptions this socket holds. */
  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Handles a message as if the client had sent it (the `?topics=` subscription made on connect). */
  receiveMessage(message: ClientMessage): void {
    void this.handle(message, message.op === 'subscribe' ? { id: message.id } : {});
  }

  // --- FeedSink: what every subscription of this socket writes to ---

  write(chunk: Buffer, flushed?: () => void): void {
    this.corkUntilNextTick();
    this.socket.send(chunk, SEND_TEXT, flushed === undefined ? undefined : () => flushed());
  }

  /**
   * Holds this turn's frames in one write: the hub hands out a page of
   * events at once, and one writev per client per page instead of one per
   * event is most of what fan-out costs. Node does the same for HTTP
   * responses (so SSE gets it for free); ws does not, hence its socket.
   */
  private corkUntilNextTick(): void {
    if (this.corked) return;
    const raw = (this.socket as unknown as { _socket?: Socket })._socket;
    if (raw === undefined || typeof raw.cork !== 'function') return;
    this.corked = true;
    raw.cork();
    process.nextTick(() => {
      this.corked = false;
      raw.uncork();
    });
  }

  get buffered(): number {
    return this.socket.bufferedAmount;
  }

  cutOff(): void {
    if (this.ended) return;
    this.ended = true;
    this.stopFeeds();
    // The close frame queues behind what the client has not read, so a
    // client that reads nothing may never see it: the socket and the data
    // queued for it are dropped after a short grace either way.
    this.socket.close(CLOSE_SLOW_CONSUMER, 'slow consumer');
    setTimeout(() => this.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
  }

  // --- StreamingConnection ---

  heartbeat(): void {
    if (!this.alive) {
      this.terminate();
      return;
    }
    this.alive = false;
    this.socket.ping();
  }

  goAway(): void {
    this.ended = true;
    this.stopFeeds();
    this.socket.close(CLOSE_GOING_AWAY, 'server shutting down');
  }

  terminate(): void {
    this.socket.terminate();
  }

  // --- the protocol ---

  private receive(text: string): void {
    if (this.ended) return;
    const names: MessageNames = {};
    let message: ClientMessage;
    try {
      message = readClientMessage(text, names);
    } catch (error) {
      this.sendError(error, names);
      return;
    }
    void this.handle(message, names);
  }

  private async handle(message: ClientMessage, names: MessageNames): Promise<void> {
    try {
      switch (message.op) {
        case 'subscribe':
          return await this.subscribe(message);
        case 'unsubscribe':
          return this.unsubscribe(message.id);
        case 'publish':
          return await this.publish(message.ref, message.events);
        case 'ping':
          return this.sendControl(pongFrame(message.ref));
      }
    } catch (error) {
      this.sendError(error, names);
    }
  }

  private async subscribe(message: Extract<ClientMessage, { op: 'subscribe' }>): Promise<void> {
    const { context, hub } = this.runtime;
    if (this.subscriptions.has(message.id)) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `subscription "${message.id}" already exists`);
    }
    if (this.subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `at most ${MAX_SUBSCRIPTIONS} subscriptions per socket`);
    }
    const filter = streamFilter(message.topics, message.subject, this.principal);
    const start = wsStart(message.from);
    // Hold the id while the start is checked, so a second subscribe with it
    // fails and an unsubscribe in the meantime cancels this one.
    const reservation = {};
    this.subscriptions.set(message.id, reservation);
    try {
      await checkStart(start, context.store);
    } catch (error) {
      if (this.subscriptions.get(message.id) === reservation) this.subscriptions.delete(message.id);
      throw error;
    }
    if (this.ended || this.subscriptions.get(message.id) !== reservation) return;
    const prefix = wsEventPrefix(message.id);
    const feed = new SubscriptionFeed({
      hub,
      log: context.store,
      filter,
      sink: this,
      serialize: (event) => context.serialize(event),
      encode: (frames) => frames.wsEvent(message.id, prefix),
      sendBufferBytes: context.limits.sendBufferBytes,
      onError: (error) => context.log.error({ err: error }, 'WebSocket catch-up read failed'),
    });
    this.subscriptions.set(message.id, feed);
    // Neither branch of start() sends an event synchronously, so the
    // client always sees `subscribed` before the first event.
    const position = feed.start(start);
    this.sendControl(subscribedFrame(message.id, position));
  }

  private unsubscribe(id: string): void {
    const feed = this.subscriptions.get(id);
    if (feed === undefined) {
      throw new BusbarError('BUSBAR_ERR_NOT_FOUND', `no subscription "${id}" on this socket`);
    }
    this.subscriptions.delete(id);
    if (feed instanceof SubscriptionFeed) feed.stop();
    this.sendControl(unsubscribedFrame(id));
  }

  private async publish(ref: string | undefined, events: unknown[]): Promise<void> {
    if (++this.pendingPublishes === MAX_PENDING_PUBLISHES) this.socket.pause();
    try {
      const accepted = await this.runtime.context.publish(this.principal, events);
      this.sendControl(ackFrame(ref, accepted));
    } finally {
      if (this.pendingPublishes-- === MAX_PENDING_PUBLISHES) this.socket.resume();
    }
  }

  private sendError(error: unknown, names: MessageNames): void {
    const failure = error instanceof BusbarError ? error : internal(error);
    if (!(error instanceof BusbarError)) {
      this.runtime.context.log.error({ err: error }, 'WebSocket message failed');
    }
    this.sendControl(errorFrame(failure, names));
  }

  /** Answers count against the send buffer too: a client that never reads cannot grow it by asking. */
  private sendControl(frame: string): void {
    if (this.ended) return;
    this.corkUntilNextTick();
    this.socket.send(frame, SEND_TEXT);
    if (this.checkScheduled) return;
    // Judged once the corked turn is written out, like the feeds' events.
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      if (this.socket.bufferedAmount > this.runtime.context.limits.sendBufferBytes) this.cutOff();
    });
  }

  private stopFeeds(): void {
    for (const feed of this.subscriptions.values()) if (feed instanceof SubscriptionFeed) feed.stop();
    this.subscriptions.clear();
  }
}

function internal(error: unknown): BusbarError {
  // The details stay in the server's log, not on the wire.
  return new BusbarError('BUSBAR_ERR_INTERNAL', 'an internal error occurred; see the server log', {
    cause: toError(error),
  });
}
