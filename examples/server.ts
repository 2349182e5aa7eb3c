// The server: Busbar over HTTP. It starts on a free port with its log in a
// SQLite file, takes events from any HTTP client (here fetch), answers with
// their log positions once committed, and reads them back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '../src/server/index.ts';

const directory = mkdtempSync(join(tmpdir(), 'busbar-example-server-'));
const server = await createServer({ port: 0, data: join(directory, 'busbar.db'), logger: false });
const { url } = await server.listen();

// Publish: plain JSON { type, data }; the answer comes once the event is on disk.
const published = await fetch(`${url}/v1/events`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ type: 'order.created', data: { id: 'o-1', total: 250 }, subject: 'o-1' }),
});
assert.equal(published.status, 201);
const { id, position } = (await published.json()) as { id: string; position: number };

// Read the log from a position, filtered by topic pattern: CloudEvents with their position.
const page = (await (await fetch(`${url}/v1/events?after=0&topics=order.*`)).json()) as {
  events: { id: string; type: string; data: unknown; sequence: number }[];
  last: number;
  head: number;
};
assert.deepEqual(
  page.events.map((event) => [event.id, event.type, event.sequence]),
  [[id, 'order.created', position]],
);
assert.equal(page.head, position);

// Errors are JSON with a stable code and the matching status.
const refused = await fetch(`${url}/v1/events`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ type: 'order..created' }),
});
assert.equal(refused.status, 400);
assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'BUSBAR_ERR_INVALID_TOPIC');

// Health for load balancers; stats for people.
assert.equal((await fetch(`${url}/v1/health/ready`)).status, 200);
const stats = (await (await fetch(`${url}/v1/stats`)).json()) as { total_published: number };
assert.equal(stats.total_published, 1);

// Graceful: requests in flight finish, streaming clients are told to go away, the log is closed.
await server.close();
rmSync(directory, { recursive: true, force: true });
console.log(`published ${id} at position ${position} and read it back`);
