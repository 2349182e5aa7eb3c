/**
 * A real Busbar server for the client tests: a fresh SQLite file in a
 * temporary directory (so test files run in parallel), on a random port
 * that a restart keeps, so a client can reconnect to the same URL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BusbarServer, createServer, type ServerOptions } from '../server/index.ts';

export interface LiveServer {
  readonly url: string;
  readonly server: BusbarServer;
  /** Closes the server (gracefully) and starts a new one on the same file and port. */
  restart(): Promise<void>;
  /** Stops the server without starting another. */
  stop(): Promise<void>;
  /** Starts it again after `stop()`. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startLiveServer(options: ServerOptions = {}): Promise<LiveServer> {
  const directory = mkdtempSync(join(tmpdir(), 'busbar-client-'));
  const data = join(directory, 'events.db');
  let server = await createServer({ logger: false, ...options, port: 0, data });
  const { url } = await server.listen();
  const port = Number(new URL(url).port);
  let running = true;
  const start = async (): Promise<void> => {
    server = await createServer({ logger: false, ...options, port, data });
    await server.listen();
    running = true;
  };
  const stop = async (): Promise<void> => {
    running = false;
    await server.close();
  };
  return {
    url,
    get server() {
      return server;
    },
    restart: async () => {
      await stop();
      await start();
    },
    stop,
    start,
    close: async () => {
      if (running) await stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Resolves when `check()` holds; fails after `ms` with `what()`. */
export async function eventually(check: () => boolean, what: () => string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
