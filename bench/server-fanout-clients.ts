/**
 * A crowd of streaming clients for the fan-out scenarios, in its own
 * process: `count` WebSocket or SSE connections to one server. Each event
 * carries its publish time (`"sent":<wall-clock ms>`, the last field of its
 * data); every client reads it out of the raw bytes — no JSON parse, so the
 * crowd stays cheap next to the server it measures — and records the
 * publish→receive latency in one histogram for the whole crowd.
 */
import { get, type IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { serve } from './server-children.ts';
import { LatencyHistogram, type LatencySummary, wallClockMs } from './server-latency-histogram.ts';

export interface ConnectArgs {
  kind: 'ws' | 'sse';
  /** ws:// or http:// URL, with the subscription in its query where the server needs one. */
  url: string;
  count: number;
  /** A WebSocket is ready on its first message (Busbar's `subscribed`) rather than on open. */
  readyOnFirstMessage: boolean;
}

export interface ExpectResult {
  /** Events received since `expect` was called, over all clients. */
  received: number;
  expected: number;
  latency: LatencySummary;
  /** Wall-clock ms of the last receipt. */
  lastReceivedAt: number;
  /** Connections that closed since they were opened (a slow-consumer cut-off, say). */
  closed: number;
}

const SENT = Buffer.from('"sent":');
const BLANK_LINE = Buffer.from('\n\n');
const HANDSHAKES_AT_ONCE = 100;

const latency = new LatencyHistogram();
const sockets: WebSocket[] = [];
const responses: IncomingMessage[] = [];
let received = 0;
let lastReceivedAt = 0;
let closed = 0;
let waiting: { target: number; done(): void } | undefined;

/** The number after `"sent":` at `index`: digits, then an optional fraction. */
function numberAt(bytes: Buffer, index: number): number {
  let value = 0;
  let byte = bytes[index];
  while (byte !== undefined && byte >= 48 && byte <= 57) {
    value = value * 10 + byte - 48;
    byte = bytes[++index];
  }
  if (byte !== 46) return value;
  let scale = 0.1;
  byte = bytes[++index];
  while (byte !== undefined && byte >= 48 && byte <= 57) {
    value += (byte - 48) * scale;
    scale /= 10;
    byte = bytes[++index];
  }
  return value;
}

/** Records every stamped event in `bytes` (whole frames or whole SSE messages). */
function receive(bytes: Buffer, end: number): void {
  let at = bytes.indexOf(SENT);
  if (at === -1 || at >= end) return;
  const now = wallClockMs();
  while (at !== -1 && at < end) {
    latency.record(now - numberAt(bytes, at + SENT.length));
    received++;
    at = bytes.indexOf(SENT, at + SENT.length);
  }
  lastReceivedAt = now;
  if (waiting !== undefined && received >= waiting.target) waiting.done();
}

function openWebSocket(url: string, readyOnFirstMessage: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    sockets.push(socket);
    let ready = false;
    const becomeReady = () => {
      ready = true;
      resolve();
    };
    socket.on('open', () => !readyOnFirstMessage && becomeReady());
    socket.on('message', (data: Buffer) => {
      if (!ready) becomeReady();
      receive(data, data.length);
    });
    socket.on('error', (error) => !ready && reject(error));
    socket.on('close', () => closed++);
  });
}

function openEventStream(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const outgoing = get(url, { agent: false }, (response) => {
      if (response.statusCode !== 200) {
        reject(new Error(`GET ${url} answered ${response.statusCode}`));
        response.resume();
        return;
      }
      responses.push(response);
      let ready = false;
      let carry: Buffer | undefined;
      response.on('data', (chunk: Buffer) => {
        if (!ready) {
          ready = true; // the first chunk is the stream's `retry:` line
          resolve();
        }
        const bytes = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
        // Only whole messages: one may be split across chunks.
        const end = bytes.lastIndexOf(BLANK_LINE);
        if (end === -1) {
          carry = bytes;
          return;
        }
        receive(bytes, end);
        carry = end + 2 < bytes.length ? bytes.subarray(end + 2) : undefined;
      });
      response.on('close', () => closed++);
    });
    outgoing.on('error', reject);
  });
}

async function connect(args: ConnectArgs): Promise<number> {
  for (let opened = 0; opened < args.count; opened += HANDSHAKES_AT_ONCE) {
    const batch = Math.min(HANDSHAKES_AT_ONCE, args.count - opened);
    await Promise.all(
      Array.from({ length: batch }, () => (args.kind === 'ws' ? openWebSocket(args.url, args.readyOnFirstMessage) : openEventStream(args.url))),
    );
  }
  return sockets.length + responses.length;
}

/** Forgets what was received so far: the start of a measurement. */
function reset(): void {
  latency.reset();
  received = 0;
}

/** Resolves once `messages` events per client have arrived since `reset` (in total), or after `timeoutMs`. */
function expect({ messages, timeoutMs }: { messages: number; timeoutMs: number }): Promise<ExpectResult> {
  const target = messages * (sockets.length + responses.length);
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      waiting = undefined;
      resolve({ received, expected: target, latency: latency.summary(), lastReceivedAt, closed });
    };
    const timer = setTimeout(finish, timeoutMs);
    if (received >= target) finish();
    else waiting = { target, done: finish };
  });
}

function close(): void {
  for (const socket of sockets) socket.terminate();
  for (const response of responses) response.destroy();
}

serve({ connect, reset, expect, close });
