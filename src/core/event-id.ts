// Web Crypto (global in Node and browsers), so `busbar/client` can share this file.
// UUIDv7 (RFC 9562) with the "monotonic random" method: the 74 bits after
// the timestamp are seeded at random once per millisecond and then counted up,
// so ids from this process sort in creation order and cost one increment and
// one 8-digit hex format each instead of a call into the CSPRNG.
let lastMs = -1;
let prefix = '';
let counter = 0;
const seed = new Uint32Array(3);

/**
 * A new UUIDv7: time-ordered, unique, and strictly increasing within this process.
 * `now` lets a caller that has already read the clock share that reading.
 *
 * @example
 * ```ts
 * createEventId() // '019a4f3e-8c21-7d3a-9f10-5b2e00c4a1f7'
 * ```
 */
export function createEventId(now: number = Date.now()): string {
  if (now > lastMs) reseed(now);
  else if (++counter > 0xffffffff) reseed(lastMs + 1); // 4 billion ids in 1 ms: borrow the next one
  const c = counter;
  return prefix + HEX[c >>> 24]! + HEX[(c >>> 16) & 255]! + HEX[(c >>> 8) & 255]! + HEX[c & 255]!;
}

// Four table lookups format the counter in half the time of toString(16).padStart(8).
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

function reseed(ms: number): void {
  lastMs = ms;
  globalThis.crypto.getRandomValues(seed);
  const time = ms.toString(16).padStart(12, '0');
  const randA = (seed[0]! & 0xfff).toString(16).padStart(3, '0');
  const variantAndRand = (0x8000 | (seed[1]! & 0x3fff)).toString(16);
  const rand = (seed[1]! >>> 16).toString(16).padStart(4, '0');
  prefix = `${time.slice(0, 8)}-${time.slice(8)}-7${randA}-${variantAndRand}-${rand}`;
  // Start below 2^31 so the count has room to grow within the millisecond.
  counter = seed[2]! >>> 1;
}

/** The creation time in milliseconds encoded in a UUIDv7, or undefined for other ids. */
export function timeOfEventId(id: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id))
    return undefined;
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
