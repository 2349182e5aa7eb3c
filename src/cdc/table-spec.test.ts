import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { candidateNames, tableKey } from './table-spec.ts';

describe('reading a table spec', () => {
  test('a plain name is a table in public, then folded to lower case as SQL would', () => {
    assert.deepEqual(candidateNames('Person'), [
      { schema: 'public', name: 'Person' },
      { schema: 'public', name: 'person' },
    ]);
  });

  test('schema.name splits at the first dot outside quotes', () => {
    assert.deepEqual(candidateNames('sales.orders')[0], { schema: 'sales', name: 'orders' });
    assert.deepEqual(candidateNames('"a.b"."c.d"')[0], { schema: 'a.b', name: 'c.d' });
    assert.deepEqual(candidateNames('Sales."Order Lines"').slice(0, 2), [
      { schema: 'Sales', name: 'Order Lines' },
      { schema: 'sales', name: 'Order Lines' },
    ]);
  });

  test('a doubled quote inside quotes is one quote', () => {
    assert.deepEqual(candidateNames('"say ""hi"""')[0], { schema: 'public', name: 'say "hi"' });
  });

  test('a string that is not name syntax stands for itself as a table in public', () => {
    assert.deepEqual(candidateNames('x"; DROP TABLE y; --'), [{ schema: 'public', name: 'x"; DROP TABLE y; --' }]);
    assert.deepEqual(candidateNames('Mixed Case'), [
      { schema: 'public', name: 'Mixed Case' },
      { schema: 'public', name: 'mixed case' },
    ]);
    assert.deepEqual(candidateNames('a.b.c').at(-1), { schema: 'public', name: 'a.b.c' });
    assert.deepEqual(candidateNames('trailing.'), [{ schema: 'public', name: 'trailing.' }]);
  });

  test('table keys tell apart names that would collide when joined naively', () => {
    assert.notEqual(tableKey({ schema: 'a.b', name: 'c' }), tableKey({ schema: 'a', name: 'b.c' }));
  });
});
