import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { BusbarError } from '../../core/errors.ts';
import type { StreamingConnection } from './connection-registry.ts';
import { checkStart, sseStart } from './start-position.ts';
import { streamFilter, topicsFromQuery } from './stream-filter.ts';
import { singleParameter, type StreamingRuntime } from './streaming-runtime.ts';
import { type FeedSink, SubscriptionFeed } from './subscription-feed.ts';

/** The path of the Server-Sent Events endpoint. */
export const SSE_PATH = '/v1/stream';
/** How long an EventSource waits before reconnecting, ms (the `retry:` field). */
export const SSE_RETRY_MS = 1000;

const HEARTBEAT = Buffer.from(': heartbeat\n\n');

/**
 * Registers `GET /v1/stream`: Server-Sent Events of the log, filtered by
 * `topics` and `subject`, starting at `from` or resuming after
 * `Last-Event-ID`. Every check (credentials, patterns, rights, start) runs
 * before the first byte, so a bad request gets a JSON error with its status
 * instead of a broken stream. The wire format is in `docs/protocol.md`.
 *
 * @example
 * ```ts
 * registerSse(app, { context, hub, registry });
 * // curl -N 'http://127.0.0.1:2872/v1/stream?topics=order.*&from=beginning'
 * ```
 */
export function registerSse(app: FastifyInstance, runtime: StreamingRuntime): void {
  const { context, hub, registry } = runtime;
  // No HEAD twin: a HEAD request would open a stream that never sends a body.
  app.get(SSE_PATH, { exposeHeadRoute: false }, async (request, reply) => {
    let feed: SubscriptionFeed;
    let start;
    const response = reply.raw;
    try {
      if (registry.isClosing) throw new BusbarError('BUSBAR_ERR_CLOSED', 'the server is shutting down');
      const query = (request.query ?? {}) as Record<string, unknown>;
      const principal = context.authenticate(request.headers.authorization, singleParameter('token', query.token));
      const filter = streamFilter(topicsFromQuery(query.topics), singleParameter('subject', query.subject), principal);
      start = sseStart(
        request.headers['last-event-id'],
        singleParameter('lastEventId', query.lastEventId),
        singleParameter('from', query.from),
      );
      await checkStart(start, context.store);
      const connection = new SseConnection(response, context.limits.sendBufferBytes);
      feed = new SubscriptionFeed({
        hub,
        log: context.store,
        filter,
        sink: connection,
        serialize: (event) => context.serialize(event),
        encode: (frames) => frames.sse,
        sendBufferBytes: context.limits.sendBufferBytes,
        onError: (error) => request.log.error({ err: error }, 'SSE catch-up read failed'),
      });
      void connection.closed.then(() => feed.stop());
      registry.add(connection);
    } catch (error) {
      if (!(error instanceof BusbarError)) throw error;
      return reply.code(error.status).send({ error: error.toJSON() });
    }
    reply.hijack();
    // Keep what hooks set (CORS, request ids): a hijacked reply skips onSend.
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) response.setHeader(name, value);
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // Proxies such as nginx would otherwise hold events back in a buffer.
      'x-accel-buffering': 'no',
    });
    response.write(`retry: ${SSE_RETRY_MS}\n\n`);
    feed.start(start);
  });
}

/** One SSE response as a feed's sink and a registry's connection. */
class SseConnection implements FeedSink, StreamingConnection {
  readonly closed: Promise<void>;
  private readonly response: ServerResponse;
  private readonly sendBufferBytes: number;

  constructor(response: ServerResponse, sendBufferBytes: number) {
    this.response = response;
    this.sendBufferBytes = sendBufferBytes;
    this.closed = new Promise((resolve) => response.once('close', () => resolve()));
  }

  write(chunk: Buffer, flushed?: () => void): void {
    if (this.response.destroyed) {
      flushed?.();
      return;
    }
    this.response.write(chunk, flushed === undefined ? undefined : () => flushed());
  }

  get buffered(): number {
    return this.response.writableLength;
  }

  cutOff(): void {
    // Not end(): a client that does not read would never take the rest, so
    // the response could never finish. The browser reconnects and resumes.
    this.response.destroy();
  }

  heartbeat(): void {
    if (this.response.writableLength > this.sendBufferBytes) this.cutOff();
    else this.response.write(HEARTBEAT);
  }

  goAway(): void {
    this.response.end();
  }

  terminate(): void {
    this.response.destroy();
  }
}
