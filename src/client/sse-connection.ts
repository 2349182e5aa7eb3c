import { BusbarError } from '../core/errors.ts';
import type { Connect, ConnectionSink, ConnectionStart } from './connection.ts';
import { EventStreamParser } from './event-stream-parser.ts';
import type { HttpTransport } from './http-transport.ts';
import { errorFromReply, unreachable } from './remote-error.ts';
import type { EventPage, ReceivedEvent } from './wire-types.ts';

/** What a Server-Sent Events subscription asks the server for. */
export interface SseSubscriptionSpec {
  readonly topics: readonly string[];
  readonly subject: string | undefined;
}

/**
 * Opens Server-Sent Events connections to `/v1/stream` with `fetch`, whose
 * streamed body also carries the API key as a header (an `EventSource`
 * cannot). Each connection resumes with `lastEventId`; a start at the end
 * of the log first asks for the log's head, so a reconnect before the first
 * event still resumes from there and misses nothing.
 *
 * @example
 * ```ts
 * const connect = sseConnector(http, { topics: ['order.*'], subject: undefined });
 * startLiveSubscription(connect, handler, { from: 'end' });
 * ```
 */
export function sseConnector(http: HttpTransport, spec: SseSubscriptionSpec): Connect {
  const topics = spec.topics.join(',');
  return (start, sink) => {
    const controller = new AbortController();
    const gate = new ReadGate();
    void stream(http, { topics, subject: spec.subject }, start, sink, controller.signal, gate);
    return {
      close: () => {
        controller.abort();
        gate.open();
      },
      pause: () => gate.close(),
      resume: () => gate.open(),
    };
  };
}

/** Holds the read loop while the subscription's handler catches up: TCP pushes back on the server. */
class ReadGate {
  private waiting: Promise<void> | undefined;
  private release: (() => void) | undefined;

  close(): void {
    this.waiting ??= new Promise((resolve) => (this.release = resolve));
  }

  open(): void {
    this.release?.();
    this.waiting = undefined;
    this.release = undefined;
  }

  /** Resolves at once when open. */
  passed(): Promise<void> | undefined {
    return this.waiting;
  }
}

async function stream(
  http: HttpTransport,
  filter: { topics: string; subject: string | undefined },
  start: ConnectionStart,
  sink: ConnectionSink,
  signal: AbortSignal,
  gate: ReadGate,
): Promise<void> {
  // Nothing reaches the sink once the subscription closed this connection.
  const ended = (error: BusbarError, fatal: boolean): void => {
    if (!signal.aborted) sink.ended(error, fatal);
  };
  let after: number;
  let response: Response;
  try {
    after = start === 'end' ? await headOf(http, filter) : start.after;
    if (signal.aborted) return;
    response = await http.fetch(http.urlOf('/v1/stream', { ...filter, lastEventId: after }), {
      headers: http.headers({ accept: 'text/event-stream' }),
      signal,
    });
  } catch (error) {
    if (error instanceof BusbarError) ended(error, isFatal(error.status));
    else ended(unreachable(http.baseUrl, error), false);
    return;
  }
  if (response.status !== 200 || response.body === null) {
    const body = await response.json().catch(() => undefined);
    ended(errorFromReply(response.status, body), isFatal(response.status));
    return;
  }
  if (signal.aborted) return;
  sink.opened(after);
  const parser = new EventStreamParser(
    (message) => {
      if (signal.aborted || message.id === undefined) return;
      sink.event(Number(message.id), JSON.parse(message.data) as ReceivedEvent);
    },
    () => sink.alive(),
  );
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  try {
    for (;;) {
      const closed = gate.passed();
      if (closed !== undefined) await closed;
      if (signal.aborted) return;
      const { done, value } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    ended(new BusbarError('BUSBAR_ERR_UNREACHABLE', 'the server ended the event stream (shutting down?)'), false);
  } catch (error) {
    ended(unreachable(http.baseUrl, error), false);
  } finally {
    if (signal.aborted) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** The log's head, read with the subscription's own filter (so with the same rights). */
async function headOf(http: HttpTransport, filter: { topics: string; subject: string | undefined }): Promise<number> {
  const page = await http.call<EventPage>('GET', '/v1/events', { query: { after: 0, limit: 1, ...filter }, idempotent: true });
  return page.head;
}

/** A refusal that will not change by asking again: bad input, a refused key. */
function isFatal(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}
