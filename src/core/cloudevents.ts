import { BusbarError } from './errors.ts';
import { addExtensions, type BusbarEvent, CORE_ATTRIBUTES, rfc3339, wellFormedEvents } from './event.ts';
import { assertTopic } from './topic.ts';

/** The media type of one CloudEvent in structured JSON mode. */
export const CLOUDEVENTS_JSON = 'application/cloudevents+json';
/** The media type of a JSON array of CloudEvents. */
export const CLOUDEVENTS_BATCH_JSON = 'application/cloudevents-batch+json';

/**
 * The structured-mode JSON object for an event: binary data (`Uint8Array`)
 * goes to `data_base64`, everything else stays as it is.
 *
 * @example
 * ```ts
 * JSON.stringify(toCloudEvent(event)) // '{"specversion":"1.0","id":"…","type":"order.created",…}'
 * ```
 */
export function toCloudEvent(event: BusbarEvent): Record<string, unknown> {
  if (!(event.data instanceof Uint8Array)) return event as unknown as Record<string, unknown>;
  const { data, ...rest } = event;
  return {
    ...rest,
    data_base64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
  };
}

/** Serializes one event in CloudEvents structured JSON. */
export function serializeEvent(event: BusbarEvent): string {
  return JSON.stringify(toCloudEvent(event));
}

/** Serializes events as a CloudEvents JSON batch. */
export function serializeBatch(events: Iterable<BusbarEvent>): string {
  return JSON.stringify(Array.from(events, toCloudEvent));
}

/**
 * Checks a decoded CloudEvents structured-mode object and returns it as a
 * frozen event; throws `BUSBAR_ERR_INVALID_EVENT` (or `…_INVALID_TOPIC`) naming
 * the attribute at fault.
 *
 * @example
 * ```ts
 * const event = parseCloudEvent(JSON.parse(body))
 * ```
 */
export function parseCloudEvent(input: unknown): BusbarEvent {
  // An event this function made is frozen and valid: taken as it is, so a
  // layer that parsed it (the server) does not make the bus parse it again.
  if (wellFormedEvents.has(input as object)) return input as BusbarEvent;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid(
      `expected a JSON object, got ${input === null ? 'null' : Array.isArray(input) ? 'an array' : typeof input}`,
    );
  }
  const raw = input as Record<string, unknown>;
  if (raw.specversion !== '1.0')
    throw invalid(`"specversion" must be "1.0", got ${JSON.stringify(raw.specversion)}`);
  for (const name of ['id', 'source', 'type'] as const) {
    if (typeof raw[name] !== 'string' || (raw[name] as string).length === 0) {
      throw invalid(`"${name}" is required and must be a non-empty string`);
    }
  }
  assertTopic(raw.type);
  if ('data' in raw && 'data_base64' in raw)
    throw invalid('"data" and "data_base64" are mutually exclusive');

  // Built without a `time` key rather than deleting it: a deleted property
  // turns the object into a slow dictionary for every later read.
  const event: Record<string, unknown> =
    raw.time === undefined
      ? { specversion: '1.0', id: raw.id, type: raw.type, source: raw.source }
      : { specversion: '1.0', id: raw.id, type: raw.type, source: raw.source, time: attribute('time', () => rfc3339('time', raw.time)) };
  for (const name of ['subject', 'datacontenttype', 'dataschema'] as const) {
    if (raw[name] === undefined) continue;
    if (typeof raw[name] !== 'string') throw invalid(`"${name}" must be a string`);
    event[name] = raw[name];
  }
  if (typeof raw.data_base64 === 'string')
    event.data = new Uint8Array(Buffer.from(raw.data_base64, 'base64'));
  else if (raw.data_base64 !== undefined) throw invalid('"data_base64" must be a base64 string');
  else if ('data' in raw) event.data = raw.data;
  else event.data = undefined;

  const extensions: Record<string, unknown> = {};
  for (const name of Object.keys(raw)) if (!CORE_ATTRIBUTES.has(name)) extensions[name] = raw[name];
  attribute('extensions', () => addExtensions(event, extensions));
  if (event.expirytime !== undefined)
    attribute('expirytime', () => rfc3339('expirytime', event.expirytime));
  if (event.priority !== undefined && !Number.isSafeInteger(event.priority))
    throw invalid('"priority" must be an integer');
  if (event.sequence !== undefined && !Number.isSafeInteger(event.sequence))
    throw invalid('"sequence" must be an integer');
  Object.freeze(event);
  wellFormedEvents.add(event);
  return event as unknown as BusbarEvent;
}

/** Parses one structured-mode CloudEvent from JSON text. */
export function parseEvent(json: string): BusbarEvent {
  return parseCloudEvent(parseJson(json));
}

/** Parses a CloudEvents JSON batch; an error names the index of the bad event. */
export function parseBatch(json: string): BusbarEvent[] {
  const value = parseJson(json);
  if (!Array.isArray(value)) throw invalid('a batch must be a JSON array of CloudEvents');
  return value.map((item, index) => {
    try {
      return parseCloudEvent(item);
    } catch (error) {
      if (!(error instanceof BusbarError)) throw error;
      throw new BusbarError(error.code, `event ${index}: ${error.message}`, {
        cause: error,
        details: { ...error.details, index },
      });
    }
  });
}

function parseJson(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_EVENT',
      `malformed JSON: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function attribute<T>(name: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof BusbarError && error.code !== 'BUSBAR_ERR_INVALID_EVENT') {
      throw invalid(`"${name}": ${error.message}`, error);
    }
    throw error;
  }
}

function invalid(message: string, cause?: unknown): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_EVENT', `invalid CloudEvent: ${message}`, { cause });
}
