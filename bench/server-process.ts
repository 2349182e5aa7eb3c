/**
 * One server of the server suite, in its own process (forked with
 * `--expose-gc`, so that memory is measured after a collection):
 *
 * - `busbar-sqlite <file>`: Busbar's server on a SQLite log (synchronous = FULL, the default);
 * - `busbar-postgres <url>`: Busbar's server on PostgreSQL, in a fresh schema dropped at the end;
 * - `bare-fastify`: a Fastify route `POST /v1/events` that parses the JSON body and answers 202;
 * - `bare-ws`: `node:http` plus a `ws` WebSocketServer; `POST /publish` sends one frame, encoded
 *   once, to every client: the broadcast loop from ws's README, the limit for fan-out;
 * - `bare-sse`: `node:http`; `POST /publish` writes one SSE message, encoded once, to every open
 *   `GET /stream` response.
 *
 * The bare servers' frames have the shape and size of Busbar's (the same
 * CloudEvent attributes around the published data), so both send the same
 * number of bytes per client.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { createServer } from '../src/server/index.ts';
import { streamingStats } from '../src/server/streaming/index.ts';
import { failToStart, serve } from './server-children.ts';

interface Running {
  url: string;
  /** Streaming connections the server holds now. */
  connections(): number;
  close(): Promise<void>;
}

// How late the event loop runs timers: a server whose loop is blocked (a
// synchronous fsync, a long fan-out) delays every client at once.
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();

const [kind = '', target = ''] = process.argv.slice(2);
start(kind, target).then(serveRunning, failToStart);

function serveRunning(running: Running): void {
  serve({
    url: () => running.url,
    /** The event loop's delay since the last call, ms. */
    loopDelay: () => {
      const delay = { p99: loopDelay.percentile(99) / 1e6 };
      loopDelay.reset();
      return delay;
    },
    connections: () => running.connections(),
    memory: () => {
      // Twice: the first collection can leave garbage that finalizers release.
      globalThis.gc?.();
      globalThis.gc?.();
      return process.memoryUsage();
    },
    close: () => running.close(),
  });
}

async function start(kind: string, target: string): Promise<Running> {
  switch (kind) {
    case 'busbar-sqlite':
      return busbar({ data: target });
    case 'busbar-postgres':
      return busbarOnPostgres(target);
    case 'bare-fastify':
      return bareFastify();
    case 'bare-ws':
      return bareWebSocket();
    case 'bare-sse':
      return bareSse();
    default:
      throw new Error(`unknown server kind "${kind}"`);
  }
}

async function busbar(options: Parameters<typeof createServer>[0]): Promise<Running> {
  const server = await createServer({ port: 0, logger: false, ...options });
  const { url } = await server.listen();
  return { url, connections: () => streamingStats(server.app).connections, close: () => server.close() };
}

async function busbarOnPostgres(connectionString: string): Promise<Running> {
  const [{ createPostgresStore }, { default: pg }] = await Promise.all([import('../src/store/postgres/index.ts'), import('pg')]);
  const schema = `busbar_bench_${randomBytes(4).toString('hex')}`;
  const store = await createPostgresStore({ connectionString, schema });
  const running = await busbar({ store });
  return {
    ...running,
    async close() {
      await running.close();
      await store.close();
      const client = new pg.Client({ connectionString });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await client.end();
    },
  };
}

async function bareFastify(): Promise<Running> {
  const app = Fastify({ logger: false });
  app.post('/v1/events', async (_request, reply) => reply.code(202).send());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, connections: () => 0, close: () => app.close() };
}

/** A frame of Busbar's shape and size around the published data. */
function frameOf(position: number, body: string, sse: boolean): Buffer {
  const { data } = JSON.parse(body) as { data: unknown };
  const event = JSON.stringify({
    specversion: '1.0',
    id: randomUUID(),
    type: 'bench.fan',
    source: 'busbar',
    time: new Date().toISOString(),
    data,
    sequence: position,
  });
  return Buffer.from(
    sse ? `id: ${position}\nevent: bench.fan\ndata: ${event}\n\n` : `{"op":"event","sub":"default","position":${position},"event":${event}}`,
  );
}

/** A `node:http` server whose `POST /publish` hands the body to `publish` and answers 202. */
async function bareHttp(publish: (body: string) => void, route?: (request: IncomingMessage, response: ServerResponse) => boolean) {
  const server = createHttpServer((request, response) => {
    if (route?.(request, response)) return;
    if (request.method !== 'POST' || request.url !== '/publish') {
      response.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      publish(Buffer.concat(chunks).toString('utf8'));
      response.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function bareWebSocket(): Promise<Running> {
  let position = 0;
  const clients = new Set<WebSocket>();
  const server = await bareHttp((body) => {
    const frame = frameOf(++position, body, false);
    for (const client of clients) client.send(frame, { binary: false });
  });
  const sockets = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false });
  sockets.on('connection', (socket) => {
    clients.add(socket);
    socket.on('close', () => clients.delete(socket));
    socket.on('error', () => {});
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => clients.size,
    async close() {
      for (const client of clients) client.terminate();
      sockets.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function bareSse(): Promise<Running> {
  let position = 0;
  const responses = new Set<ServerResponse>();
  const server = await bareHttp(
    (body) => {
      const frame = frameOf(++position, body, true);
      for (const response of responses) response.write(frame);
    },
    (request, response) => {
      if (request.method !== 'GET' || !request.url?.startsWith('/stream')) return false;
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform' });
      response.write('retry: 1000\n\n');
      responses.add(response);
      response.on('close', () => responses.delete(response));
      return true;
    },
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => responses.size,
    async close() {
      for (const response of responses) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
