import { parseArgs } from 'node:util';
import { BusbarError } from '../core/errors.ts';

/** A stream the CLI writes to; `isTTY` and `columns` are set for terminals. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** What a command runs with: the process's streams and environment, and the interrupt signal. */
export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted by the first SIGINT or SIGTERM; a second one ends the process at once. */
  readonly signal: AbortSignal;
}

/** A command's entry point; resolves with the exit code (0 when nothing is returned). */
export type RunCommand = (args: string[], io: CliIo) => Promise<number | void>;

/**
 * A mistake on the command line: reported like any error, but the exit code is 2.
 *
 * @example
 * ```ts
 * throw new UsageError('--from is required: the first position to copy', 'replay');
 * // busbar: BUSBAR_ERR_INVALID_ARGUMENT: --from is required: the first position to copy
 * // run "busbar replay --help" for usage
 * ```
 */
export class UsageError extends BusbarError {
  readonly command: string | undefined;

  constructor(message: string, command?: string, cause?: unknown) {
    super('BUSBAR_ERR_INVALID_ARGUMENT', message, { cause });
    this.name = 'UsageError';
    this.command = command;
  }
}

/** One flag, as `parseArgs` takes it plus what help shows. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** The value's name in help: `--from <position>`. */
  readonly value?: string;
  readonly description: string;
}

/** A command's command line: what help prints and what parsing accepts. */
export interface CommandLine {
  readonly name: string;
  /** After `busbar <name> `: `<type> <json|-> [options]`. */
  readonly usage: string;
  readonly description: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly minPositionals?: number;
  readonly maxPositionals?: number;
  /** Lines after the options: examples, notes. */
  readonly epilogue?: string;
}

/** `--server` and `--api-key`, which every command that talks to a server takes. */
export const SERVER_FLAGS: Readonly<Record<string, FlagSpec>> = {
  server: { type: 'string', value: 'url', description: 'the Busbar server (env BUSBAR_SERVER; default http://127.0.0.1:2872)' },
  'api-key': { type: 'string', value: 'key', description: 'API key, sent as a bearer token (env BUSBAR_API_KEY)' },
};

const HELP_FLAG: FlagSpec = { type: 'boolean', short: 'h', description: 'show this help' };

/** The parsed command line; undefined when `--help` was asked for (and printed). */
export type Parsed = { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } | undefined;

/**
 * Parses a command's arguments with `node:util` `parseArgs` (strict: an
 * unknown flag or a missing value is a `UsageError`, exit code 2) and
 * prints its help for `--help`.
 *
 * @example
 * ```ts
 * const parsed = parseCommandLine(PUBLISH, args, io);
 * if (parsed === undefined) return; // help printed
 * ```
 */
export function parseCommandLine(line: CommandLine, args: string[], io: CliIo): Parsed {
  const options = Object.fromEntries(
    Object.entries({ ...line.flags, help: HELP_FLAG }).map(([name, flag]) => [
      name,
      // parseArgs refuses keys that are present but undefined.
      { type: flag.type, ...(flag.short === undefined ? {} : { short: flag.short }), ...(flag.multiple === undefined ? {} : { multiple: flag.multiple }) },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, ''), line.name, error);
  }
  if (parsed.values.help === true) {
    io.stdout.write(`${helpOf(line)}\n`);
    return undefined;
  }
  const count = parsed.positionals.length;
  if (count < (line.minPositionals ?? 0) || count > (line.maxPositionals ?? Number.POSITIVE_INFINITY)) {
    throw new UsageError(`expected ${line.usage.replace(/ ?\[options\]/, '')}, got ${count === 0 ? 'nothing' : JSON.stringify(parsed.positionals.join(' '))}`, line.name);
  }
  return parsed as Parsed;
}

/**
 * The help text of a command: usage, description, every flag.
 *
 * @example
 * ```ts
 * console.log(helpOf(PUBLISH)); // Usage: busbar publish <type> <json|-> [options] …
 * ```
 */
export function helpOf(line: CommandLine): string {
  const flags = Object.entries({ ...line.flags, help: HELP_FLAG }).map(([name, flag]) => [
    `${flag.short === undefined ? '    ' : `-${flag.short}, `}--${name}${flag.value === undefined ? '' : ` <${flag.value}>`}`,
    flag.description,
  ]);
  const width = Math.max(...flags.map(([flag]) => flag!.length));
  const options = flags.map(([flag, description]) => `  ${flag!.padEnd(width)}  ${description}`).join('\n');
  return `Usage: busbar ${line.name} ${line.usage}\n\n${line.description}\n\nOptions:\n${options}${line.epilogue === undefined ? '' : `\n\n${line.epilogue}`}`;
}

/**
 * The server and key from `--server`/`--api-key`, else `BUSBAR_SERVER`/`BUSBAR_API_KEY`, else the default.
 *
 * @example
 * ```ts
 * const client = createClient(serverOf(parsed.values, io.env));
 * ```
 */
export function serverOf(values: Record<string, unknown>, env: CliIo['env']): { url: string; apiKey: string | undefined } {
  const url = (values.server as string | undefined) ?? nonEmpty(env.BUSBAR_SERVER) ?? 'http://127.0.0.1:2872';
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new UsageError(`--server must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  }
  return { url, apiKey: (values['api-key'] as string | undefined) ?? nonEmpty(env.BUSBAR_API_KEY) };
}

/**
 * A whole number ≥ `min` from a flag, or a `UsageError` naming the flag.
 *
 * @example
 * ```ts
 * integerFlag('batch', '100', 1) // 100
 * integerFlag('batch', 'lots', 1) // throws: --batch must be a whole number ≥ 1, got "lots"
 * ```
 */
export function integerFlag(name: string, value: unknown, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    throw new UsageError(`--${name} must be a whole number ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/**
 * Writes a result to stdout: the human sentence in a terminal, one line of
 * JSON when piped, so scripts get something to parse.
 *
 * @example
 * ```ts
 * writeResult(io, `published ${id} at position ${position}`, { id, position });
 * ```
 */
export function writeResult(io: CliIo, human: string, json: unknown): void {
  io.stdout.write(io.stdout.isTTY === true ? `${human}\n` : `${JSON.stringify(json)}\n`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
