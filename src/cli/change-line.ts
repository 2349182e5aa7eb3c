import { styleText } from 'node:util';
import type { ChangeData } from '../cdc/index.ts';
import { serializeEvent } from '../core/cloudevents.ts';
import type { BusbarEvent } from '../core/event.ts';

type Style = Parameters<typeof styleText>[0];

/**
 * How `busbar cdc` prints a change: one JSON CloudEvent per line for
 * programs, or a line for people — commit time, position (`lsn:index`),
 * topic, key, and what changed as compact JSON (the row for INSERT, READ
 * and DELETE; `{ column: [old, new] }` for an UPDATE), cut to the
 * terminal's width, in colour when asked.
 *
 * @example
 * ```ts
 * const line = changeLineFormat({ pretty: true, colour: false, columns: 120 });
 * line(event) // '10:31:02.117  0/1A2B3C40:1  cdc.public.orders.update  42  {"total":["12.50","15.00"]}'
 * ```
 */
export function changeLineFormat(options: { pretty: boolean; colour: boolean; columns: number | undefined }): (event: BusbarEvent<ChangeData>) => string {
  if (!options.pretty) return (event) => `${serializeEvent(event)}\n`;
  const paint = options.colour
    ? (style: Style, text: string) => styleText(style, text, { validateStream: false })
    : (_style: Style, text: string) => text;
  const columns = options.columns;
  return (event) => {
    const change = event.data;
    const time = timeOfDay(change.timestamp);
    const position = `${change.lsn}:${change.index}`;
    const subject = event.subject === undefined ? '' : `  ${event.subject}`;
    const head = `${time}  ${position}  ${event.type}${subject}`;
    let body = bodyOf(change);
    // One change, one line (short of the last column, where terminals wrap): the body gives way, never the fields before it.
    if (columns !== undefined && columns > 0 && head.length + 2 + body.length >= columns) body = `${body.slice(0, Math.max(columns - head.length - 4, 0))}…`;
    return `${paint('dim', time)}  ${paint('cyan', position)}  ${paint(['bold', 'green'], event.type)}${
      subject === '' ? '' : `  ${paint('yellow', event.subject!)}`
    }${body === '' ? '' : `  ${body}`}\n`;
  };
}

function bodyOf(change: ChangeData): string {
  if (change.action === 'UPDATE' && change.changes !== null) {
    return JSON.stringify(Object.fromEntries(change.changes.map((each) => [each.column, [each.old, each.new]])));
  }
  return change.data === null ? '' : JSON.stringify(change.data);
}

/** The local time of day to the millisecond: `10:31:02.117`. */
function timeOfDay(time: string): string {
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return '--:--:--.---';
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}
