/**
 * The transactions handed to the sink and not yet acknowledged, at most
 * `limit` at a time. The sink resolves deliveries in the order it got them,
 * so `acknowledged` is always a prefix: the position it is safe to
 * checkpoint. The first failure is kept and stops further acknowledgements.
 */
export class DeliveryWindow {
  /** The highest position whose delivery, and every one before it, resolved. */
  acknowledged: number;
  private failure: { error: unknown } | undefined;
  private inFlight = 0;
  private tail: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];
  private readonly limit: number;

  constructor(acknowledged: number, limit: number) {
    this.acknowledged = acknowledged;
    this.limit = limit;
  }

  /** Throws the first delivery failure, if any. */
  check(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }

  /** Waits until there is room for one more delivery. */
  async room(): Promise<void> {
    while (this.inFlight >= this.limit && this.failure === undefined) await this.settled();
    this.check();
  }

  /**
   * Tracks a delivery at `position`; `delivery` undefined marks a position
   * with nothing to deliver, acknowledged once everything before it is.
   */
  add(position: number, delivery?: Promise<void>): void {
    // Handled here so a rejection before the chain reaches it is not "unhandled".
    delivery?.catch(() => {});
    this.inFlight++;
    this.tail = this.tail.then(async () => {
      try {
        if (this.failure === undefined) {
          await delivery;
          this.acknowledged = position;
        }
      } catch (error) {
        this.failure = { error };
      } finally {
        this.inFlight--;
        for (const wake of this.waiters.splice(0)) wake();
      }
    });
  }

  /** Resolves once every tracked delivery has settled (successfully or not). */
  async drain(): Promise<void> {
    await this.tail;
  }

  get pending(): number {
    return this.inFlight;
  }

  private settled(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
