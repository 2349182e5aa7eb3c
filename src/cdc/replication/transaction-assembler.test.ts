import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { builtinDecoder, decodeAsText } from '../values.ts';
import { Acknowledgements } from './acknowledgements.ts';
import { type PgoutputMessage, POSTGRES_EPOCH_MS, type RelationMessage, type TupleValue, UNCHANGED } from './pgoutput-decoder.ts';
import type { CapturedRelation } from './relation-cache.ts';
import { type RelationLookup, type TransactionChunk, TransactionAssembler } from './transaction-assembler.ts';

/** A fixed set of relations, as the catalog would describe them. */
class FixedRelations implements RelationLookup {
  readonly relations = new Map<number, CapturedRelation>();
  registered: RelationMessage[] = [];

  add(id: number, relation: { schema?: string; table: string; columns: [string, number, boolean?][]; key: number[] }): void {
    this.relations.set(id, {
      schema: relation.schema ?? 'public',
      table: relation.table,
      columns: relation.columns.map(([name, oid, isKey]) => ({ name, decode: builtinDecoder(oid) ?? decodeAsText, isKey: isKey ?? false })),
      primaryKey: relation.key,
    });
  }

  get(id: number): CapturedRelation {
    const relation = this.relations.get(id);
    if (relation === undefined) throw new Error(`no relation ${id}`);
    return relation;
  }

  register(message: RelationMessage): Promise<void> {
    this.registered.push(message);
    return Promise.resolve();
  }
}

const COMMIT_TIME = BigInt(Date.UTC(2024, 1, 29, 13, 45, 0, 123) - POSTGRES_EPOCH_MS) * 1000n + 456n;
const begin = (lsn = '0/100', xid = 700): PgoutputMessage => ({ tag: 'begin', commitLsn: lsn, commitTime: COMMIT_TIME, xid });
const commit = (endLsn = 0x180n): PgoutputMessage => ({ tag: 'commit', commitLsn: '0/100', endLsn, commitTime: COMMIT_TIME });
const insert = (relationId: number, newTuple: TupleValue[]): PgoutputMessage => ({ tag: 'insert', relationId, newTuple });

function setup(chunkSize = 1000) {
  const relations = new FixedRelations();
  relations.add(1, { table: 'person', columns: [['id', 23, true], ['name', 25], ['meta', 3802]], key: [0] });
  relations.add(2, { table: 'line', columns: [['order_id', 20, true], ['line_no', 21, true], ['qty', 1700]], key: [0, 1] });
  relations.add(3, { table: 'log', columns: [['message', 25], ['at', 1184]], key: [] });
  const chunks: TransactionChunk[] = [];
  const assembler = new TransactionAssembler(relations, chunkSize, (chunk) => chunks.push(chunk));
  const apply = (...messages: PgoutputMessage[]) => messages.forEach((message) => assembler.apply(message));
  return { relations, chunks, assembler, apply };
}

describe('assembling transactions', () => {
  test('an INSERT arrives with every field of the change', () => {
    const { chunks, apply } = setup();
    apply(begin('16/B374D848', 4242), insert(1, ['7', 'Ada', '{"tags": ["x"]}']), commit(0x16_b374d900n));
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0]!.endLsn, 0x16_b374d900n);
    assert.equal(chunks[0]!.commitMs, Date.UTC(2024, 1, 29, 13, 45, 0, 123));
    assert.deepEqual(chunks[0]!.changes, [
      {
        timestamp: '2024-02-29T13:45:00.123456Z',
        schema: 'public',
        table: 'person',
        action: 'INSERT',
        id: 7,
        data: { id: 7, name: 'Ada', meta: { tags: ['x'] } },
        old: null,
        changes: null,
        unchanged: [],
        txid: '4242',
        lsn: '16/B374D848',
        index: 0,
        last: true,
      },
    ]);
  });

  test('changes of one transaction are numbered from 0 and only the last is marked last', () => {
    const { chunks, apply } = setup();
    apply(begin(), insert(1, ['1', 'a', null]), insert(3, ['hello', '2024-01-01 00:00:00+00']), insert(1, ['2', 'b', null]), commit());
    assert.deepEqual(
      chunks[0]!.changes.map((change) => [change.table, change.index, change.last]),
      [['person', 0, false], ['log', 1, false], ['person', 2, true]],
    );
  });

  test('an UPDATE with the whole old row lists the changed columns with both values', () => {
    const { chunks, apply } = setup();
    apply(
      begin(),
      { tag: 'update', relationId: 1, oldKind: 'O', oldTuple: ['1', 'Ada', '{"a": 1}'], newTuple: ['1', 'Grace', '{"a": 1}'] },
      commit(),
    );
    const change = chunks[0]!.changes[0]!;
    assert.equal(change.action, 'UPDATE');
    assert.deepEqual(change.data, { id: 1, name: 'Grace', meta: { a: 1 } });
    assert.deepEqual(change.old, { id: 1, name: 'Ada', meta: { a: 1 } });
    assert.deepEqual(change.changes, [{ column: 'name', old: 'Ada', new: 'Grace' }]);
  });

  test('an UPDATE without an old row has old and changes null', () => {
    const { chunks, apply } = setup();
    apply(begin(), { tag: 'update', relationId: 1, oldKind: undefined, oldTuple: undefined, newTuple: ['1', 'Grace', null] }, commit());
    const change = chunks[0]!.changes[0]!;
    assert.deepEqual([change.old, change.changes], [null, null]);
  });

  test('an UPDATE that changed the key gives the old key and the key change', () => {
    const { chunks, apply } = setup();
    apply(begin(), { tag: 'update', relationId: 1, oldKind: 'K', oldTuple: ['1', null, null], newTuple: ['2', 'Ada', null] }, commit());
    const change = chunks[0]!.changes[0]!;
    assert.equal(change.id, 2);
    assert.deepEqual(change.old, { id: 1 });
    assert.deepEqual(change.changes, [{ column: 'id', old: 1, new: 2 }]);
  });

  test('an unchanged TOASTed value is left out of data and listed when no old row has it', () => {
    const { chunks, apply } = setup();
    apply(begin(), { tag: 'update', relationId: 1, oldKind: undefined, oldTuple: undefined, newTuple: ['1', 'Ada', UNCHANGED] }, commit());
    const change = chunks[0]!.changes[0]!;
    assert.deepEqual(change.data, { id: 1, name: 'Ada' });
    assert.ok(!('meta' in change.data!));
    assert.deepEqual(change.unchanged, ['meta']);
  });

  test('an unchanged TOASTed value is taken from the whole old row and is not a change', () => {
    const { chunks, apply } = setup();
    apply(
      begin(),
      { tag: 'update', relationId: 1, oldKind: 'O', oldTuple: ['1', 'Ada', '{"big": true}'], newTuple: ['1', 'Grace', UNCHANGED] },
      commit(),
    );
    const change = chunks[0]!.changes[0]!;
    assert.deepEqual(change.data, { id: 1, name: 'Grace', meta: { big: true } });
    assert.deepEqual(change.unchanged, []);
    assert.deepEqual(change.changes, [{ column: 'name', old: 'Ada', new: 'Grace' }]);
  });

  test('a DELETE gives the row as it was, or only its key', () => {
    const { chunks, apply } = setup();
    apply(
      begin(),
      { tag: 'delete', relationId: 1, oldKind: 'O', oldTuple: ['1', 'Ada', null] },
      { tag: 'delete', relationId: 1, oldKind: 'K', oldTuple: ['2', null, null] },
      commit(),
    );
    const [full, keyOnly] = chunks[0]!.changes;
    assert.deepEqual([full!.id, full!.data, full!.old], [1, { id: 1, name: 'Ada', meta: null }, { id: 1, name: 'Ada', meta: null }]);
    assert.deepEqual([keyOnly!.id, keyOnly!.data, keyOnly!.old], [2, { id: 2 }, { id: 2 }]);
  });

  test('a composite key becomes an object and a table without a key has id null', () => {
    const { chunks, apply } = setup();
    apply(begin(), insert(2, ['9007199254740993', '3', '12.50']), insert(3, ['x', null]), commit());
    assert.deepEqual(chunks[0]!.changes[0]!.id, { order_id: '9007199254740993', line_no: 3 });
    assert.deepEqual(chunks[0]!.changes[0]!.data, { order_id: '9007199254740993', line_no: 3, qty: '12.50' });
    assert.equal(chunks[0]!.changes[1]!.id, null);
  });

  test('a TRUNCATE of several tables is one change per table', () => {
    const { chunks, apply } = setup();
    apply(begin(), { tag: 'truncate', cascade: false, restartIdentity: false, relationIds: [1, 3] }, commit());
    assert.deepEqual(
      chunks[0]!.changes.map((change) => [change.table, change.action, change.id, change.data, change.index, change.last]),
      [['person', 'TRUNCATE', null, null, 0, false], ['log', 'TRUNCATE', null, null, 1, true]],
    );
  });

  test('a transaction larger than the chunk size is handed on in chunks and only the final one carries its end', () => {
    const { chunks, apply } = setup(2);
    apply(begin(), ...[1, 2, 3, 4, 5].map((id) => insert(1, [String(id), 'x', null])), commit(0x999n));
    assert.deepEqual(
      chunks.map((chunk) => [chunk.changes.map((change) => change.index), chunk.endLsn]),
      [[[0, 1], undefined], [[2, 3], undefined], [[4], 0x999n]],
    );
    assert.deepEqual(chunks.flatMap((chunk) => chunk.changes.map((change) => change.last)), [false, false, false, false, true]);
  });

  test('a transaction that fills its last chunk exactly still marks its last change', () => {
    const { chunks, apply } = setup(2);
    apply(begin(), insert(1, ['1', 'x', null]), insert(1, ['2', 'x', null]), commit());
    assert.deepEqual(chunks.length, 1);
    assert.equal(chunks[0]!.changes[1]!.last, true);
  });

  test('a transaction with no captured change is still handed on, empty, so its end is confirmed in order', () => {
    const { chunks, apply } = setup();
    apply(begin(), commit(0x500n));
    assert.deepEqual(chunks, [{ changes: [], endLsn: 0x500n, commitMs: Date.UTC(2024, 1, 29, 13, 45, 0, 123) }]);
  });

  test('a Relation message asks the stream to wait for its look-up', async () => {
    const { relations, assembler } = setup();
    const message: RelationMessage = { tag: 'relation', relationId: 9, schema: 'public', table: 't', replicaIdentity: 'f', columns: [] };
    const waiting = assembler.apply(message);
    assert.ok(waiting instanceof Promise);
    await waiting;
    assert.deepEqual(relations.registered, [message]);
  });

  test('a row change outside a transaction or for an unknown relation is a protocol error', () => {
    const { apply } = setup();
    assert.throws(() => apply(insert(1, ['1', 'x', null])), { code: 'BUSBAR_ERR_CDC_PROTOCOL' });
    assert.throws(() => apply(commit()), { code: 'BUSBAR_ERR_CDC_PROTOCOL' });
    apply(begin());
    assert.throws(() => apply(begin()), { code: 'BUSBAR_ERR_CDC_PROTOCOL' });
  });
});

describe('acknowledging deliveries', () => {
  test('the confirmed position advances only over settled deliveries, in order', () => {
    const acknowledgements = new Acknowledgements(10n);
    const first = acknowledgements.add(2, 20n, 0);
    const second = acknowledgements.add(3, 30n, 0);
    assert.equal(acknowledgements.inFlightChanges, 5);
    assert.equal(acknowledgements.settle(second), false);
    assert.equal(acknowledgements.confirmed, 10n);
    assert.equal(acknowledgements.settle(first), true);
    assert.equal(acknowledgements.confirmed, 30n);
    assert.equal(acknowledgements.inFlightChanges, 0);
    assert.ok(acknowledgements.empty);
  });

  test('a chunk of a long transaction does not move the confirmed position', () => {
    const acknowledgements = new Acknowledgements(10n);
    acknowledgements.settle(acknowledgements.add(1000, undefined, 0));
    assert.equal(acknowledgements.confirmed, 10n);
    acknowledgements.settle(acknowledgements.add(1, 50n, 0));
    assert.equal(acknowledgements.confirmed, 50n);
  });

  test('an idle position is confirmed only when nothing is in flight and never backwards', () => {
    const acknowledgements = new Acknowledgements(10n);
    const pending = acknowledgements.add(1, 20n, 1234);
    assert.equal(acknowledgements.oldestCommitMs(), 1234);
    assert.equal(acknowledgements.confirmIdle(100n), false);
    acknowledgements.settle(pending);
    assert.equal(acknowledgements.oldestCommitMs(), undefined);
    assert.equal(acknowledgements.confirmIdle(100n), true);
    assert.equal(acknowledgements.confirmIdle(90n), false);
    assert.equal(acknowledgements.confirmed, 100n);
  });

  test('thousands of deliveries settle with the queue compacted and the count right', () => {
    const acknowledgements = new Acknowledgements(0n);
    for (let i = 1; i <= 5000; i++) acknowledgements.settle(acknowledgements.add(1, BigInt(i), 0));
    assert.equal(acknowledgements.confirmed, 5000n);
    assert.equal(acknowledgements.inFlightChanges, 0);
    assert.ok(acknowledgements.empty);
  });
});
