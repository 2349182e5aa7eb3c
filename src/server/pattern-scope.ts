/**
 * True when every topic `inner` can match is also matched by `outer`, both
 * being valid NATS-style patterns (a plain topic counts as a pattern that
 * matches only itself). So a key granted `orders.>` may subscribe to
 * `orders.*` or `orders.eu.created`, but not to `>` or `*.created`.
 *
 * @example
 * ```ts
 * patternCovers('orders.>', 'orders.*'); // true
 * patternCovers('orders.*', 'orders.>'); // false: orders.eu.created is not orders.*
 * ```
 */
export function patternCovers(outer: string, inner: string): boolean {
  const granted = outer.split('.');
  const wanted = inner.split('.');
  for (let i = 0; i < granted.length; i++) {
    const token = granted[i]!;
    // `>` takes one or more tokens: whatever `inner` has left, at least one, fits.
    if (token === '>') return i < wanted.length;
    if (i >= wanted.length) return false;
    const asked = wanted[i]!;
    if (asked === '>') return false;
    if (token === '*') continue;
    if (asked !== token) return false;
  }
  return granted.length === wanted.length;
}
