import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type EventStreamMessage, EventStreamParser } from './event-stream-parser.ts';

function parse(pieces: string[]): { messages: EventStreamMessage[]; comments: number } {
  const messages: EventStreamMessage[] = [];
  let comments = 0;
  const parser = new EventStreamParser((message) => messages.push(message), () => comments++);
  for (const piece of pieces) parser.push(piece);
  return { messages, comments };
}

describe('the event-stream parser', () => {
  it('dispatches a message at each blank line with its id, event and data', () => {
    const { messages } = parse(['retry: 1000\n\nid: 41\nevent: order.created\ndata: {"a":1}\n\nid: 42\nevent: order.paid\ndata: {"b":2}\n\n']);
    assert.deepEqual(messages, [
      { id: '41', event: 'order.created', data: '{"a":1}' },
      { id: '42', event: 'order.paid', data: '{"b":2}' },
    ]);
  });

  it('puts a message together from pieces split anywhere, CRLF and CR line ends included', () => {
    const text = 'id: 7\r\nevent: a.b\r\ndata: x\r\n\r\nid: 8\rdata: y\r\r';
    for (let cut = 1; cut < text.length; cut++) {
      const { messages } = parse([text.slice(0, cut), text.slice(cut)]);
      assert.deepEqual(messages, [{ id: '7', event: 'a.b', data: 'x' }, { id: '8', event: undefined, data: 'y' }], `cut at ${cut}`);
    }
  });

  it('joins data lines with a line feed, counts comments and holds back a message without its blank line', () => {
    const { messages, comments } = parse([': heartbeat\n\ndata: one\ndata: two\n\n: heartbeat\n\nid: 9\ndata: torn']);
    assert.deepEqual(messages, [{ id: undefined, event: undefined, data: 'one\ntwo' }]);
    assert.equal(comments, 2);
  });
});
