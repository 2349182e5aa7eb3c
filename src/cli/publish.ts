import { text } from 'node:stream/consumers';
import { createClient } from '../client/index.ts';
import { type CliIo, type CommandLine, parseCommandLine, SERVER_FLAGS, serverOf, UsageError, writeResult } from './command.ts';

export const PUBLISH: CommandLine = {
  name: 'publish',
  usage: '<type> <json|-> [options]',
  description:
    'Publishes one event of topic <type> whose data is <json> (or standard input, with -) and prints\n' +
    'its id and log position once the server has committed it. A string is JSON too: \'"hello"\'.',
  minPositionals: 2,
  maxPositionals: 2,
  flags: {
    subject: { type: 'string', value: 'subject', description: 'the event\'s subject (its scope: a row, a library…)' },
    id: { type: 'string', value: 'id', description: 'the event id (default: a new UUIDv7); publishing an id again stores it once' },
    source: { type: 'string', value: 'uri', description: 'the CloudEvents source (default: the server\'s)' },
    key: { type: 'string', value: 'key', description: 'the partition key: events with one key are handled in order' },
    ...SERVER_FLAGS,
  },
  epilogue: `Examples:
  busbar publish order.created '{"id":"o-1","total":250}' --subject o-1
  echo '{"id":"o-2"}' | busbar publish order.created -`,
};

/**
 * `busbar publish <type> <json|->`: one event, printed back as
 * `published <id> at position <n>` in a terminal, `{"id","position"}` when piped.
 *
 * @example
 * ```ts
 * await run(['order.created', '{"id":"o-1"}', '--subject', 'o-1'], io);
 * ```
 */
export async function run(args: string[], io: CliIo): Promise<number | void> {
  const parsed = parseCommandLine(PUBLISH, args, io);
  if (parsed === undefined) return;
  const { values, positionals } = parsed;
  const [type, json] = positionals as [string, string];
  const source = json === '-' ? await text(io.stdin) : json;
  let data: unknown;
  try {
    data = JSON.parse(source);
  } catch (error) {
    throw new UsageError(`the data ${json === '-' ? 'on standard input' : JSON.stringify(json)} is not JSON (${(error as Error).message}); quote a string: '"hello"'`, 'publish', error);
  }
  const client = createClient(serverOf(values, io.env));
  const accepted = await client.publish(type, data, {
    subject: values.subject as string | undefined,
    id: values.id as string | undefined,
    source: values.source as string | undefined,
    key: values.key as string | undefined,
  });
  writeResult(io, `published ${accepted.id} at position ${accepted.position}`, accepted);
}
