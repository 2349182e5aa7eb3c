import type { IncomingHttpHeaders } from 'node:http';
import { CLOUDEVENTS_BATCH_JSON, CLOUDEVENTS_JSON } from '../core/cloudevents.ts';
import { BusbarError } from '../core/errors.ts';

/** The events a publish request carries, not yet checked. */
export interface Intake {
  readonly events: unknown[];
  /** True when the request was a batch (an array), which is answered with a list. */
  readonly batch: boolean;
}

/**
 * Reads the events out of a `POST /v1/events` request in each CloudEvents
 * HTTP mode: binary (`ce-*` headers, the body is the data), structured
 * (`application/cloudevents+json`), batch (`application/cloudevents-batch+json`),
 * and Busbar's plain JSON (`application/json`, one `{ type, data, ... }` or
 * an array; a CloudEvent with `specversion` is taken as it is). Checking the
 * events is the publisher's job.
 *
 * @example
 * ```ts
 * const { events, batch } = eventsOfRequest(request.headers, request.body);
 * ```
 */
export function eventsOfRequest(headers: IncomingHttpHeaders, body: unknown): Intake {
  if (headers['ce-specversion'] !== undefined) return { events: [binaryEvent(headers, body)], batch: false };
  const type = mediaType(headers['content-type']);
  if (type === CLOUDEVENTS_JSON) {
    if (Array.isArray(body)) throw invalid(`${CLOUDEVENTS_JSON} holds one event; send a list as ${CLOUDEVENTS_BATCH_JSON}`);
    requireStructured(body, undefined);
    return { events: [body], batch: false };
  }
  if (type === CLOUDEVENTS_BATCH_JSON) {
    if (!Array.isArray(body)) throw invalid(`${CLOUDEVENTS_BATCH_JSON} must be a JSON array of CloudEvents`);
    body.forEach(requireStructured);
    return { events: body, batch: true };
  }
  if (type === 'application/json') {
    if (body === undefined) throw invalid('the request body is empty: send an event { "type": …, "data": … } or an array of them');
    return Array.isArray(body) ? { events: body, batch: true } : { events: [body], batch: false };
  }
  throw new BusbarError(
    'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE',
    `content type ${type === '' ? '(none)' : `"${type}"`} needs CloudEvents binary mode (ce-specversion, ce-id, ce-source, ce-type headers); ` +
      `otherwise send application/json, ${CLOUDEVENTS_JSON} or ${CLOUDEVENTS_BATCH_JSON}`,
  );
}

/** The media type without parameters, lower-cased: `Application/JSON; charset=utf-8` → `application/json`. */
export function mediaType(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const end = contentType.indexOf(';');
  return (end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
}

function requireStructured(event: unknown, index: number | undefined): void {
  if (typeof event === 'object' && event !== null && !Array.isArray(event) && 'specversion' in event) return;
  const where = index === undefined ? '' : `event ${index}: `;
  throw invalid(`${where}a structured CloudEvent needs "specversion": "1.0" (send the plain { type, data } form as application/json)`, index);
}

const JSON_DATA = /^application\/(json|[^;\s]+\+json)$/;

/**
 * A binary-mode event: attributes from `ce-*` headers (percent-decoded, as
 * the HTTP binding asks), `datacontenttype` from `Content-Type`, and the body
 * as data: parsed JSON for JSON types, a string for `text/*`, bytes
 * otherwise (serialised as `data_base64`).
 */
function binaryEvent(headers: IncomingHttpHeaders, body: unknown): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('ce-') || value === undefined) continue;
    if (Array.isArray(value)) throw invalid(`header "${name}" is given more than once`);
    event[name.slice(3)] = percentDecoded(value);
  }
  // The log assigns positions; a sequence sent by a client is not kept.
  delete event.sequence;
  if (typeof event.priority === 'string' && /^-?\d+$/.test(event.priority)) event.priority = Number(event.priority);
  const contentType = headers['content-type'];
  if (contentType !== undefined) event.datacontenttype = contentType;
  if (body === undefined || (Buffer.isBuffer(body) && body.length === 0)) return event;
  const type = mediaType(contentType);
  if (!Buffer.isBuffer(body) || JSON_DATA.test(type)) event.data = body;
  else if (type.startsWith('text/')) event.data = body.toString('utf8');
  else event.data = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  return event;
}

function percentDecoded(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // a lone "%" is a literal percent sign, not an encoding
  }
}

function invalid(message: string, index?: number): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_EVENT', `invalid CloudEvent: ${message}`, {
    details: index === undefined ? undefined : { index },
  });
}
