/**
 * The raw readers the latency benchmark compares Busbar with: a minimal
 * pgoutput client that decodes nothing but each transaction's commit (what
 * any logical-replication consumer must at least do), and the seed's design,
 * a trigger that sends the row through pg_notify to a LISTEN client.
 */
import pg from 'pg';
import { nowMicros } from './cdc-clock.ts';
import { PUBLICATION } from './cdc-database.ts';

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
const POSTGRES_EPOCH_US = 946_684_800_000_000;

export interface RawReader {
  /** Resolves once the stream is flowing. */
  readonly started: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Streams `slot` with pgoutput and calls `onCommit` with each transaction's
 * commit time (µs since the Unix epoch); confirms the last commit when the
 * server asks, as a real consumer must, and nothing else.
 */
export function rawPgoutputReader(url: string, slot: string, onCommit: (commitMicros: number) => void): RawReader {
  const client = new pg.Client({ connectionString: url, replication: 'database' } as pg.ClientConfig);
  let confirmed = 0n;
  let started!: () => void;
  const streaming = new Promise<void>((resolve) => (started = resolve));
  const connected = client.connect().then(() => {
    const connection = (client as unknown as { connection: RawConnection }).connection;
    connection.once('replicationStart', () => started());
    connection.on('copyData', ({ chunk }: { chunk: Buffer }) => {
      if (chunk[0] === 0x77 && chunk[25] === 0x43) {
        // XLogData (25-byte header) holding a Commit: flags, commit LSN, end LSN, commit time.
        onCommit(Number(chunk.readBigInt64BE(43)) + POSTGRES_EPOCH_US);
        confirmed = chunk.readBigUInt64BE(35);
      } else if (chunk[0] === 0x6b && chunk[17] === 1) {
        // A keepalive that asks for an answer.
        const reply = Buffer.alloc(34);
        reply[0] = 0x72;
        reply.writeBigUInt64BE(confirmed, 1);
        reply.writeBigUInt64BE(confirmed, 9);
        reply.writeBigUInt64BE(confirmed, 17);
        reply.writeBigInt64BE(BigInt(Math.round(nowMicros() - POSTGRES_EPOCH_US)), 25);
        connection.sendCopyFromChunk(reply);
      }
    });
    client.on('error', () => {});
    // Resolves only when the stream ends (on stop).
    client.query(`START_REPLICATION SLOT ${slot} LOGICAL 0/0 (proto_version '1', publication_names '${PUBLICATION}')`).catch(() => {});
  });
  return {
    started: connected.then(() => streaming),
    async stop() {
      await connected.catch(() => {});
      (client as unknown as { connection: RawConnection }).connection.stream.destroy();
      await client.end().catch(() => {});
    },
  };
}

/** The seed's design on `table`: an AFTER INSERT trigger that pg_notify's `row_to_json(NEW)`. */
export async function installSeedTrigger(admin: pg.Pool, table: string, channel: string): Promise<void> {
  await admin.query(`
    CREATE FUNCTION ${table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('${channel}', row_to_json(NEW)::text);
      RETURN NULL;
    END $$;
    CREATE TRIGGER ${table}_notify AFTER INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_notify();
  `);
}

/** A LISTEN client that parses each notification's row and hands it on. */
export function listenReader(url: string, channel: string, onRow: (row: Record<string, unknown>) => void): RawReader {
  const client = new pg.Client({ connectionString: url });
  client.on('notification', (message) => onRow(JSON.parse(message.payload!) as Record<string, unknown>));
  client.on('error', () => {});
  const started = client.connect().then(() => client.query(`LISTEN ${channel}`)).then(() => {});
  return {
    started,
    async stop() {
      await started.catch(() => {});
      await client.end().catch(() => {});
    },
  };
}

interface RawConnection {
  stream: { destroy(): void };
  on(event: string, listener: (...args: any[]) => void): void;
  once(event: string, listener: (...args: any[]) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
}
