import type { RunCommand } from './command.ts';

/** One `busbar` command: listed by `busbar --help`, loaded only when it runs. */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  /**
   * True when the command stops cleanly on the first SIGINT/SIGTERM (it
   * watches `io.signal`); otherwise the first signal ends the process at once.
   */
  readonly graceful: boolean;
  /** Imported on use, so `busbar --help` does not load the server, and a command's dependencies load only for it. */
  load(): Promise<{ run: RunCommand }>;
}

/**
 * Every command, one entry each. A new command is a file in this folder
 * exporting `run(args, io)`, and one entry here.
 *
 * @example
 * ```ts
 * const entry = COMMANDS.find((command) => command.name === 'tail');
 * await (await entry.load()).run(['order.*'], io);
 * ```
 */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'serve', summary: 'start the server (HTTP API, WebSocket, SSE) on a durable log', graceful: true, load: () => import('./serve.ts') },
  { name: 'publish', summary: 'publish one event; prints its id and log position', graceful: false, load: () => import('./publish.ts') },
  { name: 'tail', summary: 'follow events live, one per line (JSON when piped)', graceful: true, load: () => import('./tail.ts') },
  { name: 'replay', summary: 're-publish a range of the log to another server (same ids: safe to repeat)', graceful: true, load: () => import('./replay.ts') },
  { name: 'bench', summary: 'measure publish throughput and delivery latency against a server', graceful: true, load: () => import('./bench.ts') },
  { name: 'cdc', summary: 'stream PostgreSQL row changes to stdout, a server or Redis (change data capture)', graceful: true, load: () => import('./cdc.ts') },
];
