import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { BusbarError } from '../../core/errors.ts';
import type { StreamingRuntime } from './streaming-runtime.ts';
import { CLOSE_INTERNAL_ERROR, CLOSE_UNAUTHORIZED, WsSession } from './ws-session.ts';

/** The path of the WebSocket endpoint. */
export const WS_PATH = '/v1/ws';
/** The subscription id of the one made from `?topics=` on connect. */
export const QUERY_SUBSCRIPTION_ID = 'default';

/**
 * Accepts WebSocket upgrades on `/v1/ws` straight from the HTTP server's
 * `upgrade` event (`ws` in noServer mode), not through a Fastify route: an
 * idle socket then holds just its `ws` state — no Fastify request, reply
 * and stand-in response kept alive for hours per client — and the handshake
 * answers before any HTTP hook could turn a missing key into a 401 that a
 * browser cannot read. Returns a function that stops accepting upgrades.
 *
 * @example
 * ```ts
 * const stop = acceptWebSockets(app, { context, hub, registry });
 * // new WebSocket('ws://127.0.0.1:2872/v1/ws?token=…')
 * ```
 */
export function acceptWebSockets(app: FastifyInstance, runtime: StreamingRuntime): () => void {
  const { context, registry } = runtime;
  const server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: context.limits.maxMessageBytes,
    // Compression costs a zlib context per socket and CPU per client per
    // message: fan-out to thousands would spend more there than on sending.
    perMessageDeflate: false,
    // How long a closing socket waits for the client's close frame (a slow
    // consumer's never comes) before it is destroyed. Not in @types/ws yet.
    closeTimeout: Math.max(1000, context.limits.heartbeatMs),
  } as ConstructorParameters<typeof WebSocketServer>[0]);

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== WS_PATH) {
      // Another listener may serve that path; alone, answer for Node, which
      // stops closing unhandled upgrades once anyone listens.
      if (app.server.listenerCount('upgrade') === 1) refuse(socket, 404, 'BUSBAR_ERR_NOT_FOUND', `no WebSocket endpoint at ${url.pathname}`);
      return;
    }
    if (registry.isClosing) {
      refuse(socket, 503, 'BUSBAR_ERR_CLOSED', 'the server is shutting down');
      return;
    }
    server.handleUpgrade(request, socket, head, (webSocket) => open(webSocket, request, url));
  };

  const open = (socket: WebSocket, request: IncomingMessage, url: URL): void => {
    socket.on('error', (error) => context.log.debug({ err: error }, 'WebSocket error'));
    let principal;
    try {
      principal = context.authenticate(request.headers.authorization, url.searchParams.get('token') ?? undefined);
    } catch (error) {
      // Browsers hide an HTTP status on a failed upgrade; a close code they can read.
      const unauthorized = error instanceof BusbarError && error.code === 'BUSBAR_ERR_UNAUTHORIZED';
      if (!unauthorized) context.log.error({ err: error }, 'WebSocket authentication failed');
      socket.close(unauthorized ? CLOSE_UNAUTHORIZED : CLOSE_INTERNAL_ERROR, unauthorized ? 'unauthorized' : 'internal error');
      return;
    }
    const session = new WsSession(socket, principal, runtime);
    registry.add(session);
    const topics = url.searchParams.getAll('topics');
    if (topics.length > 0 || url.searchParams.has('subject')) {
      session.receiveMessage({
        op: 'subscribe',
        id: QUERY_SUBSCRIPTION_ID,
        topics: topics.length === 0 ? ['>'] : topics.flatMap((list) => list.split(',')),
        subject: url.searchParams.get('subject') ?? undefined,
        from: queryStart(url.searchParams),
      });
    }
  };

  app.server.on('upgrade', onUpgrade);
  return () => {
    app.server.off('upgrade', onUpgrade);
  };
}

/**
 * `?after=N` or `?from=` as the subscribe op's `from`: digits are positions,
 * anything else passes through to be checked (and refused) like a message's.
 */
function queryStart(parameters: URLSearchParams): unknown {
  const number = (text: string): unknown => (/^\d{1,16}$/.test(text) ? Number(text) : text);
  const after = parameters.get('after');
  if (after !== null) return { after: number(after) };
  const from = parameters.get('from');
  return from === null ? undefined : number(from);
}

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Service Unavailable'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
