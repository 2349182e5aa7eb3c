import { BusbarError } from '../core/errors.ts';
import type { Connect, ConnectionStart } from './connection.ts';
import type { HttpTransport } from './http-transport.ts';
import { errorFromReply } from './remote-error.ts';

/** The constructor of a standard (WHATWG) WebSocket: the browser's, Node's global, or a compatible one. */
export type WebSocketConstructor = new (url: string | URL, protocols?: string | string[]) => WebSocket;

/** What a WebSocket subscription asks the server for. */
export interface WsSubscriptionSpec {
  readonly topics: readonly string[];
  readonly subject: string | undefined;
}

/** The id of the one subscription each socket carries. */
const SUBSCRIPTION_ID = 's';
const OPEN = 1;

/** Close codes after which connecting again cannot help (docs/protocol.md). */
const FATAL_CLOSE_CODES: ReadonlyMap<number, string> = new Map([
  [1002, 'protocol error'],
  [1003, 'unsupported data'],
  [1007, 'invalid data'],
  [1008, 'policy violation'],
  [1009, 'message too large'],
]);

/** Error codes of a refused subscribe that a later attempt may not get. */
const PASSING_CODES: ReadonlySet<string> = new Set([
  'BUSBAR_ERR_CLOSED',
  'BUSBAR_ERR_STORE_UNAVAILABLE',
  'BUSBAR_ERR_INTERNAL',
  'BUSBAR_ERR_OVERLOAD',
  'BUSBAR_ERR_RATE_LIMITED',
]);

/**
 * Opens WebSocket connections to `/v1/ws` for one subscription: subscribes
 * on open, passes `subscribed` and `event` frames on, and reports how each
 * connection ended. The API key travels as `?token=`, since the standard
 * WebSocket API cannot set headers.
 *
 * @example
 * ```ts
 * const connect = wsConnector(http, globalThis.WebSocket, { topics: ['order.*'], subject: undefined });
 * startLiveSubscription(connect, handler, { from: 'beginning' });
 * ```
 */
export function wsConnector(http: HttpTransport, WebSocketClass: WebSocketConstructor, spec: WsSubscriptionSpec): Connect {
  const url = new URL(`${http.baseUrl.replace(/^http/, 'ws')}/v1/ws`);
  if (http.apiKey !== undefined) url.searchParams.set('token', http.apiKey);
  const href = url.href;
  const subscribe = (start: ConnectionStart): string =>
    JSON.stringify({ op: 'subscribe', id: SUBSCRIPTION_ID, topics: spec.topics, subject: spec.subject, from: start });
  const decoder = new TextDecoder();

  return (start, sink) => {
    let over = false;
    const end = (error: BusbarError, fatal: boolean): void => {
      if (over) return;
      over = true;
      sink.ended(error, fatal);
    };
    let socket: WebSocket;
    try {
      socket = new WebSocketClass(href);
    } catch (error) {
      queueMicrotask(() => end(new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `cannot open a WebSocket to ${http.baseUrl}: ${(error as Error).message}`, { cause: error }), true));
      return { close() {} };
    }
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => socket.send(subscribe(start));
    socket.onmessage = (message: MessageEvent) => {
      if (over) return;
      let frame: Record<string, any>;
      try {
        frame = JSON.parse(typeof message.data === 'string' ? message.data : decoder.decode(message.data as ArrayBuffer));
      } catch (error) {
        end(new BusbarError('BUSBAR_ERR_INTERNAL', 'the server sent a WebSocket message that is not JSON', { cause: error }), false);
        socket.close();
        return;
      }
      switch (frame.op) {
        case 'event':
          if (frame.sub === SUBSCRIPTION_ID) sink.event(frame.position, frame.event);
          return;
        case 'subscribed':
          sink.alive();
          if (frame.id === SUBSCRIPTION_ID) sink.opened(frame.position);
          return;
        case 'error': {
          sink.alive();
          if (frame.id !== SUBSCRIPTION_ID) return; // a ping's or another message's: not ours to act on
          const error = errorFromReply(0, frame);
          end(error, !PASSING_CODES.has(error.code));
          socket.close();
          return;
        }
        default:
          sink.alive();
      }
    };
    socket.onclose = (event: CloseEvent) => end(closeError(event, http.baseUrl), event.code === 4001 || FATAL_CLOSE_CODES.has(event.code));
    // Every error is followed by a close event, which says more.
    socket.onerror = () => {};
    return {
      close() {
        over = true;
        try {
          socket.close(1000);
        } catch {
          // already closing
        }
      },
      ping() {
        if (socket.readyState === OPEN) socket.send('{"op":"ping"}');
      },
    };
  };
}

function closeError(event: CloseEvent, baseUrl: string): BusbarError {
  const reason = event.reason === '' ? (FATAL_CLOSE_CODES.get(event.code) ?? 'no reason given') : event.reason;
  if (event.code === 4001) {
    return new BusbarError('BUSBAR_ERR_UNAUTHORIZED', 'the server refused the API key (WebSocket close 4001)', { details: { closeCode: 4001 } });
  }
  if (event.code === 1006) {
    return new BusbarError('BUSBAR_ERR_UNREACHABLE', `the WebSocket to ${baseUrl} failed or dropped (1006)`, { details: { closeCode: 1006 } });
  }
  return new BusbarError('BUSBAR_ERR_UNREACHABLE', `the server closed the WebSocket: ${event.code} ${reason}`, { details: { closeCode: event.code, reason } });
}
