import { createBus, skip } from '../src/index.ts';

type Events = {
  'order.created': { id: string; total: number };
  'order.paid': { id: string };
};

const bus = createBus<Events>();

bus.subscribe('invoicer', 'order.created', (event) => `invoice for ${event.data.id}: ${event.data.total}`);
bus.subscribe('big-spender-alert', 'order.*', (event) =>
  'total' in event.data && event.data.total > 100 ? `alert ${event.data.id}` : skip,
);

const receipt = await bus.publish('order.created', { id: 'o-1', total: 250 });
for (const result of await receipt.settled()) {
  console.log(result.subscription, result.status, 'value' in result ? result.value : '');
}
// invoicer completed invoice for o-1: 250
// big-spender-alert completed alert o-1

console.log(bus.stats().total_delivered, 'deliveries'); // 2 deliveries
await bus.close();
