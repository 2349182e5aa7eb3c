import type { Delivery } from './delivery.ts';
import type { HandlerContext } from './subscription-options.ts';

/** What an invocation reads from its subscription. */
export interface InvocationOwner {
  readonly name: string;
  readonly context: unknown;
}

/** One handler call; it is also the context the handler receives. */
export class Invocation implements HandlerContext {
  readonly owner: InvocationOwner;
  readonly attempt: number;
  readonly delivery: Delivery;
  /** `performance.now()` when the first attempt began, if this delivery is sampled; else 0. */
  readonly startedAt: number;
  /** The owner's timeout sweep generation when this attempt was tracked. */
  generation = 0;
  done = false;
  // Links in the owner's list of running invocations: an intrusive list adds
  // and removes in a few nanoseconds where a Set takes fifty.
  prev: Invocation | undefined = undefined;
  next: Invocation | undefined = undefined;
  /** Set while the invocation waits out a retry backoff. */
  backoff: ReturnType<typeof setTimeout> | undefined = undefined;
  private controller: AbortController | undefined = undefined;

  constructor(owner: InvocationOwner, delivery: Delivery, attempt: number, startedAt: number) {
    this.owner = owner;
    this.delivery = delivery;
    this.attempt = attempt;
    this.startedAt = startedAt;
  }

  get subscription(): string {
    return this.owner.name;
  }

  get context(): unknown {
    return this.owner.context;
  }

  // An AbortController costs more than the rest of a delivery; most handlers
  // never look at the signal, so it is made on first use.
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  abort(reason: Error): void {
    // Made here if the handler has not looked yet, so a later look sees it aborted.
    (this.controller ??= new AbortController()).abort(reason);
  }
}

/** The running invocations of one subscription, linked through their own fields. */
export class InvocationList {
  private head: Invocation | undefined = undefined;
  private tail: Invocation | undefined = undefined;
  size = 0;

  add(invocation: Invocation): void {
    invocation.prev = this.tail;
    invocation.next = undefined;
    if (this.tail === undefined) this.head = invocation;
    else this.tail.next = invocation;
    this.tail = invocation;
    this.size++;
  }

  delete(invocation: Invocation): void {
    if (invocation.prev === undefined && this.head !== invocation) return; // not in the list
    if (invocation.prev === undefined) this.head = invocation.next;
    else invocation.prev.next = invocation.next;
    if (invocation.next === undefined) this.tail = invocation.prev;
    else invocation.next.prev = invocation.prev;
    invocation.prev = invocation.next = undefined;
    this.size--;
  }

  clear(): void {
    for (const invocation of [...this]) this.delete(invocation);
  }

  *[Symbol.iterator](): IterableIterator<Invocation> {
    // Reads `next` before yielding so the caller may delete the current one.
    for (let at = this.head; at !== undefined; ) {
      const next = at.next;
      yield at;
      at = next;
    }
  }
}
