import { createHash, timingSafeEqual } from 'node:crypto';
import type { onRequestHookHandler } from 'fastify';
import { BusbarError } from '../core/errors.ts';
import { compilePattern, type CompiledPattern } from '../core/pattern.ts';
import type { Principal, Right } from './context.ts';
import { patternCovers } from './pattern-scope.ts';

/**
 * An API key and what its holder may do. Patterns use NATS token rules
 * (`orders.*`, `orders.>`); `admin` grants every right.
 */
export interface ApiKey {
  /** Shown in logs and stats instead of the secret; unique. */
  name: string;
  /** The secret, sent as `Authorization: Bearer <key>`; at least 16 characters. */
  key: string;
  /** Topics the holder may publish to. */
  publish?: string[];
  /** Patterns the holder may read and subscribe to; a requested pattern must lie inside one. */
  subscribe?: string[];
  /** Topics, subscriptions, dead letters, stats and metrics; implies every other right. */
  admin?: boolean;
}

const KEY_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const MIN_SECRET_LENGTH = 16;
const KEY_FIELDS = new Set(['name', 'key', 'publish', 'subscribe', 'admin']);

/**
 * Checks a list of API keys as read from a config file or `BUSBAR_API_KEYS`;
 * throws `BUSBAR_ERR_INVALID_ARGUMENT` naming the key, the field and where
 * the list came from.
 *
 * @example
 * ```ts
 * checkApiKeys(JSON.parse(process.env.BUSBAR_API_KEYS ?? '[]'), 'BUSBAR_API_KEYS');
 * ```
 */
export function checkApiKeys(value: unknown, origin: string): ApiKey[] {
  const fail = (problem: string): never => {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `option "apiKeys" from ${origin}: ${problem}`, {
      details: { option: 'apiKeys', source: origin },
    });
  };
  if (!Array.isArray(value)) return fail('must be an array of { name, key, publish?, subscribe?, admin? }');
  const names = new Set<string>();
  const secrets = new Set<string>();
  return value.map((entry: unknown, index) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(`key ${index} must be an object`);
    const raw = entry as Record<string, unknown>;
    const label = typeof raw.name === 'string' ? `key "${raw.name}"` : `key ${index}`;
    for (const field of Object.keys(raw)) if (!KEY_FIELDS.has(field)) fail(`${label} has an unknown field "${field}"`);
    if (typeof raw.name !== 'string' || !KEY_NAME.test(raw.name)) fail(`${label}: "name" must be 1-64 characters of [A-Za-z0-9_.:-]`);
    if (typeof raw.key !== 'string' || raw.key.length < MIN_SECRET_LENGTH || /\s/.test(raw.key)) {
      fail(`${label}: "key" must be a secret of at least ${MIN_SECRET_LENGTH} characters without spaces`);
    }
    if (names.has(raw.name as string)) fail(`${label} is listed twice`);
    if (secrets.has(raw.key as string)) fail(`${label} reuses the secret of another key`);
    names.add(raw.name as string);
    secrets.add(raw.key as string);
    const key: ApiKey = { name: raw.name as string, key: raw.key as string };
    for (const right of ['publish', 'subscribe'] as const) {
      const patterns = raw[right];
      if (patterns === undefined) continue;
      if (!Array.isArray(patterns)) fail(`${label}: "${right}" must be an array of patterns`);
      for (const pattern of patterns as unknown[]) {
        try {
          if (typeof pattern !== 'string') throw new Error('it is not a string');
          compilePattern(pattern);
        } catch (error) {
          fail(`${label}: "${right}" pattern ${JSON.stringify(pattern)} is invalid (${(error as Error).message})`);
        }
      }
      key[right] = patterns as string[];
    }
    if (raw.admin !== undefined && typeof raw.admin !== 'boolean') fail(`${label}: "admin" must be true or false`);
    if (raw.admin === true) key.admin = true;
    return key;
  });
}

/** Everyone, when no keys are configured: every right. */
const ANONYMOUS: Principal = { name: 'anonymous', can: () => true };

class KeyHolder implements Principal {
  readonly name: string;
  private readonly admin: boolean;
  private readonly publish: CompiledPattern[];
  private readonly subscribe: readonly string[];

  constructor(key: ApiKey) {
    this.name = key.name;
    this.admin = key.admin === true;
    this.publish = (key.publish ?? []).map(compilePattern);
    this.subscribe = key.subscribe ?? [];
  }

  can(right: Right, topic?: string): boolean {
    if (this.admin) return true;
    if (right === 'publish') {
      return topic === undefined ? this.publish.length > 0 : this.publish.some((pattern) => pattern.matches(topic));
    }
    if (right === 'subscribe') {
      return topic === undefined ? this.subscribe.length > 0 : this.subscribe.some((granted) => patternCovers(granted, topic));
    }
    return false;
  }
}

interface StoredKey {
  readonly digest: Buffer;
  readonly holder: KeyHolder;
}

const BEARER = /^Bearer +(\S+) *$/i;

/**
 * Turns credentials into a {@link Principal}. Secrets are kept and compared
 * as SHA-256 digests with `timingSafeEqual`, always against every key, so
 * neither the comparison nor the position of a match leaks through timing.
 *
 * @example
 * ```ts
 * const auth = new Authenticator([{ name: 'shop', key: 'k'.repeat(32), publish: ['orders.>'] }]);
 * auth.authenticate(`Bearer ${'k'.repeat(32)}`, undefined).can('publish', 'orders.created'); // true
 * ```
 */
export class Authenticator {
  /** False when no keys are configured: everyone may do everything. */
  readonly enabled: boolean;
  private readonly keys: StoredKey[];

  constructor(keys: readonly ApiKey[]) {
    this.keys = checkApiKeys(keys, 'the server options').map((key) => ({ digest: digest(key.key), holder: new KeyHolder(key) }));
    this.enabled = this.keys.length > 0;
  }

  /** See `ServerContext.authenticate`. */
  authenticate(authorization: string | undefined, queryToken: string | undefined): Principal {
    if (!this.enabled) return ANONYMOUS;
    let token = queryToken;
    if (authorization !== undefined) {
      const match = BEARER.exec(authorization);
      if (match === null) throw unauthorized('the Authorization header must be "Bearer <API key>"');
      token = match[1];
    }
    if (token === undefined || token.length === 0) {
      throw unauthorized('an API key is required: send "Authorization: Bearer <API key>"');
    }
    const presented = digest(token);
    let found: KeyHolder | undefined;
    for (const key of this.keys) if (timingSafeEqual(key.digest, presented)) found = key.holder;
    if (found === undefined) throw unauthorized('the API key is not known to this server');
    return found;
  }

  /**
   * The hook that enforces each route's `config.access` (see `RouteAccess`)
   * and leaves the caller in `request.principal`.
   */
  hook(): onRequestHookHandler {
    return (request, _reply, done) => {
      const access = request.routeOptions.config.access ?? 'authenticated';
      if (access === 'public' || access === 'self') return done();
      try {
        const principal = this.authenticate(request.headers.authorization, undefined);
        if (access === 'admin' && !principal.can('admin')) {
          throw forbidden(`API key "${principal.name}" lacks the admin right this endpoint needs`);
        }
        request.principal = principal;
        done();
      } catch (error) {
        done(error as Error);
      }
    };
  }
}

/** `BUSBAR_ERR_FORBIDDEN` for a principal lacking a right. */
export function forbidden(message: string, details?: Record<string, unknown>): BusbarError {
  return new BusbarError('BUSBAR_ERR_FORBIDDEN', message, { details });
}

/**
 * Throws `BUSBAR_ERR_FORBIDDEN` unless `principal` may read `pattern`.
 *
 * @example
 * ```ts
 * requireSubscribe(request.principal!, 'orders.*');
 * ```
 */
export function requireSubscribe(principal: Principal, pattern: string): void {
  if (!principal.can('subscribe', pattern)) {
    throw forbidden(`API key "${principal.name}" may not read "${pattern}"`, { pattern });
  }
}

function unauthorized(message: string): BusbarError {
  return new BusbarError('BUSBAR_ERR_UNAUTHORIZED', message);
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
