/**
 * The per-event costs the core suite's ratios come from, in ns per operation:
 * the clock, id and event construction, and a whole publish → handled
 * delivery. bench/README.md explains the core suite's misses with these.
 */
import { createBus, createEventId } from '../src/index.ts';
import { buildEvent } from '../src/core/event.ts';

const payload = { id: 'o-1', total: 42 };
let sink = 0;

function nsPerOp(ops: number, body: () => void): number {
  const started = process.hrtime.bigint();
  body();
  return Number(process.hrtime.bigint() - started) / ops;
}

async function nsPerOpAsync(ops: number, body: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await body();
  return Number(process.hrtime.bigint() - started) / ops;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

async function deliveries(subscribers: number, ops: number): Promise<number> {
  const bus = createBus();
  for (let i = 0; i < subscribers; i++) {
    bus.subscribe(`s${i}`, 'bench.tick', async (event) => {
      sink += (event.data as typeof payload).total;
    });
  }
  const ns = await nsPerOpAsync(ops, async () => {
    for (let i = 0; i < ops; i++) {
      void bus.publish('bench.tick', payload);
      if (i % 1000 === 999) await bus.idle();
    }
    await bus.idle();
  });
  await bus.close();
  return ns;
}

export async function run(rounds: number, scale: number): Promise<void> {
  const ops = Math.round(1_000_000 * scale);
  const events = Math.round(200_000 * scale);
  const rows: [string, () => number | Promise<number>][] = [
    ['Date.now()', () => nsPerOp(ops, () => { for (let i = 0; i < ops; i++) sink += Date.now(); })],
    ['performance.now()', () => nsPerOp(ops, () => { for (let i = 0; i < ops; i++) sink += performance.now(); })],
    ['createEventId()', () => nsPerOp(ops, () => { for (let i = 0; i < ops; i++) sink += createEventId().length; })],
    [
      'Object.freeze of an event literal',
      () => nsPerOp(ops, () => {
        for (let i = 0; i < ops; i++) {
          sink += Object.freeze({ specversion: '1.0', id: 'x', type: 't', source: 's', time: 't', data: payload }).id.length;
        }
      }),
    ],
    ['buildEvent() (clock, id, time, freeze)', () => nsPerOp(ops, () => { for (let i = 0; i < ops; i++) sink += buildEvent('bench.tick', payload, undefined, 'bench').id.length; })],
    [
      'await of an async handler (the direct-call baseline)',
      () => nsPerOpAsync(events, async () => {
        const handler = async (data: typeof payload) => { sink += data.total; };
        for (let i = 0; i < events; i++) await handler(payload);
      }),
    ],
    ['publish → handled, 1 async subscriber (per event)', () => deliveries(1, events)],
    ['publish → handled, 10 async subscribers (per event)', () => deliveries(10, events)],
  ];
  console.log('| operation | ns per op (median) |');
  console.log('|---|---:|');
  for (const [name, measure] of rows) {
    const samples: number[] = [];
    for (let round = 0; round < rounds + 2; round++) samples.push(await measure());
    console.log(`| ${name} | ${median(samples.slice(2)).toFixed(1)} |`);
  }
  if (sink === -1) console.log(sink);
}
