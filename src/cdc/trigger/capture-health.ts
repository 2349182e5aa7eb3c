import type { ClientBase } from 'pg';
import type { SourceHealth } from '../capture-source.ts';
import type { CaptureNames } from './capture-schema.ts';
import { capturedTables } from './table-triggers.ts';

/**
 * Trigger mode's health facts: change rows the reader has not acknowledged
 * (numbered or still to be ticked), the age of the oldest of them, the bytes
 * Busbar's tables hold, and warnings — a reader that stopped advancing (its
 * rows are not pruned and pile up), a captured table without a primary key
 * or with the trigger disabled.
 */
export async function captureHealth(
  client: ClientBase,
  names: CaptureNames,
  reader: string,
  acknowledged: number,
  staleAfterMs: number,
): Promise<SourceHealth> {
  const { rows } = await client.query<{ waiting: string; lag: number | null; retained: string }>(
    `WITH cp AS (SELECT greatest(coalesce((SELECT checkpoint FROM ${names.readers} WHERE name = $1), 0), $2::bigint) AS seq),
     numbered AS (SELECT coalesce(sum(m.changes), 0) AS waiting, min(m.committed_at) AS oldest
                  FROM ${names.commits} m, cp WHERE m.commit_seq > cp.seq),
     unticked AS (SELECT count(*) AS waiting, min(c.changed_at) AS oldest
                  FROM ${names.changes} c, ${names.ticks} t
                  WHERE c.txid >= coalesce(pg_snapshot_xmin(t.snapshot), '0'::xid8)
                    AND (t.snapshot IS NULL OR NOT pg_visible_in_snapshot(c.txid, t.snapshot)))
     SELECT (numbered.waiting + unticked.waiting)::text AS waiting,
            extract(epoch FROM clock_timestamp() - least(numbered.oldest, unticked.oldest))::float8 AS lag,
            (pg_total_relation_size($3::regclass) + pg_total_relation_size($4::regclass))::text AS retained
     FROM numbered, unticked`,
    [reader, acknowledged, names.changes, names.commits],
  );
  const facts = rows[0]!;
  const warnings: string[] = [];
  const { rows: stale } = await client.query<{ name: string; checkpoint: string; minutes: number }>(
    `SELECT r.name, r.checkpoint::text, (extract(epoch FROM now() - r.updated_at) / 60)::float8 AS minutes
     FROM ${names.readers} r
     WHERE r.updated_at < now() - make_interval(secs => $1::float8 / 1000)
       AND EXISTS (SELECT FROM ${names.commits} m WHERE m.commit_seq > r.checkpoint)
     ORDER BY r.name`,
    [staleAfterMs],
  );
  for (const each of stale) {
    warnings.push(
      `reader ${JSON.stringify(each.name)} has not advanced for ${Math.round(each.minutes)} min (checkpoint ${each.checkpoint}): ` +
        'its change rows are kept until it reads them; stream it again, or delete it from the readers table if it is gone for good',
    );
  }
  for (const table of await capturedTables(client, names)) {
    const name = JSON.stringify(`${table.schema}.${table.name}`);
    if (!table.enabled) warnings.push(`the capture trigger on ${name} is disabled: its changes are not captured`);
    if (!table.hasKey) warnings.push(`table ${name} has no primary key: its changes arrive with id null`);
  }
  return {
    lagBytes: Number(facts.waiting),
    lagSeconds: facts.lag === null ? 0 : Math.max(0, facts.lag),
    walStatus: undefined,
    retainedBytes: Number(facts.retained),
    warnings,
  };
}
