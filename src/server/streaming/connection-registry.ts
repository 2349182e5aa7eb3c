import { setTimeout as sleep } from 'node:timers/promises';

/** A live SSE response or WebSocket, as the registry sees it. */
export interface StreamingConnection {
  /** Sends a keep-alive (SSE comment, WebSocket ping) and drops a peer that stopped answering. */
  heartbeat(): void;
  /** Closes politely because the server is going away (WebSocket 1001, SSE end of response). */
  goAway(): void;
  /** Closes at once, without a goodbye. */
  terminate(): void;
  /** Resolves once the connection is closed. */
  readonly closed: Promise<void>;
}

/**
 * Every open streaming connection of a server, with one heartbeat timer for
 * all of them (not one per connection: a thousand idle clients cost one
 * timer) and the shutdown that closes them.
 *
 * @example
 * ```ts
 * const registry = new ConnectionRegistry(15_000);
 * registry.add(connection);
 * await registry.closeAll(2_000);
 * ```
 */
export class ConnectionRegistry {
  private readonly connections = new Set<StreamingConnection>();
  private readonly timer: NodeJS.Timeout;
  private closing = false;

  constructor(heartbeatMs: number) {
    this.timer = setInterval(() => {
      for (const connection of this.connections) connection.heartbeat();
    }, heartbeatMs);
    this.timer.unref();
  }

  get size(): number {
    return this.connections.size;
  }

  /** True once `closeAll` has begun: new connections should be refused. */
  get isClosing(): boolean {
    return this.closing;
  }

  add(connection: StreamingConnection): void {
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }

  /**
   * Asks every connection to go away and resolves once all have closed;
   * those still open after `graceMs` (a client that stopped reading) are
   * terminated.
   */
  async closeAll(graceMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    const open = [...this.connections];
    for (const connection of open) connection.goAway();
    const allClosed = Promise.all(open.map((connection) => connection.closed));
    const graceOver = new AbortController();
    await Promise.race([allClosed, sleep(graceMs, undefined, { signal: graceOver.signal }).catch(() => {})]);
    graceOver.abort();
    for (const connection of this.connections) connection.terminate();
    await allClosed;
  }
}
