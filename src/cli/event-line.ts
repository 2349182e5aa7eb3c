import { styleText } from 'node:util';
import type { ReceivedEvent } from '../client/index.ts';

type Style = Parameters<typeof styleText>[0];

/**
 * How `busbar tail` writes an event: one JSON CloudEvent per line for
 * programs, or a line for people — time, position, topic, subject and the
 * data as compact JSON, cut to the terminal's width, in colour when asked.
 *
 * @example
 * ```ts
 * const line = eventLineFormat({ pretty: true, colour: false, columns: 100 });
 * line(event) // '10:31:02.117  #41  order.created  o-1  {"id":"o-1","total":250}'
 * ```
 */
export function eventLineFormat(options: { pretty: boolean; colour: boolean; columns: number | undefined }): (event: ReceivedEvent) => string {
  if (!options.pretty) return (event) => `${JSON.stringify(event)}\n`;
  const paint = options.colour
    ? (style: Style, text: string) => styleText(style, text, { validateStream: false })
    : (_style: Style, text: string) => text;
  const columns = options.columns;
  return (event) => {
    const subject = event.subject === undefined ? '' : `  ${event.subject}`;
    const head = `${timeOfDay(event.time)}  #${event.sequence}  ${event.type}${subject}`;
    let data = dataOf(event);
    // One event, one line (short of the last column, where terminals wrap): the data gives way, never the fields before it.
    if (columns !== undefined && columns > 0 && head.length + 2 + data.length >= columns) data = `${data.slice(0, Math.max(columns - head.length - 4, 0))}…`;
    return `${paint('dim', timeOfDay(event.time))}  ${paint('cyan', `#${event.sequence}`)}  ${paint(['bold', 'green'], event.type)}${
      subject === '' ? '' : `  ${paint('yellow', event.subject!)}`
    }  ${data}\n`;
  };
}

/** The local time of day to the millisecond: `10:31:02.117`. */
function timeOfDay(time: string | undefined): string {
  const date = time === undefined ? undefined : new Date(time);
  if (date === undefined || Number.isNaN(date.getTime())) return '--:--:--.---';
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

function dataOf(event: ReceivedEvent): string {
  if (typeof event.data_base64 === 'string') {
    const base64 = event.data_base64;
    const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
    return `<${Math.floor((base64.length * 3) / 4) - padding} bytes>`;
  }
  return event.data === undefined ? '' : (JSON.stringify(event.data) ?? '');
}
