import { BusbarError } from '../core/errors.ts';
import { backoffDelay, pause } from './backoff.ts';
import { errorFromReply, unreachable } from './remote-error.ts';

/** How the client reaches the server over HTTP. */
export interface HttpTransportOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:2872`. */
  url: string;
  apiKey?: string;
  /** Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** How long one request may take before it counts as unreachable, ms. Default 30 000. */
  timeoutMs?: number;
  /** Retries of a request that may safely be repeated, after a network failure or a 503. Default 3. */
  retries?: number;
}

/** One request. */
export interface Call {
  query?: Record<string, string | number | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  /**
   * True when repeating the request cannot do harm (reads; publishes and
   * appends, whose events carry client-made ids), so it is retried after a
   * network failure or a 503.
   */
  idempotent: boolean;
  /** Statuses besides 2xx whose body is the answer (health's 503). */
  answers?: readonly number[];
}

const RETRY_BACKOFF = { initialDelayMs: 200, maxDelayMs: 5_000 };
/** A server's Retry-After is honoured up to this, ms: longer waits are the caller's decision. */
const MAX_RETRY_AFTER_MS = 5_000;

/**
 * Calls the HTTP API: JSON in and out, the API key as a bearer token, a
 * timeout per request, safe retries, and every failure as a `BusbarError`
 * (the server's code and message, or `BUSBAR_ERR_UNREACHABLE`).
 *
 * @example
 * ```ts
 * const http = new HttpTransport({ url: 'http://127.0.0.1:2872' });
 * const page = await http.call<EventPage>('GET', '/v1/events', { query: { after: 0 }, idempotent: true });
 * ```
 */
export class HttpTransport {
  readonly baseUrl: string;
  readonly apiKey: string | undefined;
  readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly retries: number;

  constructor(options: HttpTransportOptions) {
    this.baseUrl = baseUrlOf(options.url);
    this.apiKey = options.apiKey;
    // Bound to globalThis: browsers throw "Illegal invocation" for a detached fetch.
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 3;
    if (typeof this.fetch !== 'function') {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'no fetch: pass one as the "fetch" option (Node ≥ 22 and browsers have it)');
    }
  }

  /** The URL of `path` with `query` (undefined values left out). */
  urlOf(path: string, query: Record<string, string | number | undefined> = {}): string {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, String(value));
    return url.href;
  }

  /** The headers every request carries. */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.apiKey === undefined ? extra : { authorization: `Bearer ${this.apiKey}`, ...extra };
  }

  async call<T>(method: string, path: string, call: Call): Promise<T> {
    const url = this.urlOf(path, call.query);
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    const headers = this.headers(body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' });
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (error) {
        if (call.idempotent && attempt < this.retries) {
          await pause(backoffDelay(attempt, RETRY_BACKOFF));
          continue;
        }
        throw unreachable(this.baseUrl, error);
      }
      if (response.status === 503 && call.idempotent && attempt < this.retries && !call.answers?.includes(503)) {
        await response.body?.cancel();
        await pause(retryAfterMs(response) ?? backoffDelay(attempt, RETRY_BACKOFF));
        continue;
      }
      return this.answer<T>(response, call);
    }
  }

  private async answer<T>(response: Response, call: Call): Promise<T> {
    if (response.status === 204) return undefined as T;
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw unreachable(this.baseUrl, error);
    }
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined; // not JSON: a proxy's page, say; the status says enough
    }
    if (response.ok || call.answers?.includes(response.status)) {
      if (body === undefined && text !== '') {
        throw new BusbarError('BUSBAR_ERR_INTERNAL', `the server answered HTTP ${response.status} with a body that is not JSON`, { details: { status: response.status } });
      }
      return body as T;
    }
    throw errorFromReply(response.status, body);
  }
}

function baseUrlOf(url: unknown): string {
  if (typeof url !== 'string' || !URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `the server url must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  }
  return url.replace(/\/+$/, '');
}

function retryAfterMs(response: Response): number | undefined {
  const seconds = Number(response.headers.get('retry-after'));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : undefined;
}
