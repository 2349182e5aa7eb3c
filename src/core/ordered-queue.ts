/** Which queued event a subscription handles next. */
export type QueueOrder = 'fifo' | 'lifo' | 'priority';

/** The queue behind a subscription: bounded by its owner, ordered by itself. */
export interface OrderedQueue<T> {
  readonly size: number;
  push(item: T): void;
  /** The next item to handle, by the queue's order. */
  take(): T | undefined;
  /** Removes the item that has waited longest (FIFO/LIFO) or would be served last (priority). */
  dropOldest(): T | undefined;
  /** The item `dropOldest` would remove, left in place. */
  peekOldest(): T | undefined;
  values(): IterableIterator<T>;
}

export interface Prioritized {
  /** Higher first. */
  readonly priority: number;
  /** Publish order, to break ties first come first served. */
  readonly seq: number;
}

export function createOrderedQueue<T extends Prioritized>(order: QueueOrder): OrderedQueue<T> {
  if (order === 'priority') return new PriorityQueue<T>();
  return new Deque<T>(order === 'lifo');
}

/**
 * A growable ring buffer: O(1) at both ends, unlike `Array#shift`, and it
 * releases slots as it goes so a drained queue holds no stale references.
 */
export class Deque<T> implements OrderedQueue<T> {
  private items: (T | undefined)[] = new Array(16);
  private head = 0;
  private count = 0;
  private readonly lifo: boolean;

  constructor(lifo = false) {
    this.lifo = lifo;
  }

  static of<T>(item: T): Deque<T> {
    const deque = new Deque<T>();
    deque.push(item);
    return deque;
  }

  get size(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  take(): T | undefined {
    return this.lifo ? this.popBack() : this.shift();
  }

  dropOldest(): T | undefined {
    return this.shift();
  }

  peekOldest(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    return item;
  }

  popBack(): T | undefined {
    if (this.count === 0) return undefined;
    const index = (this.head + this.count - 1) & (this.items.length - 1);
    const item = this.items[index];
    this.items[index] = undefined;
    this.count--;
    return item;
  }

  *values(): IterableIterator<T> {
    for (let i = 0; i < this.count; i++)
      yield this.items[(this.head + i) & (this.items.length - 1)] as T;
  }

  private grow(): void {
    const grown: (T | undefined)[] = new Array(this.items.length * 2);
    for (let i = 0; i < this.count; i++)
      grown[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = grown;
    this.head = 0;
  }
}

/** A binary heap: highest priority first, then oldest first. */
export class PriorityQueue<T extends Prioritized> implements OrderedQueue<T> {
  private readonly heap: T[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(item: T): void {
    this.heap.push(item);
    this.siftUp(this.heap.length - 1);
  }

  take(): T | undefined {
    return this.removeAt(0);
  }

  dropOldest(): T | undefined {
    const heap = this.heap;
    return heap.length === 0 ? undefined : this.removeAt(this.lastServed());
  }

  peekOldest(): T | undefined {
    return this.heap[this.lastServed()];
  }

  // Only on overflow: a linear scan for the item that would be served last.
  private lastServed(): number {
    const heap = this.heap;
    let last = 0;
    for (let i = 1; i < heap.length; i++) if (before(heap[last]!, heap[i]!)) last = i;
    return last;
  }

  values(): IterableIterator<T> {
    return this.heap.values();
  }

  private removeAt(index: number): T | undefined {
    const heap = this.heap;
    if (index >= heap.length) return undefined;
    const removed = heap[index];
    const tail = heap.pop()!;
    if (index < heap.length) {
      heap[index] = tail;
      this.siftDown(index);
      this.siftUp(index);
    }
    return removed;
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    const item = heap[index]!;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(item, heap[parent]!)) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = item;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const item = heap[index]!;
    const length = heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && before(heap[child + 1]!, heap[child]!)) child++;
      if (!before(heap[child]!, item)) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = item;
  }
}

function before(a: Prioritized, b: Prioritized): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
}
