import { parseArgs } from 'node:util';
import { createServer, resolveServerConfig, type ServerConfig, serverOptionsHelp, serverParseArgsOptions } from '../server/index.ts';
import { type CliIo, UsageError } from './command.ts';

const USAGE = `Usage: busbar serve [options]

Starts the Busbar server: the HTTP API under /v1, Server-Sent Events (/v1/stream) and WebSocket
(/v1/ws) on a durable log, a SQLite file unless --postgres is given. Logs are JSON lines on
standard output. SIGINT or SIGTERM shuts it down gracefully (requests finish, streaming clients are
told to go away, the log is closed); a second signal exits at once.

Each option also comes from its BUSBAR_* variable or the --config file; flags win, then the
environment, then the file.

Options:
${serverOptionsHelp()}

  -h, --help  show this help`;

/**
 * `busbar serve`: the server, configured from flags, `BUSBAR_*` variables
 * and a config file, until SIGINT or SIGTERM.
 *
 * @example
 * ```ts
 * await run(['--port', '0', '--data', 'events.db'], io); // resolves after the first signal, once drained
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number | void> {
  let flags;
  try {
    flags = parseArgs({ args, options: { ...serverParseArgsOptions(), help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!, 'serve', error);
  }
  if (flags.help === true) {
    io.stdout.write(`${USAGE}\n`);
    return;
  }
  delete flags.help;
  let config: ServerConfig;
  try {
    config = resolveServerConfig({ flags, env: io.env });
  } catch (error) {
    throw new UsageError((error as Error).message, 'serve', error);
  }
  const server = await createServer(config);
  const log = server.app.log;
  let url: string;
  try {
    ({ url } = await server.listen());
  } catch (error) {
    await server.close();
    throw error;
  }
  // Where the log lives, but not a PostgreSQL URL: it may hold a password.
  log.info({ url, log: config.postgres === undefined ? { sqlite: config.data } : { postgres: 'configured' } }, `busbar listening on ${url}`);
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    else io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  log.info({ signal: String(io.signal.reason) }, 'shutting down: draining requests and streams, closing the log');
  await server.close();
  log.info('stopped');
}
