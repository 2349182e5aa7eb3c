/** How one subscription's handling of one event ended. */
export type DeliveryResult =
  | {
      readonly subscription: string;
      readonly status: 'completed';
      readonly value: unknown;
      readonly attempts: number;
    }
  | { readonly subscription: string; readonly status: 'skipped'; readonly attempts: number }
  | {
      readonly subscription: string;
      readonly status: 'failed';
      readonly error: Error;
      readonly attempts: number;
    }
  | { readonly subscription: string; readonly status: 'expired' }
  | { readonly subscription: string; readonly status: 'dropped' }
  | { readonly subscription: string; readonly status: 'cancelled'; readonly error: Error };

export type DeliveryStatus = DeliveryResult['status'];

/** Return this from a handler to skip an event: it is settled as `skipped`, not retried. */
export const skip: unique symbol = Symbol.for('busbar.skip');
export type Skip = typeof skip;
