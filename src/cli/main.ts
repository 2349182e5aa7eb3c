#!/usr/bin/env node
// `busbar`: the command line. Each command lives in its own file and is
// listed in commands.ts; this file dispatches, owns the process's signals
// and exit code, and prints errors as `busbar: <code>: <message>`.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { type CliIo, UsageError } from './command.ts';
import { COMMANDS } from './commands.ts';

const MINIMUM_NODE = [22, 12];

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < MINIMUM_NODE[0]! || (major === MINIMUM_NODE[0] && minor < MINIMUM_NODE[1]!)) {
  process.stderr.write(`busbar: needs Node ${MINIMUM_NODE.join('.')} or newer; this is ${process.versions.node}\n`);
  process.exit(1);
}

const controller = new AbortController();
const io: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, signal: controller.signal };
// A reader that went away (`busbar tail … | head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
});

process.exitCode = await main(process.argv.slice(2));
// Whatever a command left behind (a keep-alive socket, a timer) must not keep a finished command alive.
setTimeout(() => process.exit(), 2_000).unref();

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined) {
    io.stderr.write(`${overview()}\n`);
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    if (rest[0] === undefined) {
      io.stdout.write(`${overview()}\n`);
      return 0;
    }
    return main([rest[0], '--help']);
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  const entry = COMMANDS.find((command) => command.name === name);
  try {
    if (entry === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}; the commands are ${COMMANDS.map((command) => command.name).join(', ')}`);
    watchSignals(entry.graceful);
    const { run } = await entry.load();
    return (await run(rest, io)) ?? 0;
  } catch (error) {
    io.stderr.write(`busbar: ${describe(error)}\n`);
    if (error instanceof UsageError) {
      io.stderr.write(`run "busbar ${error.command ?? entry?.name ?? ''} --help" for usage\n`.replace('  ', ' '));
      return 2;
    }
    return 1;
  }
}

/**
 * The first SIGINT or SIGTERM asks the command to stop (a graceful one
 * drains and exits by itself); the second ends the process at once.
 */
function watchSignals(graceful: boolean): void {
  let received = 0;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      const exitCode = 128 + constants.signals[signal];
      if (!graceful || ++received > 1) {
        if (graceful) io.stderr.write(`busbar: ${signal} again: exiting at once\n`);
        process.exit(exitCode);
      }
      controller.abort(signal);
    });
  }
}

function overview(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  const commands = COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join('\n');
  return `Usage: busbar <command> [options]

Busbar: an event bus with a durable log, served over HTTP, WebSocket and SSE.

Commands:
${commands}

Options:
  -h, --help     show help (also "busbar <command> --help")
  -v, --version  print the version

Commands that talk to a server take --server <url> (env BUSBAR_SERVER, default
http://127.0.0.1:2872) and --api-key <key> (env BUSBAR_API_KEY).`;
}

function version(): string {
  // The same relative path from src/cli/ and from dist/cli/.
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === 'string' ? code : error.name}: ${error.message}`;
  }
  return `BUSBAR_ERR_INTERNAL: ${String(error)}`;
}
