/**
 * Slow consumers against `busbar serve`: one WebSocket and one SSE client
 * that stop reading, among 50 healthy clients (25 WebSocket, 25 SSE), while
 * 5,000 events are published. The stalled two are cut off (close 4008, the
 * SSE response dropped) once their unsent data passes the send buffer cap;
 * every healthy client receives all 5,000 events in order; the server's
 * resident memory stays bounded. The publisher stays at most WINDOW events
 * ahead of the slowest healthy client — a healthy client is one that keeps
 * up — so only the stalled ones ever fall far behind.
 */
import assert from 'node:assert/strict';
import { get, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type BusbarProcess, type Memory, scratchDirectory, startBusbar } from './busbar-process.fixture.ts';

const EVENTS = 5_000;
const HEALTHY_WS = 25;
const HEALTHY_SSE = 25;
const BATCH = 100;
/**
 * The server's cap on unsent bytes per connection (`--send-buffer-bytes`). On
 * top of it the kernel holds 3.5 to 4.5 MB per stalled socket on loopback
 * here, so the events are padded for 5,000 of them (about 7.7 MB) to overflow
 * both with room to spare.
 */
const SEND_BUFFER_BYTES = 512 * 1024;
const PADDING = 'x'.repeat(1400);
/**
 * Most events the publisher runs ahead of the slowest healthy client: with a
 * batch on top, about 470 KB, so a healthy client stays under the cap even
 * if the kernel buffered nothing for it.
 */
const WINDOW = 200;
/**
 * A gross guard on the server's peak resident memory (it runs at about 100 MB
 * with every client connected and peaks near 200 MB). What shows the buffers
 * are bounded is the cut-off itself; the numbers are reported.
 */
const PEAK_RSS_LIMIT = 400 * 1024 * 1024;
const PATIENCE_MS = 30_000;

/** What a client checks as events arrive, in constant memory: each position is the one after the last. */
class Receipt {
  count = 0;
  last = 0;
  problem: string | undefined;

  take(position: number, event: { sequence: number; type: string; data: { n: number } }): void {
    if (this.problem !== undefined) return;
    if (this.count > 0 && position !== this.last + 1) this.problem = `position ${position} after ${this.last}`;
    else if (event.sequence !== position || event.type !== 'load.tick' || event.data.n !== this.count) {
      this.problem = `event #${this.count} at ${position} is ${JSON.stringify({ ...event, data: { n: event.data.n } })}`;
    }
    this.last = position;
    this.count++;
  }
}

interface HealthyClient {
  readonly name: string;
  readonly receipt: Receipt;
  /** True once the connection ended (a healthy one must not). */
  readonly ended: boolean;
  close(): void;
}

async function healthyWs(server: BusbarProcess, name: string, pattern: string): Promise<HealthyClient> {
  const receipt = new Receipt();
  const socket = new WebSocket(server.wsUrl);
  let ended = false;
  socket.on('close', () => (ended = true));
  socket.on('error', () => {});
  const subscribed = new Promise<void>((resolve, reject) => {
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { op: string; position: number; event: never };
      if (frame.op === 'event') receipt.take(frame.position, frame.event);
      else if (frame.op === 'subscribed') resolve();
      else reject(new Error(`${name}: ${String(data)}`));
    });
  });
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ op: 'subscribe', id: name, topics: [pattern] }));
  await subscribed;
  return { name, receipt, get ended() { return ended; }, close: () => socket.close() };
}

async function healthySse(server: BusbarProcess, name: string, pattern: string): Promise<HealthyClient> {
  const receipt = new Receipt();
  const controller = new AbortController();
  const response = await fetch(`${server.url}/v1/stream?topics=${encodeURIComponent(pattern)}`, { signal: controller.signal });
  assert.equal(response.status, 200);
  let ended = false;
  void (async () => {
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      const reader = response.body!.getReader();
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        buffered += decoder.decode(read.value, { stream: true });
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const message = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const id = /^id: (\d+)$/m.exec(message);
          const data = /^data: (.*)$/m.exec(message);
          if (id !== null && data !== null) receipt.take(Number(id[1]), JSON.parse(data[1]!));
        }
      }
    } catch {
      // aborted at the end of the test, or cut off: `ended` tells
    }
    ended = true;
  })();
  return { name, receipt, get ended() { return ended; }, close: () => controller.abort() };
}

/** Positions of whole messages in what a stalled SSE client read once it resumed. */
function ssePositions(text: string): number[] {
  return text
    .split('\n\n')
    .slice(0, -1) // a message without its closing blank line is torn: EventSource drops it too
    .map((message) => /^id: (\d+)$/m.exec(message)?.[1])
    .filter((id) => id !== undefined)
    .map(Number);
}

async function serverCounts(server: BusbarProcess): Promise<{ connections: number; live: number }> {
  const stats = (await (await fetch(`${server.url}/v1/stats`)).json()) as { server: { streaming_connections: number; streaming_live_subscriptions: number } };
  return { connections: stats.server.streaming_connections, live: stats.server.streaming_live_subscriptions };
}

const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

describe('slow consumers against busbar serve', () => {
  const scratch = scratchDirectory('slow-consumers');
  let server: BusbarProcess;
  const healthy: HealthyClient[] = [];

  before(async () => {
    server = await startBusbar({ data: scratch.file('busbar.db'), args: ['--send-buffer-bytes', String(SEND_BUFFER_BYTES)] });
  });
  after(async () => {
    for (const client of healthy) client.close();
    await server?.stop('SIGKILL');
    scratch.remove();
  });

  it('cuts off a stalled WebSocket (4008) and a stalled SSE client while 50 healthy ones receive all 5,000 events in order', async (t) => {
    const stalledWs = new WebSocket(server.wsUrl);
    const wsFrames: string[] = [];
    stalledWs.on('message', (data) => wsFrames.push(String(data)));
    stalledWs.on('error', () => {});
    const wsClosed = new Promise<number>((resolve) => stalledWs.once('close', (code) => resolve(code)));
    await new Promise((resolve) => stalledWs.once('open', resolve));
    stalledWs.send(JSON.stringify({ op: 'subscribe', id: 'stalled', topics: ['load.*'] }));
    await new Promise<void>((resolve) => stalledWs.once('message', () => resolve()));
    stalledWs.pause(); // reads nothing more: what the server sends it piles up

    const stalledSse = await new Promise<IncomingMessage>((resolve) => get(`${server.url}/v1/stream?topics=load.>`, resolve));
    assert.equal(stalledSse.statusCode, 200);
    stalledSse.pause();

    for (let n = 0; n < HEALTHY_WS; n++) healthy.push(await healthyWs(server, `ws${n}`, n % 2 === 0 ? 'load.*' : 'load.>'));
    for (let n = 0; n < HEALTHY_SSE; n++) healthy.push(await healthySse(server, `sse${n}`, n % 2 === 0 ? 'load.*' : 'load.tick'));
    const clients = HEALTHY_WS + HEALTHY_SSE + 2;
    for (const end = Date.now() + PATIENCE_MS; (await serverCounts(server)).live < clients; ) {
      assert.ok(Date.now() < end, 'the SSE clients never became live');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const baseline = server.memory();
    let highest: Memory = baseline;

    const slowest = (): number => Math.min(...healthy.map((client) => client.receipt.count));
    const started = performance.now();
    for (let published = 0; published < EVENTS; published += BATCH) {
      for (const end = Date.now() + PATIENCE_MS; published - slowest() > WINDOW; ) {
        assert.ok(Date.now() < end, `the healthy clients stopped receiving at ${slowest()} of ${published}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const events = Array.from({ length: BATCH }, (_, k) => ({ type: 'load.tick', data: { n: published + k, padding: PADDING } }));
      const response = await fetch(`${server.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
      assert.equal(response.status, 201, await response.text());
      const now = server.memory();
      if (now.rss > highest.rss) highest = now;
    }
    for (const end = Date.now() + PATIENCE_MS; slowest() < EVENTS; ) {
      assert.ok(Date.now() < end, `the slowest healthy client has ${slowest()} of ${EVENTS} events`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const seconds = (performance.now() - started) / 1000;

    for (const client of healthy) {
      assert.equal(client.receipt.problem, undefined, `${client.name}: ${client.receipt.problem}`);
      assert.equal(client.receipt.count, EVENTS, client.name);
      assert.equal(client.ended, false, `${client.name} was cut off`);
    }
    // The two stalled clients no longer get events; every healthy one still does.
    const counts = await serverCounts(server);
    assert.equal(counts.live, HEALTHY_WS + HEALTHY_SSE);
    const { peak } = server.memory();
    t.diagnostic(
      `${EVENTS} events to ${HEALTHY_WS + HEALTHY_SSE} healthy clients in ${seconds.toFixed(1)} s; server RSS ${megabytes(baseline.rss)} ` +
        `with every client connected, ${megabytes(highest.rss)} at most while publishing, peak ${megabytes(peak)}; ` +
        `${counts.connections} connections still open after the cut-offs`,
    );
    assert.ok(peak < PEAK_RSS_LIMIT, `peak RSS ${megabytes(peak)}`);

    // Reading again, each stalled client finds what had reached it — a
    // gap-free run of events to resume after — and then the end.
    // The server drops the stalled sockets for good a short grace after the
    // cut-off, whether or not they read that far: connections go down to the healthy ones.
    for (const end = Date.now() + 10_000; (await serverCounts(server)).connections > HEALTHY_WS + HEALTHY_SSE; ) {
      assert.ok(Date.now() < end, `still ${(await serverCounts(server)).connections} connections open after the cut-offs`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    stalledWs.resume();
    // 4008 if the close frame got through before the socket was dropped;
    // a client that read nothing for the whole grace sees the drop (1006).
    assert.ok([4008, 1006].includes(await wsClosed), 'the stalled WebSocket was closed');
    const wsPositions = wsFrames
      .map((frame) => JSON.parse(frame) as { op: string; position?: number })
      .filter((frame) => frame.op === 'event')
      .map((frame) => frame.position!);
    assert.ok(wsPositions.length < EVENTS, `the stalled WebSocket got ${wsPositions.length} events`);
    assert.deepEqual(wsPositions, wsPositions.map((_, n) => (wsPositions[0] ?? 0) + n));

    let text = '';
    stalledSse.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    stalledSse.on('error', () => {});
    const sseEnded = new Promise((resolve) => stalledSse.socket.once('close', resolve));
    stalledSse.resume();
    await sseEnded;
    const ssePositionsRead = ssePositions(text);
    assert.ok(ssePositionsRead.length < EVENTS, `the stalled SSE client got ${ssePositionsRead.length} events`);
    assert.deepEqual(ssePositionsRead, ssePositionsRead.map((_, n) => (ssePositionsRead[0] ?? 0) + n));
    t.diagnostic(`the stalled clients were cut off after ${wsPositions.length} (WebSocket) and ${ssePositionsRead.length} (SSE) events`);
  });
});
