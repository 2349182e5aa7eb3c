import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ChangeAction, ChangeData, Row } from '../change.ts';
import type { LogicalMessage } from '../replication/pgoutput-decoder.ts';
import { type ChunkRelease, keyText, SnapshotWindow, WATERMARK_PREFIX } from './snapshot-window.ts';

const TABLE = { schema: 'shop', name: 'orders' };

function change(action: ChangeAction, data: Row | null, old: Row | null = null, table = TABLE): ChangeData {
  return {
    timestamp: '2024-01-01T00:00:00.000000Z',
    schema: table.schema,
    table: table.name,
    action,
    id: data?.id ?? null,
    data,
    old,
    changes: null,
    unchanged: [],
    txid: '1',
    lsn: '0/1',
    index: 0,
    last: true,
  };
}

function read(id: number): ChangeData {
  return { ...change('READ', { id, v: `row ${id}` }), lsn: 'snapshot:s1' };
}

function mark(content: string, prefix = WATERMARK_PREFIX): LogicalMessage {
  return { tag: 'message', transactional: true, lsn: '0/2', prefix, content: Buffer.from(content) };
}

/** A window tracking `orders` by `id`, its start mark already passed by the stream. */
async function trackedWindow(): Promise<SnapshotWindow> {
  const window = new SnapshotWindow();
  const start = window.track(TABLE, ['id']);
  assert.equal(window.message(mark(start.mark!)), undefined);
  await start.reached;
  return window;
}

function attach(window: SnapshotWindow, ids: number[]) {
  const reads = ids.map(read);
  return window.attach(reads, reads.map((row) => keyText(row.data!, ['id'])!), ['id']);
}

function releasedIds(release: ChunkRelease | undefined): unknown[] {
  assert.ok(release !== undefined, 'the high watermark releases the chunk');
  return release.changes.map((row) => row.id);
}

describe('the snapshot window', () => {
  test('at the high watermark the rows no stream change touched are released in key order, numbered, the last marked', async () => {
    const window = await trackedWindow();
    const chunk = attach(window, [1, 2, 3])!;
    const release = window.message(mark(chunk.mark));
    assert.deepEqual(releasedIds(release), [1, 2, 3]);
    assert.deepEqual(release!.changes.map((row) => [row.index, row.last]), [[0, false], [1, false], [2, true]]);
    release!.settled(Promise.resolve());
    assert.deepEqual(await chunk.outcome, { delivered: 3 });
  });

  test('a key changed before the chunk is attached or while it waits for its watermark is dropped from it', async () => {
    const window = await trackedWindow();
    window.observe([change('UPDATE', { id: 2, v: 'new' }, { id: 2, v: 'old' })]);
    const chunk = attach(window, [1, 2, 3, 4])!;
    window.observe([change('DELETE', { id: 3, v: 'gone' }, { id: 3, v: 'gone' })]);
    window.observe([change('INSERT', { id: 9, v: 'other range' })]);
    assert.deepEqual(releasedIds(window.message(mark(chunk.mark))), [1, 4]);
  });

  test('an UPDATE that moves a row to another key drops both keys', async () => {
    const window = await trackedWindow();
    const chunk = attach(window, [1, 2, 3])!;
    window.observe([change('UPDATE', { id: 3, v: 'moved' }, { id: 1, v: 'moved' })]);
    assert.deepEqual(releasedIds(window.message(mark(chunk.mark))), [2]);
  });

  test('keys touched during one chunk do not reach into the next, but those after its watermark do', async () => {
    const window = await trackedWindow();
    const first = attach(window, [1, 2])!;
    window.observe([change('UPDATE', { id: 5, v: 'x' })]); // 5 is read by the next chunk
    window.message(mark(first.mark))!.settled(Promise.resolve());
    window.observe([change('UPDATE', { id: 6, v: 'y' })]); // after the watermark, before the next chunk
    const second = attach(window, [5, 6, 7])!;
    assert.deepEqual(releasedIds(window.message(mark(second.mark))), [5, 7]);
  });

  test('a TRUNCATE of the table empties the chunk; changes of other tables are ignored', async () => {
    const window = await trackedWindow();
    const chunk = attach(window, [1, 2])!;
    window.observe([change('UPDATE', { id: 1, v: 'z' }, null, { schema: 'shop', name: 'other' })]);
    window.observe([change('TRUNCATE', null)]);
    assert.deepEqual(releasedIds(window.message(mark(chunk.mark))), []);

    const before = await trackedWindow();
    before.observe([change('TRUNCATE', null)]);
    const next = attach(before, [1, 2])!;
    assert.deepEqual(releasedIds(before.message(mark(next.mark))), []);
  });

  test('composite keys match by every key column, whatever the column order in the row', async () => {
    const window = new SnapshotWindow();
    const start = window.track(TABLE, ['order_id', 'line']);
    window.message(mark(start.mark!));
    await start.reached;
    const rows = [
      { order_id: '9007199254740993', line: 1, qty: 1 },
      { order_id: '9007199254740993', line: 2, qty: 1 },
    ];
    const reads = rows.map((row) => ({ ...change('READ', row), id: { order_id: row.order_id, line: row.line } }));
    const chunk = window.attach(reads, rows.map((row) => keyText(row, ['order_id', 'line'])!), ['order_id', 'line'])!;
    window.observe([change('UPDATE', { qty: 5, line: 2, order_id: '9007199254740993' })]);
    assert.deepEqual(releasedIds(window.message(mark(chunk.mark))), [{ order_id: '9007199254740993', line: 1 }]);
    assert.equal(keyText({ a: 1, b: 'x' }, ['a', 'b']), '[1,"x"]');
    assert.equal(keyText({ a: 1 }, ['a', 'b']), undefined);
  });

  test('a change whose key cannot be read makes the chunk be read again, never trusted', async () => {
    const window = await trackedWindow();
    const chunk = attach(window, [1, 2])!;
    window.observe([change('UPDATE', { v: 'no key column' })]);
    assert.equal(window.message(mark(chunk.mark)), undefined);
    assert.equal(await chunk.outcome, 'again');

    const early = await trackedWindow();
    early.observe([change('DELETE', { v: 'no key column' })]);
    assert.equal(attach(early, [1]), undefined, 'tracking lost a key before the chunk: track again');
  });

  test('more keys touched between chunks than it keeps makes tracking start over', async () => {
    const window = await trackedWindow();
    const flood = Array.from({ length: 100_001 }, (_, i) => change('INSERT', { id: 1_000_000 + i }));
    window.observe(flood);
    assert.equal(attach(window, [1]), undefined);
  });

  test('marks of other sessions and other prefixes are ignored, and a chunk is released once', async () => {
    const window = await trackedWindow();
    const chunk = attach(window, [1])!;
    assert.equal(window.message(mark('0000000000000000:2')), undefined);
    assert.equal(window.message(mark(chunk.mark, 'busbar')), undefined);
    assert.deepEqual(releasedIds(window.message(mark(chunk.mark))), [1]);
    assert.equal(window.message(mark(chunk.mark)), undefined);
  });

  test('changes before the start mark are not tracked: the stream has not reached tracking yet', async () => {
    const window = new SnapshotWindow();
    const start = window.track(TABLE, ['id']);
    window.observe([change('UPDATE', { id: 1, v: 'before' })]);
    window.message(mark(start.mark!));
    await start.reached;
    const chunk = attach(window, [1])!;
    assert.deepEqual(releasedIds(window.message(mark(chunk.mark))), [1]);
  });

  test('a table waiting since the session started is tracked from there: its first chunk drops what the stream changed before', async () => {
    const window = new SnapshotWindow();
    window.trackFromStart([{ ...TABLE, keyColumns: ['id'] }, { schema: 'shop', name: 'keyless', keyColumns: [] }]);
    window.observe([change('INSERT', { id: 2, v: 'written right after the slot was made' })]);
    const start = window.track(TABLE, ['id']);
    assert.equal(start.mark, undefined, 'no start mark needed');
    await start.reached;
    assert.deepEqual(releasedIds(window.message(mark(attach(window, [1, 2, 3])!.mark))), [1, 3]);
  });

  test('a waiting table whose key changed, or that saw more changes than are kept, starts at a mark of its own', async () => {
    const window = new SnapshotWindow();
    window.trackFromStart([{ ...TABLE, keyColumns: ['id'] }]);
    assert.notEqual(window.track(TABLE, ['id', 'line']).mark, undefined);

    const busy = new SnapshotWindow();
    busy.trackFromStart([{ ...TABLE, keyColumns: ['id'] }]);
    busy.observe(Array.from({ length: 100_001 }, (_, i) => change('INSERT', { id: i })));
    const start = busy.track(TABLE, ['id']);
    assert.notEqual(start.mark, undefined);
    busy.observe([change('INSERT', { id: 7 })]); // before its start mark: not tracked
    busy.message(mark(start.mark!));
    await start.reached;
    assert.deepEqual(releasedIds(busy.message(mark(attach(busy, [7])!.mark))), [7]);
  });

  test('a failed delivery fails the chunk, and closing fails every wait and refuses new work', async () => {
    const window = await trackedWindow();
    const chunk = attach(window, [1])!;
    window.message(mark(chunk.mark))!.settled(Promise.reject(new Error('store down')));
    await assert.rejects(chunk.outcome, /store down/);

    const closing = await trackedWindow();
    const waiting = attach(closing, [1])!;
    closing.close(new Error('session ended'));
    await assert.rejects(waiting.outcome, /session ended/);
    assert.throws(() => closing.track(TABLE, ['id']), /session ended/);
  });

  test('attaching before the table is tracked is a programming error', () => {
    const window = new SnapshotWindow();
    assert.throws(() => window.attach([], [], ['id']), /before its table was tracked/);
  });
});
