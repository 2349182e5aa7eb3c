/**
 * A log sequence number: a byte position in the WAL, 64 bits, so a bigint
 * here. PostgreSQL prints it as two hex halves, `16/B374D848`.
 */
export type Lsn = bigint;

/** The invalid LSN, `0/0`: "no position". */
export const NO_LSN: Lsn = 0n;

/**
 * Formats an LSN the way PostgreSQL prints it.
 *
 * @example
 * ```ts
 * formatLsn(0x16_B374D848n); // '16/B374D848'
 * ```
 */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Formats the LSN stored big-endian at `offset` of `buffer`, without a bigint. */
export function formatLsnAt(buffer: Buffer, offset: number): string {
  const high = buffer.readUInt32BE(offset).toString(16).toUpperCase();
  return `${high}/${buffer.readUInt32BE(offset + 4).toString(16).toUpperCase()}`;
}

/**
 * Parses PostgreSQL's text form of an LSN.
 *
 * @example
 * ```ts
 * parseLsn('16/B374D848'); // 0x16_B374D848n
 * ```
 */
export function parseLsn(text: string): Lsn {
  const slash = text.indexOf('/');
  if (slash < 0) throw new TypeError(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) | BigInt(`0x${text.slice(slash + 1)}`);
}
