import type { ClientBase } from 'pg';
import type { BusbarEvent } from '../../core/event.ts';
import type { AppendOptions } from '../../core/event-log.ts';
import { encodeEvent } from '../codec.ts';
import type { ExpectedVersion } from '../event-store.ts';
import { checkExpectedVersion } from '../expected-version.ts';
import type { SchemaNames } from './schema.ts';

interface EncodedEvent {
  readonly id: string;
  readonly type: string;
  readonly json: string;
}

/** One `append` or `appendToStream` call, encoded up front so a bad event fails only its caller. */
export interface AppendRequest {
  readonly events: readonly EncodedEvent[];
  /** JSON of `recipients`, for a plain append. */
  readonly recipients: string | null;
  /** Set for `appendToStream`. */
  readonly stream?: string;
  readonly expected?: ExpectedVersion;
}

export type AppendOutcome =
  | { readonly ok: true; readonly positions: number[]; readonly version: number | undefined }
  | { readonly ok: false; readonly error: unknown };

export function appendRequest(events: readonly BusbarEvent[], options: AppendOptions = {}): AppendRequest {
  return {
    events: encodeAll(events),
    recipients: options.recipients === undefined ? null : JSON.stringify(options.recipients),
  };
}

export function streamRequest(stream: string, events: readonly BusbarEvent[], expected: ExpectedVersion): AppendRequest {
  return { events: encodeAll(events), recipients: null, stream, expected };
}

function encodeAll(events: readonly BusbarEvent[]): EncodedEvent[] {
  return events.map((event) => ({ id: event.id, type: event.type, json: encodeEvent(event) }));
}

/** What the batch read under the lock, then extended as requests are planned. */
interface BatchState {
  head: number;
  readonly known: Map<string, number>;
  readonly streams: Map<string, { version: number; retained: boolean }>;
}

/** Column arrays for one multi-row INSERT through `unnest`. */
class Rows {
  readonly position: number[] = [];
  readonly id: string[] = [];
  readonly type: string[] = [];
  readonly stream: (string | null)[] = [];
  readonly streamVersion: (number | null)[] = [];
  readonly recipients: (string | null)[] = [];
  readonly event: string[] = [];
}

/**
 * Writes a batch of append requests inside the caller's open transaction.
 *
 * It takes the schema's append lock first, so it is the only writer until the
 * transaction ends; only then, in later statements (each with a fresh
 * READ COMMITTED snapshot), does it read the head, the known ids and the
 * stream versions. Positions continue the head with no hole, and because a
 * commit becomes visible before its lock is released, no reader can see a
 * position before all those below it. Requests are checked in order as if
 * they ran one after another; one failing its expected version fails alone.
 *
 * Returns each request's outcome and the new head; nothing is visible until
 * the caller commits.
 */
export async function writeAppends(
  client: ClientBase,
  names: SchemaNames,
  requests: readonly AppendRequest[],
  notify: boolean,
): Promise<{ outcomes: AppendOutcome[]; head: number }> {
  await client.query({ name: names.statement('lock'), text: `SELECT pg_advisory_xact_lock(${names.appendLock})` });
  const state = await readState(client, names, requests);
  const rows = new Rows();
  const touched = new Set<string>();
  const outcomes = requests.map((request) => plan(request, state, rows, touched));
  if (rows.position.length === 0) return { outcomes, head: state.head };

  const streamNames = [...touched];
  await client.query({
    name: names.statement(notify ? 'insert_notify' : 'insert'),
    text: `WITH at AS (
       SELECT greatest(recorded_at, date_trunc('milliseconds', clock_timestamp())) AS at FROM ${names.head}
     ), inserted AS (
       INSERT INTO ${names.events} (position, id, type, stream, stream_version, recipients, event, recorded_at)
       SELECT r.position, r.id, r.type, r.stream, r.stream_version, r.recipients::jsonb, r.event, at.at
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])
         AS r (position, id, type, stream, stream_version, recipients, event), at
     ), versions AS (
       INSERT INTO ${names.streams} (stream, version)
       SELECT * FROM unnest($8::text[], $9::bigint[])
       ON CONFLICT (stream) DO UPDATE SET version = excluded.version
     ), moved AS (
       UPDATE ${names.head} SET position = $10, recorded_at = (SELECT at FROM at)
     )
     SELECT ${notify ? 'pg_notify($11, $10::text)' : '$11::text'}`,
    values: [
      rows.position,
      rows.id,
      rows.type,
      rows.stream,
      rows.streamVersion,
      rows.recipients,
      rows.event,
      streamNames,
      streamNames.map((stream) => state.streams.get(stream)!.version),
      state.head,
      names.channel,
    ],
  });
  const retained = streamNames.filter((stream) => state.streams.get(stream)!.retained);
  if (retained.length > 0) await applyRetention(client, names, retained);
  return { outcomes, head: state.head };
}

async function readState(client: ClientBase, names: SchemaNames, requests: readonly AppendRequest[]): Promise<BatchState> {
  const ids = requests.flatMap((request) => request.events.map((event) => event.id));
  const streams = [...new Set(requests.flatMap((request) => (request.stream === undefined ? [] : [request.stream])))];
  // One round trip; JSON text so a pool with custom type parsers reads the same.
  // Not a prepared statement: a cached generic plan, made while the table was
  // small, keeps a sequential scan with an unhashed `= ANY($1)` for ever, and
  // each append then costs more as the log grows. Planned with the actual ids,
  // it probes the id index (or hashes the list while the table is small).
  const { rows } = await client.query<{ head: string; known: string; streams: string }>({
    text: `SELECT h.position::text AS head,
       (SELECT coalesce(json_agg(json_build_array(e.id, e.position)), '[]') FROM ${names.events} e
         WHERE e.id = ANY($1::text[]))::text AS known,
       (SELECT coalesce(json_agg(json_build_array(s.stream, s.version, s.metadata <> '{}'::jsonb)), '[]')
         FROM ${names.streams} s WHERE s.stream = ANY($2::text[]))::text AS streams
     FROM ${names.head} h`,
    values: [ids, streams],
  });
  const row = rows[0]!;
  const known = new Map(JSON.parse(row.known) as [string, number][]);
  const versions = JSON.parse(row.streams) as [string, number, boolean][];
  return {
    head: Number(row.head),
    known,
    streams: new Map(versions.map(([stream, version, retained]) => [stream, { version, retained }])),
  };
}

/** Mirrors the memory store's append rules against the batch state, adding rows for what is new. */
function plan(request: AppendRequest, state: BatchState, rows: Rows, touched: Set<string>): AppendOutcome {
  const add = (event: EncodedEvent, stream: string | null, version: number | null): number => {
    const position = ++state.head;
    state.known.set(event.id, position);
    rows.position.push(position);
    rows.id.push(event.id);
    rows.type.push(event.type);
    rows.stream.push(stream);
    rows.streamVersion.push(version);
    rows.recipients.push(stream === null ? request.recipients : null);
    rows.event.push(event.json);
    return position;
  };
  const { stream, events } = request;
  if (stream === undefined) {
    return { ok: true, positions: events.map((event) => state.known.get(event.id) ?? add(event, null, null)), version: undefined };
  }
  const current = state.streams.get(stream) ?? { version: 0, retained: false };
  const fresh = events.filter((event) => !state.known.has(event.id));
  if (fresh.length === 0 && events.length > 0) {
    // A retried append: nothing to add, whatever the stream's version now.
    return { ok: true, positions: events.map((event) => state.known.get(event.id)!), version: current.version };
  }
  try {
    checkExpectedVersion(stream, request.expected ?? 'any', current.version);
  } catch (error) {
    return { ok: false, error };
  }
  if (fresh.length === 0) return { ok: true, positions: [], version: current.version };
  state.streams.set(stream, current);
  touched.add(stream);
  const positions = events.map((event) => state.known.get(event.id) ?? add(event, stream, ++current.version));
  return { ok: true, positions, version: current.version };
}

/**
 * Deletes what the streams' metadata no longer keeps, freeing the space:
 * versions below `truncateBefore` or outside the newest `maxCount`, and rows
 * older than `maxAge` seconds. Reads hide `maxAge`-expired rows until then.
 */
export async function applyRetention(client: ClientBase, names: SchemaNames, streams: readonly string[]): Promise<void> {
  await client.query(
    `DELETE FROM ${names.events} e USING ${names.streams} s
     WHERE s.stream = ANY($1::text[]) AND e.stream = s.stream AND s.metadata <> '{}'::jsonb AND (
       e.stream_version < greatest(
         coalesce((s.metadata->>'truncateBefore')::bigint, 0),
         coalesce(s.version - (s.metadata->>'maxCount')::bigint + 1, 0))
       OR e.recorded_at < clock_timestamp() - make_interval(secs => (s.metadata->>'maxAge')::float8))`,
    [streams],
  );
}
