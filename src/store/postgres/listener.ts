import type { Notification, Pool, PoolClient } from 'pg';
import type { SchemaNames } from './schema.ts';

export interface ListenerEvents {
  /** A commit by any process moved the head to `head`. */
  readonly onHead: (head: number) => void;
  /**
   * The listener (re)connected: notifications sent while it was away are
   * lost, so readers must re-read. `head` is the head once listening again.
   */
  readonly onListening: (head: number) => void;
}

const FIRST_RETRY_MS = 100;
const LAST_RETRY_MS = 5000;

/**
 * One connection held out of the pool that LISTENs on the schema's channel,
 * so commits by other processes (and outbox commits) wake this process's
 * readers. It reconnects with backoff when the connection drops.
 */
export class HeadListener {
  private client: PoolClient | undefined;
  private closed = false;
  private retryMs = FIRST_RETRY_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  private release: () => void = () => {};

  private readonly pool: Pool;
  private readonly names: SchemaNames;
  private readonly events: ListenerEvents;

  constructor(pool: Pool, names: SchemaNames, events: ListenerEvents) {
    this.pool = pool;
    this.names = names;
    this.events = events;
  }

  /** Whether notifications are flowing now; while not, readers must check the head themselves. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  /** Connects for the first time; rejects if that fails (later drops are retried). */
  start(): Promise<void> {
    return this.connect();
  }

  private connect(): Promise<void> {
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<void> {
    const client = await this.pool.connect();
    const onNotification = (message: Notification): void => {
      if (message.channel !== this.names.channel) return;
      const head = Number(message.payload);
      if (Number.isSafeInteger(head)) this.events.onHead(head);
    };
    let released = false;
    // Given an error, the pool destroys the connection instead of reusing it.
    const release = (error: Error): void => {
      if (released) return;
      released = true;
      client.release(error);
    };
    const onLost = (error?: Error): void => {
      detach();
      if (this.client === client) this.client = undefined;
      release(error ?? new Error('listener connection ended'));
      this.scheduleReconnect();
    };
    const detach = (): void => {
      client.off('notification', onNotification);
      client.off('error', onLost);
      client.off('end', onLost);
    };
    client.on('notification', onNotification);
    // A checked-out client whose connection drops emits 'error'; unhandled, it would crash the process.
    client.on('error', onLost);
    client.on('end', onLost);
    try {
      await client.query(`LISTEN ${this.names.channel}`);
      // Read after LISTEN: any commit this misses is notified.
      const { rows } = await client.query<{ head: string }>(`SELECT position::text AS head FROM ${this.names.head}`);
      if (this.closed) {
        detach();
        release(new Error('store closed while listening'));
        return;
      }
      this.client = client;
      this.release = () => {
        detach();
        release(new Error('listener closed'));
      };
      this.retryMs = FIRST_RETRY_MS;
      this.events.onListening(Number(rows[0]!.head));
    } catch (error) {
      detach();
      release(error as Error);
      throw error;
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().catch(() => {
        this.retryMs = Math.min(this.retryMs * 2, LAST_RETRY_MS);
        this.scheduleReconnect();
      });
    }, this.retryMs);
    // Left referenced: an open store keeps the process alive through its
    // listening connection, and must not stop doing so while it reconnects.
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.connecting?.catch(() => {});
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    // Destroyed rather than returned: a pool client must not stay subscribed.
    this.release();
  }
}
