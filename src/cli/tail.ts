import { once } from 'node:events';
import { createClient, type StartFrom } from '../client/index.ts';
import { type CliIo, type CommandLine, integerFlag, parseCommandLine, SERVER_FLAGS, serverOf } from './command.ts';
import { eventLineFormat } from './event-line.ts';

export const TAIL: CommandLine = {
  name: 'tail',
  usage: '<pattern>… [options]',
  description:
    'Follows the events of the topics matching the patterns (order.created, order.*, order.>) live,\n' +
    'one per line: time, position, topic, subject and data in a terminal, one JSON CloudEvent per line\n' +
    'when piped. It reconnects by itself and resumes after the last event printed: nothing is missed,\n' +
    'nothing repeats. Ctrl-C stops it.',
  minPositionals: 1,
  flags: {
    from: { type: 'string', value: 'N|beginning|end', description: 'where to start: a position (inclusive), beginning or end (default end: new events only)' },
    subject: { type: 'string', value: 'subject', description: 'only events with this subject' },
    ...SERVER_FLAGS,
  },
  epilogue: `Examples:
  busbar tail 'order.*'
  busbar tail '>' --from beginning | jq .data`,
};

/**
 * `busbar tail <pattern>…`: a live subscription printed line by line until
 * Ctrl-C (exit 0). Printing waits for a slow reader of stdout, and the
 * subscription's bounded buffer then pauses the connection.
 *
 * @example
 * ```ts
 * await run(['order.*', '--from', 'beginning'], io);
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number | void> {
  const parsed = parseCommandLine(TAIL, args, io);
  if (parsed === undefined) return;
  const { values, positionals } = parsed;
  const from = startOf(values.from as string | undefined);
  const client = createClient(serverOf(values, io.env));
  const terminal = io.stdout.isTTY === true;
  const format = eventLineFormat({ pretty: terminal, colour: terminal && io.env.NO_COLOR === undefined, columns: io.stdout.columns });
  // Set by a lost connection, so the next `open` is reported as a resumption.
  let lost = false;
  const subscription = client.subscribe(
    positionals,
    (event) => {
      if (!io.stdout.write(format(event))) return once(io.stdout, 'drain');
    },
    {
      from,
      subject: values.subject as string | undefined,
      signal: io.signal,
      onStateChange: (change) => {
        if (change.state === 'reconnecting') {
          lost = true;
          io.stderr.write(`busbar: ${(change.error as Error).message}; reconnecting in ${change.delayMs} ms (attempt ${change.attempt})\n`);
        } else if (change.state === 'open' && lost) {
          lost = false;
          io.stderr.write(`busbar: reconnected; resuming after the last event received (last printed: #${subscription.position})\n`);
        }
      },
    },
  );
  await subscription.closed;
}

function startOf(from: string | undefined): StartFrom | undefined {
  if (from === undefined || from === 'end' || from === 'beginning') return from;
  return integerFlag('from', from);
}
