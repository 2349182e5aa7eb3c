// The contract between a live subscription (reconnects, ordering, buffer)
// and a transport (WebSocket or Server-Sent Events) that opens one
// connection at a time for it.
import type { BusbarError } from '../core/errors.ts';
import type { ReceivedEvent } from './wire-types.ts';

/** Where one connection starts: the end of the log (new events only), or after a position. */
export type ConnectionStart = 'end' | { readonly after: number };

/** How a connection reports to its subscription. Calls after `ended` are not made. */
export interface ConnectionSink {
  /** The server accepted the subscription; its events are those after `after`. */
  opened(after: number): void;
  /** One event, in log order. */
  event(position: number, event: ReceivedEvent): void;
  /** Something arrived (a heartbeat, a pong): the link is alive. */
  alive(): void;
  /** The connection is over; `fatal` when trying again cannot help (a refused key, a bad pattern). */
  ended(error: BusbarError, fatal: boolean): void;
}

/** One open connection, as the subscription controls it. */
export interface Connection {
  /** Closes it on purpose: its sink hears nothing more. */
  close(): void;
  /** Asks the server for a sign of life, where the transport can. */
  ping?(): void;
  /**
   * Stops reading until `resume()`, where the transport can push back (a
   * fetch stream can; a WebSocket cannot, so it is closed instead). Events
   * already read still arrive.
   */
  pause?(): void;
  resume?(): void;
}

/** Opens one connection; it must not call the sink before returning. */
export type Connect = (start: ConnectionStart, sink: ConnectionSink) => Connection;
