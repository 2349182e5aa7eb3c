/**
 * Wall-clock times in microseconds for the CDC latency and lag measures:
 * the reader's clock and PostgreSQL's timestamps are the same machine's
 * clock, so their difference is the delay.
 */

/** Now, in µs since the Unix epoch: finer than Date.now(), from the monotonic clock anchored at process start. */
export function nowMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** `2024-02-29T13:45:00.123456Z` → µs since the Unix epoch (Date.parse keeps only milliseconds). */
export function microsOf(timestamp: string): number {
  const dot = timestamp.indexOf('.', 19);
  const whole = Date.parse(`${timestamp.slice(0, 19)}Z`) * 1000;
  return dot < 0 ? whole : whole + Number(timestamp.slice(dot + 1, -1).padEnd(6, '0'));
}
