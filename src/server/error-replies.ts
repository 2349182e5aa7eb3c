import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance } from 'fastify';
import { BusbarError, type ErrorCode } from '../core/errors.ts';

/** The JSON body of every error reply. */
export interface ErrorReply {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** Fastify's own failures, by code, as Busbar codes. */
const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BUSBAR_ERR_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BUSBAR_ERR_INVALID_ARGUMENT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BUSBAR_ERR_INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BUSBAR_ERR_INVALID_JSON',
  FST_ERR_BAD_URL: 'BUSBAR_ERR_INVALID_ARGUMENT',
  FST_ERR_NOT_FOUND: 'BUSBAR_ERR_NOT_FOUND',
};

const BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  401: 'BUSBAR_ERR_UNAUTHORIZED',
  403: 'BUSBAR_ERR_FORBIDDEN',
  404: 'BUSBAR_ERR_NOT_FOUND',
  413: 'BUSBAR_ERR_PAYLOAD_TOO_LARGE',
  415: 'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE',
  429: 'BUSBAR_ERR_RATE_LIMITED',
};

/**
 * Whatever was thrown, as the `BusbarError` the client gets: Busbar's own
 * errors as they are, Fastify's (body limit, content type, schema
 * validation) with the matching code, anything else as an internal error
 * whose message is not passed on.
 *
 * @example
 * ```ts
 * busbarErrorOf(Object.assign(new Error('too big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' })).status; // 413
 * ```
 */
export function busbarErrorOf(thrown: unknown, maxBodyBytes: number): BusbarError {
  if (thrown instanceof BusbarError) return thrown;
  const error = thrown as Partial<FastifyError> & { validationContext?: string };
  if (Array.isArray(error.validation)) {
    return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', error.message ?? 'the request is invalid', {
      details: { part: error.validationContext, issues: error.validation.map(({ instancePath, message }) => ({ path: instancePath, message })) },
    });
  }
  const code = (error.code !== undefined ? FASTIFY_CODES[error.code] : undefined) ?? BY_STATUS[error.statusCode ?? 0];
  if (code === 'BUSBAR_ERR_PAYLOAD_TOO_LARGE') {
    return new BusbarError(code, `the request body is larger than the limit of ${maxBodyBytes} bytes`, { details: { limit: maxBodyBytes } });
  }
  if (code !== undefined) return new BusbarError(code, error.message ?? code, { cause: thrown });
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', error.message ?? 'bad request', { cause: thrown });
  }
  return new BusbarError('BUSBAR_ERR_INTERNAL', 'an internal error occurred; the server log has the details', { cause: thrown });
}

/**
 * Installs the one error handler and the not-found handler, so every
 * failure, on every route, answers `{ "error": { "code", "message" } }` with
 * its status. Server errors are logged; client errors are not (they are the
 * client's news, and logging them would let a client fill the log).
 *
 * @example
 * ```ts
 * installErrorReplies(app, limits.maxBodyBytes);
 * ```
 */
export function installErrorReplies(app: FastifyInstance, maxBodyBytes: number): void {
  app.setErrorHandler((thrown, request, reply) => {
    const error = busbarErrorOf(thrown, maxBodyBytes);
    if (error.status >= 500) request.log.error({ err: thrown }, `request failed: ${error.message}`);
    // Overload and a closing store pass; a client should come back shortly.
    if ((error.status === 429 || error.status === 503) && !reply.hasHeader('retry-after')) reply.header('retry-after', '1');
    if (error.status === 401) reply.header('www-authenticate', 'Bearer realm="busbar"');
    return reply.code(error.status).send({ error: error.toJSON() } satisfies ErrorReply);
  });
  app.setNotFoundHandler((request, reply) => {
    // Without the query string: it may carry a token.
    const path = request.url.split('?', 1)[0];
    const error = new BusbarError('BUSBAR_ERR_NOT_FOUND', `no endpoint ${request.method} ${path}`);
    return reply.code(404).send({ error: error.toJSON() } satisfies ErrorReply);
  });
}

/**
 * Answers a request Node's HTTP parser rejected before Fastify saw it (a
 * header over 16 KiB, a malformed request line, a client too slow to send
 * its headers) in the same `{ "error": { … } }` shape as every other
 * failure, then closes the connection, as Node does.
 *
 * @example
 * ```ts
 * Fastify({ clientErrorHandler: answerClientError });
 * ```
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const reply =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new BusbarError('BUSBAR_ERR_HEADERS_TOO_LARGE', 'the request headers are larger than 16 KiB')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new BusbarError('BUSBAR_ERR_REQUEST_TIMEOUT', 'the request was not received in time')
        : new BusbarError('BUSBAR_ERR_BAD_REQUEST', 'the request is not valid HTTP');
  const body = JSON.stringify({ error: reply.toJSON() } satisfies ErrorReply);
  if (socket.writable) {
    const reason = reply.status === 431 ? 'Request Header Fields Too Large' : reply.status === 408 ? 'Request Timeout' : 'Bad Request';
    socket.write(
      `HTTP/1.1 ${reply.status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
