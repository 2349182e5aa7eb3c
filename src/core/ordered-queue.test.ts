import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createOrderedQueue, Deque, type Prioritized, PriorityQueue } from './ordered-queue.ts';

interface Item extends Prioritized {
  readonly name: string;
}

function drain<T>(queue: { take(): T | undefined; readonly size: number }): T[] {
  const taken: T[] = [];
  while (queue.size > 0) taken.push(queue.take() as T);
  return taken;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

describe('Deque in FIFO order', () => {
  test('takes items in the order they were pushed', () => {
    const deque = new Deque<number>();
    for (const n of [1, 2, 3]) deque.push(n);
    assert.deepEqual(drain(deque), [1, 2, 3]);
  });

  test('keeps FIFO order as it grows past 16 items', () => {
    const deque = new Deque<number>();
    for (const n of range(0, 100)) deque.push(n);
    assert.equal(deque.size, 100);
    assert.deepEqual([...deque.values()], range(0, 100));
    assert.deepEqual(drain(deque), range(0, 100));
  });

  test('keeps FIFO order when the ring wraps around and then grows', () => {
    const deque = new Deque<number>();
    for (const n of range(0, 12)) deque.push(n);
    assert.deepEqual([deque.take(), deque.take(), deque.take(), deque.take()], [0, 1, 2, 3]);
    assert.deepEqual([deque.take(), deque.take(), deque.take(), deque.take()], [4, 5, 6, 7]);
    // The head is now at slot 8: these pushes wrap past the end of the 16 slots.
    for (const n of range(12, 24)) deque.push(n);
    assert.equal(deque.size, 16);
    assert.deepEqual([...deque.values()], range(8, 24));
    // Full and wrapped: the next push grows the ring.
    for (const n of range(24, 40)) deque.push(n);
    assert.deepEqual([...deque.values()], range(8, 40));
    assert.deepEqual(drain(deque), range(8, 40));
  });

  test('stays in order over many interleaved pushes and takes', () => {
    const deque = new Deque<number>();
    const expected: number[] = [];
    let next = 0;
    for (let round = 0; round < 200; round++) {
      const pushes = (round * 7) % 13;
      const takes = (round * 5) % 11;
      for (let i = 0; i < pushes; i++) {
        deque.push(next);
        expected.push(next++);
      }
      for (let i = 0; i < takes; i++) assert.equal(deque.take(), expected.shift());
      assert.equal(deque.size, expected.length);
    }
    assert.deepEqual([...deque.values()], expected);
  });

  test('returns undefined when empty', () => {
    const deque = new Deque<number>();
    assert.equal(deque.take(), undefined);
    assert.equal(deque.dropOldest(), undefined);
    deque.push(1);
    deque.take();
    assert.equal(deque.take(), undefined);
    assert.equal(deque.size, 0);
    assert.deepEqual([...deque.values()], []);
  });

  test('dropOldest removes the item that has waited longest', () => {
    const deque = new Deque<number>();
    for (const n of range(0, 20)) deque.push(n);
    assert.equal(deque.dropOldest(), 0);
    assert.equal(deque.dropOldest(), 1);
    assert.equal(deque.size, 18);
    assert.deepEqual([...deque.values()], range(2, 20));
  });

  test('Deque.of makes a FIFO deque holding one item', () => {
    const deque = Deque.of('only');
    assert.equal(deque.size, 1);
    deque.push('second');
    assert.deepEqual(drain(deque), ['only', 'second']);
  });
});

describe('Deque in LIFO order', () => {
  test('takes the newest item first', () => {
    const deque = new Deque<number>(true);
    for (const n of [1, 2, 3]) deque.push(n);
    assert.deepEqual(drain(deque), [3, 2, 1]);
  });

  test('keeps LIFO order as it grows past 16 items', () => {
    const deque = new Deque<number>(true);
    for (const n of range(0, 100)) deque.push(n);
    assert.deepEqual(drain(deque), range(0, 100).reverse());
  });

  test('keeps LIFO order when the ring wraps around and then grows', () => {
    const deque = new Deque<number>(true);
    for (const n of range(0, 12)) deque.push(n);
    for (let i = 0; i < 8; i++) deque.dropOldest();
    for (const n of range(12, 40)) deque.push(n);
    assert.deepEqual([...deque.values()], range(8, 40));
    assert.deepEqual(drain(deque), range(8, 40).reverse());
  });

  test('dropOldest removes the item pushed first, not the one taken next', () => {
    const deque = new Deque<number>(true);
    for (const n of range(0, 20)) deque.push(n);
    assert.equal(deque.dropOldest(), 0);
    assert.equal(deque.take(), 19);
    assert.deepEqual([...deque.values()], range(1, 19));
  });

  test('values() lists items oldest first', () => {
    const deque = new Deque<number>(true);
    for (const n of [1, 2, 3]) deque.push(n);
    assert.deepEqual([...deque.values()], [1, 2, 3]);
  });
});

// mulberry32: a small seeded generator so a failure can be replayed.
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function servingOrder(a: Prioritized, b: Prioritized): number {
  return b.priority - a.priority || a.seq - b.seq;
}

function shuffle<T>(items: readonly T[], next: () => number): T[] {
  const shuffled = [...items];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  return shuffled;
}

function randomItems(count: number, seed: number): Item[] {
  const next = random(seed);
  return Array.from({ length: count }, (_, seq) => ({
    priority: Math.floor(next() * 10) - 3,
    seq,
    name: `item-${seq}`,
  }));
}

describe('PriorityQueue', () => {
  test('takes higher priorities first and equal priorities in publish order', () => {
    const queue = new PriorityQueue<Item>();
    queue.push({ priority: 0, seq: 0, name: 'low-first' });
    queue.push({ priority: 5, seq: 1, name: 'high-first' });
    queue.push({ priority: 0, seq: 2, name: 'low-second' });
    queue.push({ priority: 5, seq: 3, name: 'high-second' });
    queue.push({ priority: -1, seq: 4, name: 'negative' });
    assert.deepEqual(
      drain(queue).map((item) => item.name),
      ['high-first', 'high-second', 'low-first', 'low-second', 'negative'],
    );
  });

  test('orders 1,000 random items by priority descending then seq ascending', () => {
    const seed = Date.now() % 1_000_000;
    const items = randomItems(1000, seed);
    const queue = new PriorityQueue<Item>();
    for (const item of shuffle(items, random(seed + 1))) queue.push(item);
    assert.equal(queue.size, 1000);
    const taken = drain(queue);
    assert.deepEqual(
      taken.map((item) => item.seq),
      [...items].sort(servingOrder).map((item) => item.seq),
      `seed ${seed}`,
    );
  });

  test('stays ordered over interleaved pushes and takes', () => {
    const seed = Date.now() % 1_000_000;
    const next = random(seed);
    const items = randomItems(1000, seed);
    const queue = new PriorityQueue<Item>();
    const waiting: Item[] = [];
    for (const item of items) {
      queue.push(item);
      waiting.push(item);
      if (next() < 0.4) {
        waiting.sort(servingOrder);
        assert.equal(queue.take(), waiting.shift(), `seed ${seed}`);
      }
    }
    waiting.sort(servingOrder);
    assert.deepEqual(drain(queue), waiting, `seed ${seed}`);
  });

  test('dropOldest removes the item that would be served last', () => {
    const queue = new PriorityQueue<Item>();
    queue.push({ priority: 1, seq: 0, name: 'a' });
    queue.push({ priority: 0, seq: 1, name: 'lowest-older' });
    queue.push({ priority: 9, seq: 2, name: 'b' });
    queue.push({ priority: 0, seq: 3, name: 'lowest-newer' });
    queue.push({ priority: 2, seq: 4, name: 'c' });
    assert.equal(queue.dropOldest()?.name, 'lowest-newer');
    assert.equal(queue.dropOldest()?.name, 'lowest-older');
    assert.deepEqual(
      drain(queue).map((item) => item.name),
      ['b', 'c', 'a'],
    );
  });

  test('dropOldest over 1,000 random items always removes the last in serving order', () => {
    const seed = Date.now() % 1_000_000;
    const items = randomItems(1000, seed);
    const queue = new PriorityQueue<Item>();
    for (const item of items) queue.push(item);
    const expected = [...items].sort(servingOrder);
    for (let i = 0; i < 300; i++) assert.equal(queue.dropOldest(), expected.pop(), `seed ${seed}`);
    assert.deepEqual(drain(queue), expected, `seed ${seed}`);
  });

  test('returns undefined when empty', () => {
    const queue = new PriorityQueue<Item>();
    assert.equal(queue.take(), undefined);
    assert.equal(queue.dropOldest(), undefined);
    assert.equal(queue.size, 0);
  });

  test('values() lists every waiting item', () => {
    const queue = new PriorityQueue<Item>();
    const items = randomItems(50, 7);
    for (const item of items) queue.push(item);
    assert.deepEqual(
      [...queue.values()].map((item) => item.seq).sort((a, b) => a - b),
      range(0, 50),
    );
  });
});

describe('createOrderedQueue', () => {
  const items: Item[] = [
    { priority: 0, seq: 0, name: 'first' },
    { priority: 2, seq: 1, name: 'urgent' },
    { priority: 0, seq: 2, name: 'last' },
  ];

  test('makes a queue for each order', () => {
    const names = (order: 'fifo' | 'lifo' | 'priority') => {
      const queue = createOrderedQueue<Item>(order);
      for (const item of items) queue.push(item);
      return drain(queue).map((item) => item.name);
    };
    assert.deepEqual(names('fifo'), ['first', 'urgent', 'last']);
    assert.deepEqual(names('lifo'), ['last', 'urgent', 'first']);
    assert.deepEqual(names('priority'), ['urgent', 'first', 'last']);
  });
});
