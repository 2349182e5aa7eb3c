/**
 * Runs the benchmarks: `npm run bench` (all) or `npm run bench -- core`.
 * Options: `--rounds N` (default 15), `--quick` (fewer ops and rounds, for a smoke run).
 */
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string' }, quick: { type: 'boolean', default: false } },
});
const rounds = values.quick ? 3 : Number(values.rounds ?? 15);
const scale = values.quick ? 0.1 : 1;
const suites: Record<string, () => Promise<{ run(rounds: number, scale: number): Promise<void> }>> = {
  core: () => import('./core.bench.ts'),
  primitives: () => import('./primitives.bench.ts'),
  store: () => import('./store.bench.ts'),
  server: () => import('./server.bench.ts'),
  cdc: () => import('./cdc.bench.ts'),
};
const chosen = positionals.length ? positionals : Object.keys(suites);
console.log(`# Busbar benchmarks — node ${process.version}, ${rounds} rounds, medians\n`);
for (const name of chosen) {
  const load = suites[name];
  if (load === undefined) throw new Error(`no benchmark suite "${name}"; known: ${Object.keys(suites).join(', ')}`);
  await (await load()).run(rounds, scale);
}
