/**
 * PostgreSQL names may hold any character (`Mixed Case`, `ünïcødé`,
 * `x"; DROP TABLE y; --`), topic tokens only `[A-Za-z0-9_-]`. A name becomes a
 * token by keeping ASCII letters, digits and `_` and writing every other UTF-8
 * byte as `-` and two lower-case hex digits: reversible, so two tables never
 * share a topic, and the common lower-case name reads as itself.
 *
 * @example
 * ```ts
 * topicToken('person');      // 'person'
 * topicToken('Mixed Case');  // 'Mixed-20Case'
 * topicToken('ünï');         // '-c3-bcn-c3-af'
 * ```
 */
export function topicToken(name: string): string {
  if (PLAIN.test(name)) return name;
  let token = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    token += isPlainByte(byte) ? String.fromCharCode(byte) : `-${byte.toString(16).padStart(2, '0')}`;
  }
  return token;
}

/** The name a token stands for: the inverse of {@link topicToken}. */
export function nameOfToken(token: string): string {
  if (PLAIN.test(token)) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '-') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The topic of a change: `cdc.<schema>.<table>.<action>`, e.g. `cdc.public.person.insert`. */
export function changeTopic(schema: string, table: string, action: string): string {
  return `cdc.${topicToken(schema)}.${topicToken(table)}.${action.toLowerCase()}`;
}

const PLAIN = /^[A-Za-z0-9_]+$/;

function isPlainByte(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x5f // _
  );
}
