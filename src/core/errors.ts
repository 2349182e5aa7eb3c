/**
 * Every error Busbar raises is a {@link BusbarError} with a stable `code` that
 * is safe to branch on and grep for, and an HTTP-like `status` the server maps
 * straight onto its responses. The table below is the single list of codes.
 */
export const errorCodes = {
  BUSBAR_ERR_INVALID_TOPIC: {
    status: 400,
    summary: 'A topic is not dot-separated [A-Za-z0-9_-]+ tokens.',
  },
  BUSBAR_ERR_INVALID_PATTERN: { status: 400, summary: 'A subscription pattern is malformed.' },
  BUSBAR_ERR_INVALID_EVENT: { status: 400, summary: 'An event is not a valid CloudEvent.' },
  BUSBAR_ERR_INVALID_ARGUMENT: {
    status: 400,
    summary: 'An option or argument has the wrong type or value.',
  },
  BUSBAR_ERR_VALIDATION: { status: 400, summary: 'Event data failed its topic schema.' },
  BUSBAR_ERR_UNKNOWN_TOPIC: { status: 404, summary: 'Strict mode: the topic is not registered.' },
  BUSBAR_ERR_UNKNOWN_SUBSCRIPTION: { status: 404, summary: 'No subscription has that name.' },
  BUSBAR_ERR_NOT_FOUND: { status: 404, summary: 'The requested item does not exist.' },
  BUSBAR_ERR_DUPLICATE_SUBSCRIPTION: {
    status: 409,
    summary: 'A subscription with that name exists.',
  },
  BUSBAR_ERR_CONCURRENCY: { status: 409, summary: 'A stream is not at the expected version.' },
  BUSBAR_ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    summary: 'An event is larger than the configured limit.',
  },
  BUSBAR_ERR_OVERLOAD: {
    status: 429,
    summary: 'A bounded queue is full and its policy is reject.',
  },
  BUSBAR_ERR_HANDLER_TIMEOUT: {
    status: 504,
    summary: 'A handler did not settle within its timeout.',
  },
  BUSBAR_ERR_CLOSED: { status: 503, summary: 'The bus or store is closing or closed.' },
  BUSBAR_ERR_STORE_SCHEMA: {
    status: 500,
    summary: 'The database holds a newer Busbar schema than this code knows.',
  },
  BUSBAR_ERR_STORE_UNAVAILABLE: {
    status: 503,
    summary: 'The store could not be reached or failed to commit.',
  },
  BUSBAR_ERR_MISSING_DRIVER: {
    status: 500,
    summary: 'A subpath needs an optional peer dependency that is not installed.',
  },
  BUSBAR_ERR_INVALID_JSON: { status: 400, summary: 'A request body or message is not well-formed JSON.' },
  BUSBAR_ERR_BAD_REQUEST: { status: 400, summary: 'An HTTP request the server cannot parse at all.' },
  BUSBAR_ERR_REQUEST_TIMEOUT: { status: 408, summary: 'A client took too long to send its request.' },
  BUSBAR_ERR_HEADERS_TOO_LARGE: { status: 431, summary: 'Request headers are larger than the server accepts (16 KiB).' },
  BUSBAR_ERR_UNAUTHORIZED: { status: 401, summary: 'No API key, or one the server does not know.' },
  BUSBAR_ERR_FORBIDDEN: { status: 403, summary: 'The API key lacks the right for this topic or action.' },
  BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    summary: 'The request body has a content type the endpoint does not accept.',
  },
  BUSBAR_ERR_RATE_LIMITED: { status: 429, summary: 'Too many requests for this API key or client.' },
  BUSBAR_ERR_UNREACHABLE: { status: 503, summary: 'A server or database could not be reached.' },
  BUSBAR_ERR_CDC_SETUP: {
    status: 500,
    summary: 'PostgreSQL is not set up for change data capture (wal_level, rights, slots).',
  },
  BUSBAR_ERR_CDC_SLOT: {
    status: 409,
    summary: 'The replication slot is missing, in use by another reader, or lost its WAL.',
  },
  BUSBAR_ERR_CDC_PROTOCOL: {
    status: 502,
    summary: 'The replication stream sent a message Busbar cannot decode.',
  },
  BUSBAR_ERR_CDC_GAVE_UP: {
    status: 503,
    summary: 'Change capture stopped after its last reconnection attempt failed.',
  },
  BUSBAR_ERR_INTERNAL: { status: 500, summary: 'An unexpected internal failure.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof errorCodes;

export interface BusbarErrorOptions {
  cause?: unknown;
  /** Structured facts about the failure (the bad token, the queue bound...). */
  details?: Record<string, unknown>;
}

/**
 * The base of every error Busbar raises.
 *
 * @example
 * ```ts
 * try { await bus.publish('bad..topic', {}) }
 * catch (error) { if (error instanceof BusbarError) console.log(error.code) } // BUSBAR_ERR_INVALID_TOPIC
 * ```
 */
export class BusbarError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: BusbarErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BusbarError';
    this.code = code;
    this.status = errorCodes[code].status;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** One problem found by a schema, with the path into the data where it was found. */
export interface ValidationIssue {
  message: string;
  path: ReadonlyArray<PropertyKey>;
}

/** Event data failed its topic's schema; `issues` lists every problem, not just the first. */
export class ValidationError extends BusbarError {
  readonly issues: ReadonlyArray<ValidationIssue>;

  constructor(topic: string, issues: ReadonlyArray<ValidationIssue>) {
    const listed = issues
      .map(
        (issue) =>
          (issue.path.length ? `${issue.path.map(String).join('.')}: ` : '') + issue.message,
      )
      .join('; ');
    super('BUSBAR_ERR_VALIDATION', `data for "${topic}" is invalid: ${listed}`, {
      details: { topic, issues },
    });
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

/** A bounded queue refused an event; the caller should slow down or retry later. */
export class OverloadError extends BusbarError {
  constructor(message: string, details: Record<string, unknown>) {
    super('BUSBAR_ERR_OVERLOAD', message, { details });
    this.name = 'OverloadError';
  }
}

/** A stream was not at the version an append expected. */
export class ConcurrencyError extends BusbarError {
  readonly stream: string;
  readonly expected: unknown;
  readonly actual: unknown;

  constructor(stream: string, expected: unknown, actual: unknown) {
    super(
      'BUSBAR_ERR_CONCURRENCY',
      `stream "${stream}" expected version ${String(expected)} but is at ${String(actual)}`,
      { details: { stream, expected, actual } },
    );
    this.name = 'ConcurrencyError';
    this.stream = stream;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Wraps anything thrown (strings, numbers, objects) so failures always carry an Error. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new BusbarError('BUSBAR_ERR_INTERNAL', `non-error thrown: ${describe(thrown)}`, {
    cause: thrown,
  });
}

function describe(value: unknown): string {
  try {
    return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}
