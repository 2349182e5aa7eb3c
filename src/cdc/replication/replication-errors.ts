import { BusbarError } from '../../core/errors.ts';

/**
 * PostgreSQL's replication errors as Busbar errors that say what to do.
 * Anything not recognised passes through unchanged (the facade retries it).
 *
 * @example
 * ```ts
 * client.query(command, (error) => reject(replicationError(error)));
 * ```
 */
export function replicationError(error: Error, slot?: string): Error {
  if (error instanceof BusbarError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error.message;
  const slotName = slot === undefined ? 'the replication slot' : `replication slot "${slot}"`;
  if (code === '42501' && /walsender|replication/i.test(message)) {
    return setupError(
      `the database user may not start replication (${message}): grant it with ALTER ROLE <user> REPLICATION, ` +
        `or use mode: 'trigger', which needs no replication right`,
      error,
    );
  }
  if (code === '53300' || /max_wal_senders|standby connections/i.test(message)) {
    return setupError(
      `no free WAL sender (${message}): raise max_wal_senders in postgresql.conf and restart PostgreSQL, or stop another replication client`,
      error,
    );
  }
  if (code === '53400' || /replication slots are in use/i.test(message)) {
    return setupError(
      `no free replication slot (${message}): raise max_replication_slots and restart PostgreSQL, or drop an unused slot ` +
        `(SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active)`,
      error,
    );
  }
  if (/wal_level/i.test(message)) return walLevelError(message, error);
  if (code === '55006' || /is active for PID/i.test(message)) {
    return slotError(
      `${slotName} is in use by another reader (${message}): stop it, or give this capture its own slotName`,
      error,
    );
  }
  if (/can no longer get changes|has been invalidated|cannot read from logical replication slot/i.test(message)) {
    return lostSlotError(slotName, error);
  }
  if (code === '42704' && /publication .* does not exist/i.test(message)) {
    return setupError(`${message}: call ensureCdcFor(table) or ensureCdcForAllTables() to create it`, error);
  }
  if (code === '42704' && /replication slot/i.test(message)) {
    return slotError(`${message}: it was dropped while capture ran; capture creates it again on reconnect`, error);
  }
  return error;
}

export function setupError(message: string, cause?: unknown): BusbarError {
  return new BusbarError('BUSBAR_ERR_CDC_SETUP', message, cause === undefined ? {} : { cause });
}

export function slotError(message: string, cause?: unknown, details?: Record<string, unknown>): BusbarError {
  return new BusbarError('BUSBAR_ERR_CDC_SLOT', message, {
    ...(cause === undefined ? {} : { cause }),
    ...(details === undefined ? {} : { details }),
  });
}

export function walLevelError(current: string, cause?: unknown): BusbarError {
  return setupError(
    `logical replication needs wal_level = logical (the server has ${current}): run ` +
      `ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL, or use mode: 'trigger'`,
    cause,
  );
}

export function lostSlotError(slotName: string, cause?: unknown): BusbarError {
  return slotError(
    `${slotName} lost WAL it needed (max_slot_wal_keep_size was exceeded): changes made meanwhile are gone. ` +
      `Drop it with dropSlot() and start capture again (a new snapshot is needed to resynchronise)`,
    cause,
  );
}
