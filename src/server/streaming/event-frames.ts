import type { BusbarEvent } from '../../core/event.ts';
import type { LoggedEvent } from '../../core/event-log.ts';

/**
 * One logged event as the streaming endpoints put it on the wire. The
 * CloudEvent JSON and each encoding are made on first use and then shared by
 * every connection the event goes to: fan-out to a thousand clients
 * serialises and encodes it once, not a thousand times.
 */
export class EventFrames {
  readonly position: number;
  readonly logged: LoggedEvent;
  private readonly serialize: (event: BusbarEvent) => string;
  private json: string | undefined;
  private sseFrame: Buffer | undefined;
  private wsTail: Buffer | undefined;
  private wsFrames: Map<string, Buffer> | undefined;

  constructor(logged: LoggedEvent, serialize: (event: BusbarEvent) => string) {
    this.logged = logged;
    this.position = logged.position;
    this.serialize = serialize;
  }

  /** The CloudEvent, one line of JSON. */
  get cloudEvent(): string {
    return (this.json ??= this.serialize(this.logged.event));
  }

  /** The whole SSE message: `id:` position, `event:` topic, `data:` CloudEvent, blank line. */
  get sse(): Buffer {
    return (this.sseFrame ??= Buffer.from(
      `id: ${this.position}\nevent: ${this.logged.event.type}\ndata: ${this.cloudEvent}\n\n`,
    ));
  }

  /**
   * The end of a WebSocket `event` frame, after its subscription id; a
   * subscription prepends its own `{"op":"event","sub":"…"` (see
   * {@link wsEventPrefix}).
   */
  get wsEventTail(): Buffer {
    return (this.wsTail ??= Buffer.from(`,"position":${this.position},"event":${this.cloudEvent}}`));
  }

  /**
   * The whole WebSocket `event` frame for subscription `id` (whose frames
   * start with `prefix`). Clients tend to pick the same few ids (`default`,
   * `s1`), so frames for up to {@link SHARED_WS_FRAMES} ids are kept and
   * shared: a thousand sockets then send one buffer instead of copying a
   * thousand.
   */
  wsEvent(id: string, prefix: Buffer): Buffer {
    const shared = this.wsFrames?.get(id);
    if (shared !== undefined) return shared;
    const frame = Buffer.concat([prefix, this.wsEventTail]);
    this.wsFrames ??= new Map();
    if (this.wsFrames.size < SHARED_WS_FRAMES) this.wsFrames.set(id, frame);
    return frame;
  }

  /** True when the event carries an `expirytime` that has passed: it is not delivered. */
  get expired(): boolean {
    const expiry = this.logged.event.expirytime;
    return expiry !== undefined && Date.parse(expiry) <= Date.now();
  }
}

/** How many distinct subscription ids' frames one event keeps for sharing. */
export const SHARED_WS_FRAMES = 16;

/** The start of every `event` frame of one WebSocket subscription. */
export function wsEventPrefix(subscription: string): Buffer {
  return Buffer.from(`{"op":"event","sub":${JSON.stringify(subscription)}`);
}
