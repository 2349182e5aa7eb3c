import { WebSocket } from 'ws';

/** Waits until `check` returns true, re-checking whenever `subscribe`'s callback fires; fails after `ms`. */
class Waiters {
  private readonly waiting = new Set<() => void>();

  notify(): void {
    for (const waiter of this.waiting) waiter();
  }

  until(check: () => boolean, ms: number, what: () => string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiting.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.delete(waiter);
        reject(new Error(`timed out after ${ms} ms waiting for ${what()}`));
      }, ms);
      this.waiting.add(waiter);
    });
  }
}

/** One dispatched SSE message. */
export interface SseMessage {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

export interface SseClient {
  readonly status: number;
  readonly response: Response;
  readonly messages: SseMessage[];
  readonly comments: string[];
  readonly retry: number | undefined;
  /** Resolves when the stream ends or breaks (never rejects). */
  readonly ended: Promise<void>;
  readonly isEnded: boolean;
  waitFor(count: number, ms?: number): Promise<void>;
  waitForComments(count: number, ms?: number): Promise<void>;
  abort(): void;
}

/**
 * Reads an SSE endpoint with fetch() and a small parser that follows the
 * WHATWG event-stream rules (fields, comments, blank line dispatch).
 */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  const waiters = new Waiters();
  let retry: number | undefined;
  let isEnded = false;
  const ended = (async () => {
    if (response.body === null) return;
    const decoder = new TextDecoder();
    let buffered = '';
    let data: string[] = [];
    let id: string | undefined;
    let event: string | undefined;
    try {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).replace(/\r$/, '');
          buffered = buffered.slice(newline + 1);
          if (line === '') {
            if (data.length > 0) messages.push({ id, event, data: data.join('\n') });
            data = [];
            event = undefined;
            id = undefined;
            waiters.notify();
            continue;
          }
          if (line.startsWith(':')) {
            comments.push(line.slice(1).trim());
            waiters.notify();
            continue;
          }
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'data') data.push(value);
          else if (field === 'id') id = value;
          else if (field === 'event') event = value;
          else if (field === 'retry') retry = Number(value);
        }
      }
    } catch {
      // aborted or cut off: the caller looks at what arrived
    } finally {
      isEnded = true;
      waiters.notify();
    }
  })();
  return {
    status: response.status,
    response,
    messages,
    comments,
    get retry() {
      return retry;
    },
    ended,
    get isEnded() {
      return isEnded;
    },
    waitFor: (count, ms = 10_000) =>
      waiters.until(() => messages.length >= count, ms, () => `${count} SSE messages (have ${messages.length})`),
    waitForComments: (count, ms = 10_000) =>
      waiters.until(() => comments.length >= count, ms, () => `${count} SSE comments (have ${comments.length})`),
    abort: () => controller.abort(),
  };
}

export type Frame = Record<string, any>;

export interface WsClient {
  readonly socket: WebSocket;
  readonly frames: Frame[];
  readonly closed: Promise<{ code: number; reason: string }>;
  send(message: unknown): void;
  /** The first frame (seen or to come) that matches, after those already returned by `next`. */
  next(match: (frame: Frame) => boolean, ms?: number): Promise<Frame>;
  /** Event frames of one subscription. */
  events(sub: string): Frame[];
  waitForEvents(sub: string, count: number, ms?: number): Promise<Frame[]>;
  close(): Promise<void>;
}

/** A raw `ws` client that records every frame as parsed JSON. */
export async function openWs(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
  const socket = new WebSocket(url, { headers });
  const frames: Frame[] = [];
  const used = new Set<Frame>();
  const waiters = new Waiters();
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      waiters.notify();
    }),
  );
  socket.on('message', (data) => {
    frames.push(JSON.parse(String(data)) as Frame);
    waiters.notify();
  });
  socket.on('error', () => {}); // surfaces as the close code
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const events = (sub: string) => frames.filter((frame) => frame.op === 'event' && frame.sub === sub);
  return {
    socket,
    frames,
    closed,
    send: (message) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next: async (match, ms = 10_000) => {
      let found: Frame | undefined;
      await waiters.until(
        () => (found = frames.find((frame) => !used.has(frame) && match(frame))) !== undefined,
        ms,
        () => `a matching frame; have ${JSON.stringify(frames.slice(-3))}`,
      );
      used.add(found!);
      return found!;
    },
    events,
    waitForEvents: async (sub, count, ms = 10_000) => {
      await waiters.until(() => events(sub).length >= count, ms, () => `${count} events on "${sub}" (have ${events(sub).length})`);
      return events(sub);
    },
    close: async () => {
      socket.close();
      await closed;
    },
  };
}
