/**
 * The in-process bus against emitters and the direct call (the physical
 * limit), one process, same payloads, same handlers.
 */
import { EventEmitter } from 'node:events';
import Emittery from 'emittery';
import eventemitter2, { type EventEmitter2 as EventEmitter2Class } from 'eventemitter2';
import { EventEmitter as EventEmitter3 } from 'eventemitter3';
import mittModule, { type Emitter } from 'mitt';
import { createBus } from '../src/index.ts';
import { type Competitor, printTable, runScenario, type Scenario, type Score } from './harness.ts';

const { EventEmitter2 } = eventemitter2 as unknown as { EventEmitter2: typeof EventEmitter2Class };
// mitt ships CommonJS types for an ES default export.
const mitt = mittModule as unknown as <Events extends Record<string, unknown>>() => Emitter<Events>;
const payload = { id: 'o-1', total: 42 };
/** Fire-and-forget publishes go in bursts no larger than a queue's default bound. */
const BURST = 1000;
let sink = 0;
const syncHandler = (data: { total: number }): void => {
  sink += data.total;
};
const asyncHandler = async (data: { total: number }): Promise<number> => {
  sink += data.total;
  return sink;
};

function busbar(name: string, subscribers: number, handler: (data: any) => unknown, stats = true): Competitor {
  const bus = createBus({ stats });
  for (let i = 0; i < subscribers; i++) bus.subscribe(`s${i}`, 'bench.tick', (event) => handler(event.data));
  return {
    name,
    async run(ops) {
      for (let i = 0; i < ops; i++) {
        void bus.publish('bench.tick', payload);
        if (i % BURST === BURST - 1) await bus.idle();
      }
      await bus.idle();
    },
    teardown: () => void bus.close(),
  };
}

function fanOut(subscribers: number, ops: number): Scenario {
  const handlers = Array.from({ length: subscribers }, () => syncHandler);
  const node = new EventEmitter();
  const ee3 = new EventEmitter3();
  const emitter = mitt<{ tick: typeof payload }>();
  const ee2 = new EventEmitter2();
  const emittery = new Emittery();
  node.setMaxListeners(100);
  for (const handler of handlers) {
    node.on('tick', handler);
    ee3.on('tick', handler);
    emitter.on('tick', handler);
    ee2.on('tick', handler);
    emittery.on('tick', handler);
  }
  return {
    name: `fan-out to ${subscribers} (sync handlers)`,
    baseline: 'direct call',
    ops,
    competitors: [
      {
        name: 'direct call',
        run(n) {
          for (let i = 0; i < n; i++) for (let h = 0; h < handlers.length; h++) handlers[h]!(payload);
        },
      },
      { name: 'node:events', run: (n) => void repeat(n, () => node.emit('tick', payload)) },
      { name: 'eventemitter3', run: (n) => void repeat(n, () => ee3.emit('tick', payload)) },
      { name: 'mitt', run: (n) => void repeat(n, () => emitter.emit('tick', payload)) },
      { name: 'eventemitter2', run: (n) => void repeat(n, () => ee2.emit('tick', payload)) },
      {
        name: 'emittery',
        async run(n) {
          for (let i = 0; i < n; i++) await emittery.emit('tick', payload);
        },
      },
      busbar('busbar', subscribers, syncHandler),
    ],
  };
}

function orderedAsync(ops: number): Scenario {
  const ee2 = new EventEmitter2();
  ee2.on('tick', asyncHandler as any);
  const emittery = new Emittery();
  emittery.on('tick', asyncHandler as any);
  const awaitEach = createBus();
  awaitEach.subscribe('s', 'bench.tick', (event) => asyncHandler(event.data as typeof payload));
  return {
    name: 'ordered async delivery with acks, 1 subscriber',
    baseline: 'direct call',
    ops,
    competitors: [
      {
        name: 'direct call',
        async run(n) {
          for (let i = 0; i < n; i++) await asyncHandler(payload);
        },
      },
      {
        name: 'eventemitter2 emitAsync',
        async run(n) {
          for (let i = 0; i < n; i++) await ee2.emitAsync('tick', payload);
        },
      },
      {
        name: 'emittery',
        async run(n) {
          for (let i = 0; i < n; i++) await emittery.emit('tick', payload);
        },
      },
      busbar('busbar (bursts of 1000)', 1, asyncHandler),
      {
        name: 'busbar (await each publish)',
        async run(n) {
          for (let i = 0; i < n; i++) await awaitEach.publish('bench.tick', payload);
          await awaitEach.idle();
        },
        teardown: () => void awaitEach.close(),
      },
    ],
  };
}

function wildcard(ops: number): Scenario {
  const topics = Array.from({ length: 10 }, (_, i) => `orders.t${i}`);
  const ee2 = new EventEmitter2({ wildcard: true, delimiter: '.' });
  ee2.on('orders.*', syncHandler);
  const bus = createBus();
  bus.subscribe('s', 'orders.*', (event) => syncHandler(event.data as typeof payload));
  return {
    name: 'wildcard routing (orders.* over 10 topics)',
    baseline: 'direct call',
    ops,
    competitors: [
      { name: 'direct call', run: (n) => void repeat(n, () => syncHandler(payload)) },
      { name: 'eventemitter2 wildcard', run: (n) => void repeat(n, (i) => ee2.emit(topics[i % 10]!, payload)) },
      {
        name: 'busbar',
        async run(n) {
          for (let i = 0; i < n; i++) {
            void bus.publish(topics[i % 10]!, payload);
            if (i % BURST === BURST - 1) await bus.idle();
          }
          await bus.idle();
        },
        teardown: () => void bus.close(),
      },
    ],
  };
}

function results(ops: number): Scenario {
  const ee2 = new EventEmitter2();
  ee2.on('tick', asyncHandler as any);
  const bus = createBus();
  bus.subscribe('s', 'bench.tick', (event) => asyncHandler(event.data as typeof payload));
  return {
    name: 'await publish, then the result per subscriber',
    baseline: 'direct call',
    ops,
    competitors: [
      {
        name: 'direct call',
        async run(n) {
          for (let i = 0; i < n; i++) sink += await asyncHandler(payload);
        },
      },
      {
        name: 'eventemitter2 emitAsync',
        async run(n) {
          for (let i = 0; i < n; i++) sink += ((await ee2.emitAsync('tick', payload)) as number[])[0]!;
        },
      },
      {
        name: 'busbar',
        async run(n) {
          for (let i = 0; i < n; i++) {
            const [result] = await (await bus.publish('bench.tick', payload)).settled();
            if (result!.status === 'completed') sink += result!.value as number;
          }
        },
        teardown: () => void bus.close(),
      },
    ],
  };
}

function statsCost(ops: number): Scenario {
  return {
    name: 'stats on vs off (1 async subscriber)',
    baseline: 'busbar, stats off',
    ops,
    competitors: [busbar('busbar, stats off', 1, asyncHandler, false), busbar('busbar, stats on', 1, asyncHandler, true)],
  };
}

function repeat(n: number, fn: (i: number) => unknown): void {
  for (let i = 0; i < n; i++) fn(i);
}

export async function run(rounds: number, scale: number): Promise<void> {
  const ops = Math.round(200_000 * scale);
  const scores: Score[] = [];
  for (const scenario of [fanOut(1, ops), fanOut(10, ops), orderedAsync(ops), wildcard(ops), results(ops), statsCost(ops)]) {
    scores.push(...(await runScenario(scenario, rounds)));
  }
  printTable(scores);
  if (sink === -1) console.log(sink); // keeps the handlers' work observable
}
