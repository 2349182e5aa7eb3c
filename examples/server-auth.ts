// API keys: with keys configured, every endpoint but /v1/health needs one,
// and each key may publish and read only the topics it was granted.
import assert from 'node:assert/strict';
import { createServer } from '../src/server/index.ts';
import { createMemoryStore } from '../src/store/index.ts';

const keys = {
  shop: 'shop-0123456789abcdef0123456789ab',
  dashboard: 'dash-0123456789abcdef0123456789ab',
  ops: 'ops-0123456789abcdef0123456789abcd',
};
const store = createMemoryStore();
const server = await createServer({
  port: 0,
  store,
  logger: false,
  apiKeys: [
    { name: 'shop', key: keys.shop, publish: ['order.>'] },
    { name: 'dashboard', key: keys.dashboard, subscribe: ['order.*'] },
    { name: 'ops', key: keys.ops, admin: true },
  ],
  rateLimit: { max: 1000, timeWindow: 60_000 },
});
const { url } = await server.listen();

const as = (key: string | undefined): Record<string, string> => (key === undefined ? {} : { authorization: `Bearer ${key}` });
const publish = (key: string | undefined, type: string) =>
  fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...as(key) },
    body: JSON.stringify({ type, data: {} }),
  });

assert.equal((await publish(undefined, 'order.created')).status, 401); // no key
assert.equal((await publish(keys.dashboard, 'order.created')).status, 403); // no publish right
assert.equal((await publish(keys.shop, 'payment.made')).status, 403); // not its topic
assert.equal((await publish(keys.shop, 'order.created')).status, 201);

// Reading needs the subscribe right for the patterns asked for.
const read = (key: string, topics: string) => fetch(`${url}/v1/events?topics=${topics}`, { headers: as(key) });
assert.equal((await read(keys.dashboard, 'order.*')).status, 200);
assert.equal((await read(keys.dashboard, 'order.>')).status, 403); // wider than its grant

// Stats, metrics, topics and dead letters are for admins; health for everyone.
assert.equal((await fetch(`${url}/v1/stats`, { headers: as(keys.shop) })).status, 403);
assert.equal((await fetch(`${url}/metrics`, { headers: as(keys.ops) })).status, 200);
assert.equal((await fetch(`${url}/v1/health`)).status, 200);

await server.close();
await store.close();
console.log('keys checked: 401 without one, 403 without the right, 2xx with it');
