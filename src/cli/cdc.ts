import { once } from 'node:events';
import { type CdcHandler, createPostgresCdc, createRedisBridge, type PostgresCdc, type PostgresCdcOptions, type RedisBridge } from '../cdc/index.ts';
import { createClient } from '../client/index.ts';
import { BusbarError, toError } from '../core/errors.ts';
import { splitTableList } from '../server/cdc-config.ts';
import { type CliIo, type CommandLine, integerFlag, parseCommandLine, serverOf, UsageError } from './command.ts';
import { serverOutput } from './cdc-server-output.ts';
import { changeLineFormat } from './change-line.ts';

export const CDC: CommandLine = {
  name: 'cdc',
  usage: '--postgres <url> (--tables <a,b> | --all-tables) [options]',
  description:
    'Streams the committed row changes of PostgreSQL tables, in commit order, as events of type\n' +
    'cdc.<schema>.<table>.<insert|update|delete|truncate|read>: printed one per line (a line for people\n' +
    'in a terminal, one JSON CloudEvent per line when piped), and with --server published to a Busbar\n' +
    'server, with --redis to Redis. A change is confirmed to PostgreSQL only once every output took it,\n' +
    'so after a crash or restart it resumes where it left off; redelivered changes keep their event ids,\n' +
    'which a server stores once. Ctrl-C stops it (what was delivered is confirmed).',
  maxPositionals: 0,
  flags: {
    postgres: { type: 'string', value: 'url', description: 'the database to capture, postgres://… (env BUSBAR_CDC_POSTGRES)' },
    tables: { type: 'string', value: 'a,b', description: 'tables to capture, comma-separated: orders,sales."Order Lines" (schema public unless given)' },
    'all-tables': { type: 'boolean', description: 'capture every table of the database' },
    mode: { type: 'string', value: 'replication|trigger', description: 'logical replication (default; needs wal_level=logical) or triggers (no replication right needed)' },
    slot: { type: 'string', value: 'name', description: 'the replication slot (trigger mode: the reader\'s checkpoint name); default busbar' },
    publication: { type: 'string', value: 'name', description: 'the publication (replication mode); default busbar' },
    snapshot: { type: 'string', value: 'initial|never', description: 'replication mode: first deliver the rows tables already hold, as READ events (default initial)' },
    'trigger-schema': { type: 'string', value: 'name', description: 'trigger mode: Busbar\'s schema for the change table; default busbar_cdc' },
    server: { type: 'string', value: 'url', description: 'also publish to this Busbar server, each transaction in one request (no default)' },
    'api-key': { type: 'string', value: 'key', description: 'the server\'s API key, sent as a bearer token (env BUSBAR_API_KEY)' },
    redis: { type: 'string', value: 'url', description: 'also publish each change to Redis, on the channel <schema>.<table>.cdc_events' },
    quiet: { type: 'boolean', short: 'q', description: 'print nothing (needs --server or --redis)' },
    'retry-interval': { type: 'string', value: 'ms', description: 'wait between reconnection attempts (default 5000)' },
  },
  epilogue: `Examples:
  busbar cdc --postgres postgres://capture@db/shop --tables orders,customers
  busbar cdc --postgres postgres://capture@db/shop --all-tables --server http://127.0.0.1:2872 --quiet
  busbar cdc --postgres postgres://app@db/shop --tables orders --mode trigger --redis redis://127.0.0.1:6379`,
};

/** What the command line asked for, checked. */
interface Settings {
  readonly options: PostgresCdcOptions;
  readonly tables: string[] | 'all';
  readonly server: { url: string; apiKey: string | undefined } | undefined;
  readonly redis: string | undefined;
  readonly quiet: boolean;
}

/**
 * `busbar cdc`: change capture from PostgreSQL to stdout, a Busbar server
 * and/or Redis, until Ctrl-C (exit 0). Setup mistakes (an unreachable
 * database, a table that does not exist, `wal_level` not logical) end it
 * with exit 1 before it streams; once streaming, failures are retried.
 *
 * @example
 * ```ts
 * await run(['--postgres', url, '--tables', 'orders', '--server', 'http://127.0.0.1:2872'], io);
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number | void> {
  const parsed = parseCommandLine(CDC, args, io);
  if (parsed === undefined) return;
  const settings = settingsOf(parsed.values, io.env);

  let fatal: Error | undefined;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const fail = (error: Error): void => {
    fatal ??= error;
    stop();
  };

  const handlers: CdcHandler[] = [];
  let connectedOnce = false;
  handlers.push({
    onConnect: () => {
      io.stderr.write(connectedOnce ? 'busbar: reconnected; resuming after the last confirmed change\n' : `busbar: ${streamingLine(settings)}\n`);
      connectedOnce = true;
    },
  });
  const client = settings.server === undefined ? undefined : createClient(settings.server);
  const bridge: RedisBridge | undefined = settings.redis === undefined ? undefined : createRedisBridge({ url: settings.redis });
  if (bridge !== undefined) handlers.push(bridge);
  if (!settings.quiet) handlers.push(printer(io));

  let cdc: PostgresCdc | undefined;
  try {
    cdc = createPostgresCdc({
      ...settings.options,
      ...(client === undefined ? {} : { bus: serverOutput({ client, onRefused: fail }) }),
      handlers,
      onError: fail,
      onWarning: (message) => {
        if (fatal !== undefined) return;
        const { state, lastError } = cdc?.status() ?? {};
        // Before the first connect a setup problem (wal_level, rights) will not fix itself: say so and stop.
        if (!connectedOnce && state === 'retrying' && lastError?.code === 'BUSBAR_ERR_CDC_SETUP') {
          fail(new BusbarError('BUSBAR_ERR_CDC_SETUP', lastError.message));
          return;
        }
        io.stderr.write(`busbar: ${message}\n`);
      },
    });
  } catch (error) {
    if (error instanceof BusbarError && error.code === 'BUSBAR_ERR_INVALID_ARGUMENT') throw new UsageError(error.message, 'cdc', error);
    throw error;
  }

  try {
    // Every output and the database are checked before streaming, so a wrong URL, a missing
    // table or a missing right ends the command at once, not at the first change.
    await client?.health();
    await bridge?.onStart();
    if (settings.tables === 'all') await cdc.ensureCdcForAllTables();
    else await cdc.ensureCdcFor(settings.tables);
  } catch (error) {
    await cdc.close();
    await bridge?.onClose();
    throw setupFailure(error, settings.options.connectionString);
  }

  cdc.start();
  const interrupted = new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    else io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await Promise.race([interrupted, stopped]);
  await cdc.close();
  if (fatal !== undefined) throw fatal;
}

function settingsOf(values: Record<string, unknown>, env: CliIo['env']): Settings {
  const connectionString = (values.postgres as string | undefined) ?? (env.BUSBAR_CDC_POSTGRES || undefined);
  if (connectionString === undefined) throw new UsageError('--postgres is required: the database to capture (or set BUSBAR_CDC_POSTGRES)', 'cdc');
  if (!/^postgres(ql)?:\/\//.test(connectionString) || !URL.canParse(connectionString)) {
    // Not echoed: a connection URL may hold a password.
    throw new UsageError('--postgres must be a postgres:// or postgresql:// URL', 'cdc');
  }
  const allTables = values['all-tables'] === true;
  const tables = values.tables === undefined ? undefined : splitTableList(values.tables as string);
  if (tables === undefined && !allTables) throw new UsageError('say what to capture: --tables a,b or --all-tables', 'cdc');
  if (tables !== undefined && allTables) throw new UsageError('give --tables or --all-tables, not both', 'cdc');
  if (tables !== undefined && tables.length === 0) throw new UsageError('--tables lists no table', 'cdc');
  const mode = (values.mode as string | undefined) ?? 'replication';
  if (mode !== 'replication' && mode !== 'trigger') throw new UsageError(`--mode must be replication or trigger, got ${JSON.stringify(mode)}`, 'cdc');
  const snapshot = values.snapshot as string | undefined;
  if (snapshot !== undefined && snapshot !== 'initial' && snapshot !== 'never') {
    throw new UsageError(`--snapshot must be initial or never, got ${JSON.stringify(snapshot)}`, 'cdc');
  }
  const onlyIn = (flag: string, modeOfFlag: string): void => {
    if (values[flag] !== undefined && mode !== modeOfFlag) throw new UsageError(`--${flag} applies to ${modeOfFlag} mode only`, 'cdc');
  };
  onlyIn('publication', 'replication');
  onlyIn('snapshot', 'replication');
  onlyIn('trigger-schema', 'trigger');
  const server = values.server === undefined ? undefined : serverOf(values, env);
  const redis = values.redis as string | undefined;
  if (redis !== undefined && !/^rediss?:\/\//.test(redis)) throw new UsageError('--redis must be a redis:// or rediss:// URL', 'cdc');
  const quiet = values.quiet === true;
  if (quiet && server === undefined && redis === undefined) {
    throw new UsageError('--quiet without --server or --redis would confirm every change to no one: give an output', 'cdc');
  }
  const slot = values.slot as string | undefined;
  const retryInterval = integerFlag('retry-interval', values['retry-interval'], 0);
  const options: PostgresCdcOptions = {
    connectionString,
    mode,
    ...(retryInterval === undefined ? {} : { retryInterval }),
    ...(mode === 'replication'
      ? {
          ...(slot === undefined ? {} : { slotName: slot }),
          ...(values.publication === undefined ? {} : { publicationName: values.publication as string }),
          ...(snapshot === undefined ? {} : { snapshot: snapshot as 'initial' | 'never' }),
        }
      : {
          trigger: {
            ...(slot === undefined ? {} : { readerName: slot }),
            ...(values['trigger-schema'] === undefined ? {} : { schema: values['trigger-schema'] as string }),
          },
        }),
  };
  return { options, tables: allTables ? 'all' : tables!, server, redis, quiet };
}

/** Prints each change, waiting for a slow reader of stdout (capture then pauses: memory stays bounded). */
function printer(io: CliIo): CdcHandler {
  const terminal = io.stdout.isTTY === true;
  const format = changeLineFormat({ pretty: terminal, colour: terminal && io.env.NO_COLOR === undefined, columns: io.stdout.columns });
  return {
    onEvent: (event) => {
      if (!io.stdout.write(format(event))) return once(io.stdout, 'drain').then(() => undefined);
    },
  };
}

function streamingLine({ options, tables, server, redis }: Settings): string {
  const what = tables === 'all' ? 'every table' : tables.join(', ');
  const where = options.mode === 'trigger' ? `trigger mode, reader ${options.trigger?.readerName ?? 'busbar'}` : `replication mode, slot ${options.slotName ?? 'busbar'}`;
  const to = [server === undefined ? undefined : server.url, redis === undefined ? undefined : 'Redis'].filter((each) => each !== undefined);
  return `streaming changes of ${what} (${where}) from ${databaseOf(options.connectionString)}${to.length === 0 ? '' : ` to ${to.join(' and ')}`}`;
}

/** `host:port/database`, never the user or password. */
function databaseOf(connectionString: string): string {
  const url = new URL(connectionString);
  return `${url.host}${url.pathname}`;
}

/** A driver error while preparing capture, as a Busbar error that says where. */
function setupFailure(error: unknown, connectionString: string): Error {
  if (error instanceof BusbarError) return error;
  const failure = toError(error);
  const code = (failure as { code?: unknown }).code;
  const unreachable = typeof code === 'string' && /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET)$/.test(code);
  if (unreachable || /timeout|terminated/i.test(failure.message)) {
    return new BusbarError('BUSBAR_ERR_UNREACHABLE', `cannot reach PostgreSQL at ${databaseOf(connectionString)}: ${failure.message}`, { cause: error });
  }
  return new BusbarError('BUSBAR_ERR_CDC_SETUP', `PostgreSQL at ${databaseOf(connectionString)} refused to set up capture: ${failure.message}`, { cause: error });
}
