import { BusbarError, ConcurrencyError, type ErrorCode, errorCodes, OverloadError } from '../core/errors.ts';

/** The nearest code this client knows for a status, when the server sent one it does not (a newer server). */
const CODE_OF_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'BUSBAR_ERR_INVALID_ARGUMENT',
  401: 'BUSBAR_ERR_UNAUTHORIZED',
  403: 'BUSBAR_ERR_FORBIDDEN',
  404: 'BUSBAR_ERR_NOT_FOUND',
  409: 'BUSBAR_ERR_CONCURRENCY',
  413: 'BUSBAR_ERR_PAYLOAD_TOO_LARGE',
  415: 'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE',
  429: 'BUSBAR_ERR_RATE_LIMITED',
  503: 'BUSBAR_ERR_CLOSED',
};

/**
 * The server's error (its `{ error: { code, message, details } }` and HTTP
 * status) as the `BusbarError` the caller would have got in process: a 409
 * on a stream is a `ConcurrencyError`, a full queue an `OverloadError`. A
 * reply without that body (a proxy's, say) gets the code of its status.
 *
 * @example
 * ```ts
 * errorFromReply(409, { error: { code: 'BUSBAR_ERR_CONCURRENCY', message: '…', details: { stream: 'a-1', expected: 0, actual: 1 } } })
 * // ConcurrencyError { stream: 'a-1', expected: 0, actual: 1 }
 * ```
 */
export function errorFromReply(status: number, body: unknown): BusbarError {
  const reply = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const code = typeof reply?.code === 'string' ? reply.code : undefined;
  const message = typeof reply?.message === 'string' ? reply.message : `the server answered HTTP ${status}`;
  const details = typeof reply?.details === 'object' && reply.details !== null ? (reply.details as Record<string, unknown>) : undefined;
  if (code === 'BUSBAR_ERR_CONCURRENCY' && details !== undefined && typeof details.stream === 'string') {
    return new ConcurrencyError(details.stream, details.expected, details.actual);
  }
  if (code === 'BUSBAR_ERR_OVERLOAD') return new OverloadError(message, details ?? {});
  if (code !== undefined && Object.hasOwn(errorCodes, code)) return new BusbarError(code as ErrorCode, message, { details });
  const known = CODE_OF_STATUS[status] ?? (status >= 500 ? 'BUSBAR_ERR_INTERNAL' : 'BUSBAR_ERR_INVALID_ARGUMENT');
  return new BusbarError(known, message, { details: { ...details, status, ...(code === undefined ? {} : { serverCode: code }) } });
}

/**
 * A failure to reach the server (refused, reset, DNS, timed out) as
 * `BUSBAR_ERR_UNREACHABLE`, with the platform's error as `cause`.
 *
 * @example
 * ```ts
 * unreachable('http://127.0.0.1:2872', new TypeError('fetch failed')).code // 'BUSBAR_ERR_UNREACHABLE'
 * ```
 */
export function unreachable(url: string, cause: unknown): BusbarError {
  const reason = describeFailure(cause);
  return new BusbarError('BUSBAR_ERR_UNREACHABLE', `cannot reach the Busbar server at ${url}: ${reason}`, { cause, details: { url } });
}

/** Node's fetch says "fetch failed" and keeps the reason (ECONNREFUSED…) in `cause`. */
function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError') return 'no answer in time';
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (cause !== undefined && typeof cause.message === 'string') {
    return typeof cause.code === 'string' && !cause.message.includes(cause.code) ? `${cause.code} ${cause.message}` : cause.message;
  }
  return error.message;
}
