import type { FastifyInstance } from 'fastify';
import type { CdcStatusView } from '../cdc-capture.ts';
import { errors } from './schemas.ts';

const optionalObject = { type: 'object', additionalProperties: true } as const;

const cdcStatus = {
  type: 'object',
  description: 'The server’s change capture from PostgreSQL, or { "enabled": false } when it runs none. Facts not known yet are left out.',
  required: ['enabled'],
  properties: {
    enabled: { type: 'boolean' },
    mode: { type: 'string', enum: ['replication', 'trigger'] },
    state: { type: 'string', enum: ['idle', 'connecting', 'streaming', 'retrying', 'stopped', 'gave-up'] },
    connected: { type: 'boolean' },
    allTables: { type: 'boolean', description: 'Every table of the database is captured; `tables` lists those snapshotted so far.' },
    tables: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          schema: { type: 'string' },
          name: { type: 'string' },
          snapshot: { ...optionalObject, description: 'Its initial snapshot: state (pending, running, done, skipped), chunks, rowsDone, rowsEstimate, reason…' },
        },
      },
    },
    failedAttempts: { type: 'integer', description: 'Failed connection attempts since the last successful connect.' },
    delivered: { type: 'integer', description: 'Change events delivered since the server started.' },
    lastDelivered: { ...optionalObject, description: 'The last change delivered: lsn, txid, commit timestamp, and when (at).' },
    confirmedPosition: { type: 'string', description: 'The slot’s confirmed_flush_lsn (replication) or the reader’s checkpoint (trigger).' },
    lag: {
      type: 'object',
      properties: {
        bytes: { type: 'number', description: 'WAL bytes (replication) or change rows (trigger) not yet confirmed.' },
        seconds: { type: 'number', description: 'Age of the oldest unconfirmed change; 0 when caught up.' },
      },
    },
    walStatus: { type: 'string', description: 'The slot’s wal_status: reserved, extended, unreserved or lost.' },
    retainedBytes: { type: 'number', description: 'WAL (or change table) bytes kept for this capture.' },
    lastError: { ...optionalObject, description: 'The last failure: code, message, at.' },
    warnings: { type: 'array', items: { type: 'string' } },
    checkedAt: { type: 'string', description: 'When the watchdog last checked the database (RFC 3339).' },
  },
} as const;

/**
 * `GET /v1/cdc` (admin): the status of the change capture the server runs
 * (`busbar serve --cdc-postgres …`), or `{ "enabled": false }`.
 *
 * @example
 * ```ts
 * registerCdcRoute(app, () => cdc?.status() ?? { enabled: false });
 * // curl -H 'authorization: Bearer …' localhost:2872/v1/cdc
 * ```
 */
export function registerCdcRoute(app: FastifyInstance, status: () => CdcStatusView): void {
  app.get(
    '/v1/cdc',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Change capture status',
        description:
          'Mode, state, whether it is connected, the captured tables with their initial snapshot’s progress, the confirmed position, ' +
          'lag, the last error and the watchdog’s warnings.',
        tags: ['cdc'],
        response: { 200: cdcStatus, ...errors(401, 403) },
      },
    },
    async () => status(),
  );
}
