/**
 * A process for outbox.int.test.ts to kill: it writes an order row and its
 * event in one transaction, says so on stdout, then idles until SIGKILLed.
 *
 * argv: connection string, schema, order id, event id, and `commit` (kill
 * after COMMIT) or `hold` (kill with the transaction still open).
 */
import pg from 'pg';
import { buildEvent } from '../../core/event.ts';
import { createPostgresStore } from './index.ts';

const [connectionString, schema, orderId, eventId, mode] = process.argv.slice(2) as [string, string, string, string, string];
const store = await createPostgresStore({ connectionString, schema });
const client = new pg.Client({ connectionString });
await client.connect();
await client.query('BEGIN');
await client.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.orders (id) VALUES ($1)`, [orderId]);
await store.appendWithin(client, [buildEvent('orders.placed', { orderId }, { id: eventId }, 'outbox-child')]);
if (mode === 'commit') {
  await client.query('COMMIT');
  process.stdout.write('committed\n');
} else {
  process.stdout.write('appended\n');
}
// Idle until killed: no clean shutdown may run.
setInterval(() => {}, 60_000);
