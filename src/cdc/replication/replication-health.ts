import type { Client } from 'pg';
import type { SourceHealth } from '../capture-source.ts';

/** Facts about the slot that only the source knows. */
export interface StreamFacts {
  /** Whether a session is streaming now. */
  readonly streaming: boolean;
  /** Commit time (Unix ms) of the oldest transaction handed on and not settled. */
  readonly oldestUnconfirmedMs: number | undefined;
  /** How long this source has not been streaming (ms); undefined while it streams. */
  readonly idleMs: number | undefined;
}

/** An inactive slot is only worth a warning once its reader has been away this long (a reconnect is not). */
export const FORGOTTEN_AFTER_MS = 60_000;

/**
 * Reads the slot's health: how far its confirmed position trails the
 * server's WAL (bytes), how much WAL it makes the server keep, its WAL
 * status, and warnings for a slot nobody reads (it holds WAL for ever) or
 * one that lost WAL it needed.
 *
 * @example
 * ```ts
 * const health = await slotHealth(client, 'busbar', { streaming: true, oldestUnconfirmedMs: undefined, idleMs: undefined });
 * ```
 */
export async function slotHealth(client: Client, slot: string, facts: StreamFacts): Promise<SourceHealth> {
  const { rows } = await client.query(
    `SELECT active, wal_status, safe_wal_size::float8 AS safe_wal_size, confirmed_flush_lsn::text AS confirmed,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS lag_bytes,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 AS retained_bytes
       FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0] as
    | { active: boolean; wal_status: string | null; safe_wal_size: number | null; confirmed: string | null; lag_bytes: number | null; retained_bytes: number | null }
    | undefined;
  if (row === undefined) {
    return {
      lagBytes: undefined,
      lagSeconds: undefined,
      walStatus: undefined,
      retainedBytes: undefined,
      warnings: [`replication slot "${slot}" does not exist: capture creates it when it connects`],
    };
  }
  const warnings: string[] = [];
  if (row.wal_status === 'lost') {
    warnings.push(`replication slot "${slot}" lost WAL it needed: changes are missing; drop it with dropSlot() and capture again`);
  } else if (row.wal_status === 'unreserved') {
    warnings.push(
      `replication slot "${slot}" is about to lose WAL (max_slot_wal_keep_size): ${format(row.safe_wal_size)} left before changes are lost`,
    );
  }
  if (!row.active && (facts.idleMs ?? 0) >= FORGOTTEN_AFTER_MS) {
    warnings.push(
      `replication slot "${slot}" is not being read: the server keeps ${format(row.retained_bytes)} of WAL for it and ` +
        `the amount grows; start capture, or drop the slot with dropSlot() if it is no longer wanted`,
    );
  }
  const lagSeconds =
    facts.oldestUnconfirmedMs !== undefined
      ? Math.max(0, (Date.now() - facts.oldestUnconfirmedMs) / 1000)
      : facts.streaming
        ? 0
        : undefined;
  return {
    lagBytes: row.lag_bytes ?? undefined,
    lagSeconds,
    walStatus: row.wal_status ?? undefined,
    retainedBytes: row.retained_bytes ?? undefined,
    warnings,
    confirmedPosition: row.confirmed ?? undefined,
  };
}

function format(bytes: number | null): string {
  if (bytes === null) return 'an unknown amount';
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
