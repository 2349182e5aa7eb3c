/** One dispatched Server-Sent Events message. */
export interface EventStreamMessage {
  /** The `id:` field (on a Busbar stream, the log position), if the message had one. */
  readonly id: string | undefined;
  /** The `event:` field (the topic). */
  readonly event: string | undefined;
  readonly data: string;
}

/**
 * Parses a `text/event-stream` as the WHATWG rules have it: lines end in
 * LF, CR or CRLF; a blank line dispatches the message gathered so far;
 * `:` starts a comment; `data` lines join with LF. Feed it decoded text in
 * pieces of any size.
 *
 * @example
 * ```ts
 * const parser = new EventStreamParser((message) => console.log(message.id, message.data), () => {});
 * parser.push('id: 41\nevent: order.created\ndata: {"id":"o-1"}\n\n');
 * ```
 */
export class EventStreamParser {
  private readonly onMessage: (message: EventStreamMessage) => void;
  private readonly onComment: () => void;
  private pending = '';
  private skipLineFeed = false;
  private data: string[] = [];
  private id: string | undefined;
  private event: string | undefined;

  constructor(onMessage: (message: EventStreamMessage) => void, onComment: () => void) {
    this.onMessage = onMessage;
    this.onComment = onComment;
  }

  push(text: string): void {
    let start = 0;
    // A CRLF split across two pieces: the LF belongs to the line already ended.
    if (this.skipLineFeed && text.startsWith('\n')) start = 1;
    this.skipLineFeed = false;
    for (let index = start; index < text.length; index++) {
      const code = text.charCodeAt(index);
      if (code !== 10 && code !== 13) continue;
      const line = this.pending + text.slice(start, index);
      this.pending = '';
      if (code === 13) {
        if (index + 1 === text.length) this.skipLineFeed = true;
        else if (text.charCodeAt(index + 1) === 10) index++;
      }
      start = index + 1;
      this.line(line);
    }
    this.pending += text.slice(start);
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.onMessage({ id: this.id, event: this.event, data: this.data.join('\n') });
      this.data = [];
      this.event = undefined;
      this.id = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      this.onComment();
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
    else if (field === 'event') this.event = value;
  }
}
