import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReceivedEvent } from '../client/index.ts';
import { eventLineFormat } from './event-line.ts';

const event = {
  specversion: '1.0',
  id: 'e-1',
  type: 'order.created',
  source: 'shop',
  time: new Date(2026, 0, 5, 10, 31, 2, 117).toISOString(),
  subject: 'o-1',
  data: { id: 'o-1', total: 250 },
  sequence: 41,
} as ReceivedEvent;

describe('how tail writes an event', () => {
  it('writes time of day, position, topic, subject and compact data for people', () => {
    const line = eventLineFormat({ pretty: true, colour: false, columns: undefined });
    assert.equal(line(event), '10:31:02.117  #41  order.created  o-1  {"id":"o-1","total":250}\n');
  });

  it('cuts the data, never the fields before it, to keep one event on one line of the terminal', () => {
    const line = eventLineFormat({ pretty: true, colour: false, columns: 50 })(event);
    assert.equal(line, '10:31:02.117  #41  order.created  o-1  {"id":"o-…\n');
    assert.equal(line.length - 1, 49);
  });

  it('colours the fields when asked, and writes the CloudEvent as JSON for programs', () => {
    const cyan = `${String.fromCharCode(27)}[36m#41${String.fromCharCode(27)}[39m`;
    assert.ok(eventLineFormat({ pretty: true, colour: true, columns: undefined })(event).includes(cyan));
    assert.deepEqual(JSON.parse(eventLineFormat({ pretty: false, colour: false, columns: undefined })(event)), event);
  });

  it('shows binary data by its size', () => {
    const { data: _data, ...rest } = event;
    const bytes = { ...rest, data_base64: 'AAH+/w==' } as unknown as ReceivedEvent;
    assert.match(eventLineFormat({ pretty: true, colour: false, columns: undefined })(bytes), /o-1 {2}<4 bytes>\n$/);
  });
});
