// The client: publish to, read from and follow a Busbar server, from Node or
// a browser. Here the server runs in this process, on a free port with its
// log in a temporary SQLite file; in your code, give createClient its URL.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BusbarError, ConcurrencyError, createClient } from '../src/client/index.ts';
import { createServer } from '../src/server/index.ts';

const directory = mkdtempSync(join(tmpdir(), 'busbar-example-client-'));
const server = await createServer({ port: 0, data: join(directory, 'busbar.db'), logger: false });
const { url } = await server.listen();

type Events = {
  'order.created': { id: string; total: number };
  'order.paid': { id: string };
};
const client = createClient<Events>({ url });

// Follow order.* live over WebSocket, from the beginning of the log: one event
// at a time, in log order, each once, across reconnects.
const seen: string[] = [];
let sawBoth!: () => void;
const both = new Promise<void>((resolve) => (sawBoth = resolve));
const live = client.subscribe(
  'order.*',
  async (event) => {
    seen.push(`${event.sequence} ${event.type}`); // event is typed by the pattern
    if (seen.length === 2) sawBoth();
  },
  { from: 'beginning' },
);
await live.ready;

// Publish: resolves once the event is committed, with its id (made here, so
// a retry after a network failure is stored once) and its log position.
const created = await client.publish('order.created', { id: 'o-1', total: 250 }, { subject: 'o-1' });
const [paid] = await client.publishBatch([{ type: 'order.paid', data: { id: 'o-1' }, subject: 'o-1' }]);
await both;
await live.close(); // waits for the handler in flight
assert.deepEqual(seen, [`${created.position} order.created`, `${paid!.position} order.paid`]);
// The last event handled: a new subscription resumes with { from: { after: live.position } }.
assert.equal(live.position, paid!.position);

// Read the log: a page after a position, or every event with readAll.
const page = await client.read({ after: 0, topics: 'order.*' });
assert.deepEqual(page.events.map((event) => event.id), [created.id, paid!.id]);
const ids: string[] = [];
for await (const event of client.readAll({ after: created.position - 1, subject: 'o-1' })) ids.push(event.id);
assert.deepEqual(ids, [created.id, paid!.id]);

// Errors carry the server's code, status and message.
const refused = await client.publish({ type: 'order..created', data: {} }).catch((error: unknown) => error);
assert.ok(refused instanceof BusbarError);
assert.deepEqual([refused.code, refused.status], ['BUSBAR_ERR_INVALID_TOPIC', 400]);

// Streams: a stale expected version is a ConcurrencyError, as in process.
await client.appendToStream('account-1', [{ type: 'account.opened', data: { owner: 'Ada' } }], { expectedVersion: 'no_stream' });
const conflict = await client
  .appendToStream('account-1', [{ type: 'account.closed' }], { expectedVersion: 'no_stream' })
  .catch((error: unknown) => error);
assert.ok(conflict instanceof ConcurrencyError);
assert.equal(conflict.actual, 1);

await server.close();
rmSync(directory, { recursive: true, force: true });
console.log(`followed ${seen.length} events live; read them back; errors mapped`);
