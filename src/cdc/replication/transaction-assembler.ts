import type { ChangeAction, ChangeData } from '../change.ts';
import type { Lsn } from './lsn.ts';
import {
  type LogicalMessage,
  type PgoutputMessage,
  POSTGRES_EPOCH_MS,
  postgresTimeToRfc3339,
  protocolError,
  type RelationMessage,
} from './pgoutput-decoder.ts';
import type { CapturedRelation } from './relation-cache.ts';
import { deleteRow, insertRow, type MappedRow, updateRow } from './row-mapping.ts';

/**
 * Changes of one transaction, handed on in commit order: the whole
 * transaction, or, for one larger than the chunk size, a run of it. Only a
 * transaction's final chunk carries `endLsn`; the others must not move the
 * confirmed position.
 */
export interface TransactionChunk {
  readonly changes: ChangeData[];
  readonly endLsn: Lsn | undefined;
  /** Commit time in Unix milliseconds, for lag in seconds. */
  readonly commitMs: number;
}

/** Where the assembler finds relations: `RelationCache`, or a fixed set in tests. */
export interface RelationLookup {
  get(relationId: number): CapturedRelation;
  register(message: RelationMessage, xid?: string): Promise<void>;
}

interface OpenTransaction {
  readonly lsn: string;
  readonly timestamp: string;
  readonly commitMs: number;
  readonly txid: string;
  changes: ChangeData[];
  next: number;
}

/**
 * Turns the decoded pgoutput stream into transactions of change data:
 * Begin opens one, each row message adds a change numbered from 0, Commit
 * marks the last change and hands the transaction on. A transaction that
 * grows past `chunkSize` changes is handed on in chunks as it arrives, so
 * memory stays bounded however large it is.
 *
 * @example
 * ```ts
 * const assembler = new TransactionAssembler(relations, 1000, (chunk) => deliver(chunk));
 * const waiting = assembler.apply(decodePgoutput(buffer, 25)); // a promise for a Relation message
 * ```
 */
export class TransactionAssembler {
  private open: OpenTransaction | undefined;
  private readonly relations: RelationLookup;
  private readonly chunkSize: number;
  private readonly emit: (chunk: TransactionChunk) => void;
  private readonly onMessage: ((message: LogicalMessage) => void) | undefined;

  constructor(
    relations: RelationLookup,
    chunkSize: number,
    emit: (chunk: TransactionChunk) => void,
    onMessage?: (message: LogicalMessage) => void,
  ) {
    this.relations = relations;
    this.chunkSize = chunkSize;
    this.emit = emit;
    this.onMessage = onMessage;
  }

  /** True between a Begin and its Commit. */
  get inTransaction(): boolean {
    return this.open !== undefined;
  }

  /** Changes held for the open transaction, not yet handed on. */
  get buffered(): number {
    return this.open?.changes.length ?? 0;
  }

  /**
   * Applies one message. Returns a promise when the stream must wait before
   * the next message (a Relation message whose types and key are being
   * looked up), undefined otherwise.
   */
  apply(message: PgoutputMessage): Promise<void> | undefined {
    switch (message.tag) {
      case 'begin':
        if (this.open !== undefined) throw protocolError('a Begin message arrived inside a transaction');
        this.open = {
          lsn: message.commitLsn,
          timestamp: postgresTimeToRfc3339(message.commitTime),
          commitMs: POSTGRES_EPOCH_MS + Number(message.commitTime / 1000n),
          txid: String(message.xid),
          changes: [],
          next: 0,
        };
        return undefined;
      case 'commit':
        return this.commit(message.endLsn);
      case 'relation':
        return this.relations.register(message, this.open?.txid);
      case 'insert': {
        const relation = this.relations.get(message.relationId);
        if (relation.internal !== true) this.add(relation.schema, relation.table, 'INSERT', insertRow(relation, message.newTuple));
        return undefined;
      }
      case 'update': {
        const relation = this.relations.get(message.relationId);
        if (relation.internal !== true) this.add(relation.schema, relation.table, 'UPDATE', updateRow(relation, message));
        return undefined;
      }
      case 'delete': {
        const relation = this.relations.get(message.relationId);
        if (relation.internal !== true) this.add(relation.schema, relation.table, 'DELETE', deleteRow(relation, message));
        return undefined;
      }
      case 'truncate':
        for (const relationId of message.relationIds) {
          const relation = this.relations.get(relationId);
          if (relation.internal !== true) this.add(relation.schema, relation.table, 'TRUNCATE', TRUNCATED);
        }
        return undefined;
      case 'message':
        this.onMessage?.(message);
        return undefined;
      case 'type':
      case 'origin':
        // Types are looked up by OID when a relation uses them; origins do not matter here.
        return undefined;
    }
  }

  private add(schema: string, table: string, action: ChangeAction, row: MappedRow): void {
    const open = this.open;
    if (open === undefined) throw protocolError(`a row change arrived outside a transaction`);
    // The chunk is handed on when the next change arrives, never at the
    // boundary: the transaction's last change must stay for Commit to mark.
    if (open.changes.length >= this.chunkSize) {
      this.emit({ changes: open.changes, endLsn: undefined, commitMs: open.commitMs });
      open.changes = [];
    }
    open.changes.push({
      timestamp: open.timestamp,
      schema,
      table,
      action,
      id: row.id,
      data: row.data,
      old: row.old,
      changes: row.changes,
      unchanged: row.unchanged,
      txid: open.txid,
      lsn: open.lsn,
      index: open.next++,
      last: false,
    });
  }

  private commit(endLsn: Lsn): undefined {
    const open = this.open;
    if (open === undefined) throw protocolError('a Commit message arrived outside a transaction');
    this.open = undefined;
    const changes = open.changes;
    if (changes.length > 0) changes[changes.length - 1]!.last = true;
    // Handed on even when empty, so its end LSN is confirmed in order.
    this.emit({ changes, endLsn, commitMs: open.commitMs });
    return undefined;
  }
}

const TRUNCATED: MappedRow = Object.freeze({
  id: null,
  data: null,
  old: null,
  changes: null,
  unchanged: Object.freeze([]) as unknown as string[],
});
