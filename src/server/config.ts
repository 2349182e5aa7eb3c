import { readFileSync } from 'node:fs';
import { BusbarError } from '../core/errors.ts';
import { type ApiKey, checkApiKeys } from './auth.ts';
import { cdcOptionsOf, type ServerCdcOptions, tableListOf } from './cdc-config.ts';
import type { ServerLimits } from './context.ts';

/** Pino's levels; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The limits a server uses when none are configured. */
export const DEFAULT_LIMITS: ServerLimits = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  maxMessageBytes: 1024 * 1024,
  sendBufferBytes: 4 * 1024 * 1024,
  heartbeatMs: 15_000,
});

/** The server's settings once flags, environment, config file and defaults are merged. */
export interface ServerConfig {
  host: string;
  port: number;
  /** The SQLite file; undefined when `postgres` is set. */
  data: string | undefined;
  /** A PostgreSQL connection URL: the log lives there instead of in `data`. */
  postgres: string | undefined;
  apiKeys: ApiKey[];
  /** Requests per window and key (or client address without keys); undefined: no limit. */
  rateLimit: { max: number; timeWindow: number } | undefined;
  limits: ServerLimits;
  logger: LogLevel;
  strict: boolean;
  source: string;
  /** Origins allowed by CORS (`*` for any); empty: no CORS headers, same-origin pages only. */
  corsOrigins: string[];
  /** Change capture from PostgreSQL into the bus (`cdc*` options); undefined: none. */
  cdc: ServerCdcOptions | undefined;
  /** Where each option's value came from: `--flag`, `BUSBAR_…`, `config file …` or `default`. */
  origins: Record<string, string>;
}

type Kind = 'string' | 'port' | 'size' | 'count' | 'boolean' | 'keys' | 'level' | 'url' | 'origins' | 'tables' | 'choice';

/** One documented option: its config-file key, flag, environment variable and meaning. */
export interface ServerOptionSpec {
  readonly name: string;
  readonly flag: string;
  readonly env: string;
  readonly kind: Kind;
  /** As shown in help; undefined for none. */
  readonly default: string | undefined;
  readonly description: string;
  /** The values a `choice` option takes. */
  readonly choices?: readonly string[];
}

const spec = (
  name: string,
  flag: string,
  kind: Kind,
  defaultValue: string | undefined,
  description: string,
  choices?: readonly string[],
): ServerOptionSpec => ({
  name,
  flag,
  env: `BUSBAR_${flag.toUpperCase().replaceAll('-', '_')}`,
  kind,
  default: defaultValue,
  description,
  ...(choices === undefined ? {} : { choices }),
});

/**
 * Every `busbar serve` option, documented once: `serve --help` prints this
 * table and docs/server.md lists it. Config-file keys are the `name`s.
 *
 * @example
 * ```ts
 * for (const option of SERVER_OPTIONS) console.log(`--${option.flag}`, option.env, option.description);
 * ```
 */
export const SERVER_OPTIONS: readonly ServerOptionSpec[] = [
  spec('config', 'config', 'string', undefined, 'JSON file with any of these options, keyed by name (flags and environment win)'),
  spec('host', 'host', 'string', '127.0.0.1', 'address to listen on'),
  spec('port', 'port', 'port', '2872', 'port to listen on; 0 picks a free one'),
  spec('data', 'data', 'string', './busbar.db', 'SQLite file that holds the log'),
  spec('postgres', 'postgres', 'url', undefined, 'PostgreSQL URL: keep the log there instead (do not combine with data)'),
  spec('apiKeys', 'api-keys', 'keys', '[]', 'JSON array of { name, key, publish?, subscribe?, admin? }; none: no auth'),
  spec('rateLimit', 'rate-limit', 'count', '0', 'requests per window per API key (or client address); 0: unlimited'),
  spec('rateLimitWindow', 'rate-limit-window', 'count', '60000', 'rate limit window, ms'),
  spec('maxBodyBytes', 'max-body-bytes', 'size', String(DEFAULT_LIMITS.maxBodyBytes), 'largest HTTP request body, bytes'),
  spec('maxMessageBytes', 'max-message-bytes', 'size', String(DEFAULT_LIMITS.maxMessageBytes), 'largest inbound WebSocket message, bytes'),
  spec('sendBufferBytes', 'send-buffer-bytes', 'size', String(DEFAULT_LIMITS.sendBufferBytes), 'unsent bytes after which a slow streaming client is cut off'),
  spec('heartbeatMs', 'heartbeat-ms', 'size', String(DEFAULT_LIMITS.heartbeatMs), 'interval of SSE heartbeats and WebSocket pings, ms'),
  spec('logLevel', 'log-level', 'level', 'info', `log level: ${LOG_LEVELS.join(', ')}`),
  spec('strict', 'strict', 'boolean', 'false', 'accept only events of registered topics'),
  spec('source', 'source', 'string', 'busbar', 'CloudEvents source of events published without one'),
  spec('corsOrigins', 'cors-origins', 'origins', undefined, 'browser origins allowed to call the API from other sites: comma-separated, or *; none: same origin only'),
  spec('cdcPostgres', 'cdc-postgres', 'url', undefined, 'PostgreSQL URL to capture row changes from into the bus (change data capture)'),
  spec('cdcTables', 'cdc-tables', 'tables', undefined, 'tables to capture, comma-separated (orders,sales.lines); or cdc-all-tables'),
  spec('cdcAllTables', 'cdc-all-tables', 'boolean', 'false', 'capture every table of the database'),
  spec('cdcMode', 'cdc-mode', 'choice', 'replication', 'replication (logical decoding) or trigger (no replication right needed)', ['replication', 'trigger']),
  spec('cdcSlot', 'cdc-slot', 'string', 'busbar', 'replication slot (trigger mode: the reader\'s checkpoint name)'),
  spec('cdcPublication', 'cdc-publication', 'string', 'busbar', 'publication (replication mode)'),
  spec('cdcSnapshot', 'cdc-snapshot', 'choice', 'initial', 'replication mode: initial (existing rows first, as READ events) or never', ['initial', 'never']),
  spec('cdcTriggerSchema', 'cdc-trigger-schema', 'string', 'busbar_cdc', 'trigger mode: Busbar\'s schema for the change table'),
];

/**
 * The options in the shape `node:util` `parseArgs` takes, so the CLI parses
 * exactly the documented flags.
 *
 * @example
 * ```ts
 * const { values } = parseArgs({ args, options: serverParseArgsOptions() });
 * const config = resolveServerConfig({ flags: values, env: process.env });
 * ```
 */
export function serverParseArgsOptions(): Record<string, { type: 'string' | 'boolean' }> {
  return Object.fromEntries(SERVER_OPTIONS.map((option) => [option.flag, { type: option.kind === 'boolean' ? 'boolean' : 'string' }]));
}

/**
 * The options as help text, one per line: flag, environment variable,
 * default and meaning.
 *
 * @example
 * ```ts
 * console.log(`Usage: busbar serve [options]\n\n${serverOptionsHelp()}`);
 * ```
 */
export function serverOptionsHelp(): string {
  const rows = SERVER_OPTIONS.map((option) => [
    `--${option.flag}${option.kind === 'boolean' ? '' : ' <value>'}`,
    option.env,
    `${option.description}${option.default === undefined ? '' : ` (default ${option.default})`}`,
  ]);
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => `  ${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`).join('\n');
}

/** What `resolveServerConfig` merges. */
export interface ConfigSources {
  /** Parsed flags keyed by flag name (`port`, `api-keys`…), as `parseArgs` returns them. */
  flags?: Record<string, string | boolean | undefined>;
  /** Environment variables; only `BUSBAR_*` ones are read. */
  env?: Record<string, string | undefined>;
  /** Reads the config file; default `fs.readFileSync(path, 'utf8')`. */
  readFile?: (path: string) => string;
}

/**
 * Merges the server's settings in this precedence: flags, then `BUSBAR_*`
 * environment variables, then the JSON config file (`--config` or
 * `BUSBAR_CONFIG`), then defaults. Every value is checked; a bad one throws
 * `BUSBAR_ERR_INVALID_ARGUMENT` naming the option and where it came from.
 * Nothing but `readFile` touches the outside world.
 *
 * @example
 * ```ts
 * const config = resolveServerConfig({ flags: { port: '8080' }, env: process.env });
 * const server = await createServer(config);
 * ```
 */
export function resolveServerConfig(sources: ConfigSources = {}): ServerConfig {
  const flags = sources.flags ?? {};
  const env = sources.env ?? {};
  const known = new Set(SERVER_OPTIONS.map((option) => option.flag));
  for (const flag of Object.keys(flags)) {
    if (!known.has(flag) && flags[flag] !== undefined) throw invalid(flag, `--${flag}`, 'is not a server option');
  }
  const configOption = SERVER_OPTIONS[0]!;
  const configPath = pick(configOption, flags, env, {}, undefined);
  const file = configPath === undefined ? { values: {}, label: undefined } : readConfigFile(String(configPath.value), configPath.origin, sources.readFile);
  const origins: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  for (const option of SERVER_OPTIONS.slice(1)) {
    const found = pick(option, flags, env, file.values, file.label);
    if (found === undefined) {
      origins[option.name] = 'default';
      continue;
    }
    origins[option.name] = found.origin;
    values[option.name] = parse(option, found.value, found.origin);
  }
  if (values.postgres !== undefined && values.data !== undefined) {
    throw invalid('data', origins.data!, `cannot be combined with "postgres" (from ${origins.postgres}): the log is kept in one store; drop one of them`);
  }
  const rateLimit = (values.rateLimit as number | undefined) ?? 0;
  return {
    host: (values.host as string | undefined) ?? '127.0.0.1',
    port: (values.port as number | undefined) ?? 2872,
    data: values.postgres === undefined ? ((values.data as string | undefined) ?? './busbar.db') : undefined,
    postgres: values.postgres as string | undefined,
    apiKeys: (values.apiKeys as ApiKey[] | undefined) ?? [],
    rateLimit: rateLimit === 0 ? undefined : { max: rateLimit, timeWindow: (values.rateLimitWindow as number | undefined) ?? 60_000 },
    limits: {
      maxBodyBytes: (values.maxBodyBytes as number | undefined) ?? DEFAULT_LIMITS.maxBodyBytes,
      maxMessageBytes: (values.maxMessageBytes as number | undefined) ?? DEFAULT_LIMITS.maxMessageBytes,
      sendBufferBytes: (values.sendBufferBytes as number | undefined) ?? DEFAULT_LIMITS.sendBufferBytes,
      heartbeatMs: (values.heartbeatMs as number | undefined) ?? DEFAULT_LIMITS.heartbeatMs,
    },
    logger: (values.logLevel as LogLevel | undefined) ?? 'info',
    strict: (values.strict as boolean | undefined) ?? false,
    source: (values.source as string | undefined) ?? 'busbar',
    corsOrigins: (values.corsOrigins as string[] | undefined) ?? [],
    cdc: cdcOptionsOf({ values, origins }),
    origins,
  };
}

interface Found {
  value: unknown;
  origin: string;
}

function pick(
  option: ServerOptionSpec,
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
  file: Record<string, unknown>,
  fileLabel: string | undefined,
): Found | undefined {
  if (flags[option.flag] !== undefined) return { value: flags[option.flag], origin: `--${option.flag}` };
  const fromEnv = env[option.env];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, origin: option.env };
  if (file[option.name] !== undefined) return { value: file[option.name], origin: `${fileLabel} (key "${option.name}")` };
  return undefined;
}

function readConfigFile(
  path: string,
  origin: string,
  readFile: (path: string) => string = (file) => readFileSync(file, 'utf8'),
): { values: Record<string, unknown>; label: string | undefined } {
  const label = `config file ${path}`;
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw invalid('config', origin, `names ${path}, which cannot be read: ${(error as Error).message}`, error);
  }
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (error) {
    throw invalid('config', origin, `names ${path}, which is not valid JSON: ${(error as Error).message}`, error);
  }
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw invalid('config', origin, `names ${path}, which must hold a JSON object of options`);
  }
  const names = new Set(SERVER_OPTIONS.slice(1).map((option) => option.name));
  for (const key of Object.keys(values)) {
    if (!names.has(key)) throw invalid(key, label, `is not a server option (known: ${[...names].join(', ')})`);
  }
  return { values: values as Record<string, unknown>, label };
}

function parse(option: ServerOptionSpec, value: unknown, origin: string): unknown {
  const fail = (expected: string): never => {
    throw invalid(option.name, origin, `must be ${expected}, got ${JSON.stringify(value)}`);
  };
  switch (option.kind) {
    case 'string':
      return typeof value === 'string' && value.length > 0 ? value : fail('a non-empty string');
    case 'url': {
      if (typeof value !== 'string' || !/^postgres(ql)?:\/\//.test(value) || !URL.canParse(value)) {
        // Not echoed: a connection URL may hold a password.
        throw invalid(option.name, origin, 'must be a postgres:// or postgresql:// URL');
      }
      return value;
    }
    case 'port':
      return integer(value, 0, 65_535) ?? fail('an integer from 0 to 65535');
    case 'size':
      return integer(value, 1, Number.MAX_SAFE_INTEGER) ?? fail('an integer ≥ 1');
    case 'count':
      return integer(value, 0, Number.MAX_SAFE_INTEGER) ?? fail('an integer ≥ 0');
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|1|yes|on)$/i.test(value)) return true;
      if (typeof value === 'string' && /^(false|0|no|off)$/i.test(value)) return false;
      return fail('true or false');
    case 'level':
      return (LOG_LEVELS as readonly unknown[]).includes(value) ? value : fail(`one of ${LOG_LEVELS.join(', ')}`);
    case 'origins': {
      const list = typeof value === 'string' ? value.split(',').map((each) => each.trim()).filter(Boolean) : value;
      if (!Array.isArray(list) || list.length === 0) return fail('a comma-separated list of origins, or *');
      for (const origin of list) {
        if (origin !== '*' && (typeof origin !== 'string' || !/^https?:\/\/[^/\s]+$/.test(origin))) {
          return fail('origins like https://app.example.com (scheme and host, no path), or *');
        }
      }
      return list;
    }
    case 'tables':
      return tableListOf(value) ?? fail('a comma-separated list of tables (orders,sales.lines), or in the config file an array of names');
    case 'choice':
      return option.choices!.includes(value as string) ? value : fail(option.choices!.join(' or '));
    case 'keys': {
      let keys = value;
      if (typeof value === 'string') {
        try {
          keys = JSON.parse(value);
        } catch {
          // JSON.parse's message quotes the text around the error: here, secrets.
          throw invalid(option.name, origin, 'must be a JSON array of keys; the value is not valid JSON');
        }
      }
      return checkApiKeys(keys, origin);
    }
  }
}

function integer(value: unknown, min: number, max: number): number | undefined {
  const number = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  return typeof number === 'number' && Number.isSafeInteger(number) && number >= min && number <= max ? number : undefined;
}

function invalid(option: string, origin: string, problem: string, cause?: unknown): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `option "${option}" (${origin}) ${problem}`, {
    cause,
    details: { option, source: origin },
  });
}
