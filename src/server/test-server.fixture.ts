/**
 * The harness the server tests share: a server on a fresh SQLite file in a
 * temporary directory (so test files run in parallel), helpers to call it
 * through `app.inject`, and cleanup.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { type BusbarServer, createServer, type ServerOptions } from './server.ts';

export interface TestServer {
  readonly server: BusbarServer;
  /** The SQLite file (when the server opened one). */
  readonly path: string;
  /** Calls the server in process; JSON bodies are sent as application/json. */
  call(method: InjectOptions['method'], url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** Closes the server, then starts a new one on the same file with the same options. */
  restart(): Promise<TestServer>;
  close(): Promise<void>;
}

/** A 32-character secret that differs per name, for API key tests. */
export function secretFor(name: string): string {
  return `secret-${name}-`.padEnd(32, 'x');
}

/** Starts a server on port 0 with a temporary SQLite file unless `store` or `postgres` is given. */
export function startTestServer(options: ServerOptions = {}): Promise<TestServer> {
  return start(options, mkdtempSync(join(tmpdir(), 'busbar-server-')));
}

async function start(options: ServerOptions, dir: string): Promise<TestServer> {
  const path = join(dir, 'events.db');
  const usesFile = options.store === undefined && options.postgres === undefined;
  const server = await createServer({ port: 0, logger: false, ...options, ...(usesFile ? { data: path } : {}) });
  return {
    server,
    path,
    call(method, url, body, headers = {}) {
      const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      const contentType = payload === undefined ? {} : { 'content-type': 'application/json' };
      return server.app.inject({ method, url, payload, headers: { ...contentType, ...headers } });
    },
    async restart() {
      await server.close();
      return start(options, dir);
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The parsed JSON body of a response. */
export function bodyOf<T = any>(response: LightMyRequestResponse): T {
  return JSON.parse(response.body) as T;
}
