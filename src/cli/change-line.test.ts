import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChangeData, changeEvent } from '../cdc/index.ts';
import { parseEvent } from '../core/cloudevents.ts';
import { changeLineFormat } from './change-line.ts';

const origin = { source: 'postgresql://db:5432/shop', idPrefix: 'pg-1-shop' };
const timestamp = '2024-02-29T13:45:00.123456Z';

function change(overrides: Partial<ChangeData>): ChangeData {
  return {
    timestamp,
    schema: 'public',
    table: 'orders',
    action: 'INSERT',
    id: 42,
    data: { id: 42, total: '12.50' },
    old: null,
    changes: null,
    unchanged: [],
    txid: '7731',
    lsn: '0/1A2B3C40',
    index: 1,
    last: true,
    ...overrides,
  };
}

/** `HH:MM:SS.mmm` of the commit time in this machine's zone, as the line shows it. */
function localTime(): string {
  const date = new Date(timestamp);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.123`;
}

describe('printing a change', () => {
  it('writes one JSON CloudEvent per line when piped, which parses back to the same event', () => {
    const event = changeEvent(change({}), origin);
    const line = changeLineFormat({ pretty: false, colour: false, columns: undefined })(event);
    assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'));
    assert.deepEqual(parseEvent(line), event);
  });

  it('shows people the commit time, position, topic, key and row of an insert', () => {
    const line = changeLineFormat({ pretty: true, colour: false, columns: undefined })(changeEvent(change({}), origin));
    assert.equal(line, `${localTime()}  0/1A2B3C40:1  cdc.public.orders.insert  42  {"id":42,"total":"12.50"}\n`);
  });

  it('shows an update as each changed column with its old and new value, and a truncate without a body', () => {
    const format = changeLineFormat({ pretty: true, colour: false, columns: undefined });
    const update = change({ action: 'UPDATE', changes: [{ column: 'total', old: '12.50', new: '15.00' }], old: { id: 42, total: '12.50' } });
    assert.equal(format(changeEvent(update, origin)), `${localTime()}  0/1A2B3C40:1  cdc.public.orders.update  42  {"total":["12.50","15.00"]}\n`);
    const truncate = change({ action: 'TRUNCATE', id: null, data: null, index: 0 });
    assert.equal(format(changeEvent(truncate, origin)), `${localTime()}  0/1A2B3C40:0  cdc.public.orders.truncate\n`);
  });

  it('cuts the body to the terminal width, never the fields before it, and colours only when asked', () => {
    const wide = change({ data: { id: 42, note: 'x'.repeat(500) } });
    const line = changeLineFormat({ pretty: true, colour: false, columns: 80 })(changeEvent(wide, origin));
    assert.ok(line.length <= 80, `${line.length} characters`);
    assert.match(line, /cdc\.public\.orders\.insert {2}42 {2}\{"id":42,"note":"x+…\n$/);
    const coloured = changeLineFormat({ pretty: true, colour: true, columns: undefined })(changeEvent(change({}), origin));
    assert.ok(coloured.includes('\u001b['), 'ANSI colour codes');
  });
});
