// End-to-end check of the published artifact: pack the repository the way
// `npm publish` would (which runs `prepare` → build), install the tarball into a
// brand-new project and import it from plain JavaScript.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

// The environment for nested npm commands. When this file runs under `npm test`,
// npm exports variables describing *this* package and project; drop those so the
// nested commands see only the directory they are run in.
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const k = key.toLowerCase();
    if (
      k.startsWith('npm_package_') ||
      k.startsWith('npm_lifecycle_') ||
      k === 'npm_command' ||
      k === 'npm_config_local_prefix' ||
      k === 'init_cwd'
    ) {
      continue;
    }
    env[key] = value;
  }
  env.npm_config_loglevel = 'error';
  env.npm_config_update_notifier = 'false';
  return env;
}

async function run(
  file: string,
  args: string[],
  cwd: string,
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileAsync(file, args, {
      cwd,
      env: npmEnv(),
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
      timeout: 100_000,
    });
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${file} ${args.join(' ')} failed in ${cwd}: ${e.message}\n` +
        `--- stdout ---\n${e.stdout ?? ''}\n--- stderr ---\n${e.stderr ?? ''}`,
      { cause: error },
    );
  }
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

// `npm pack --json` prints a JSON array, but the `prepare` script's banner and
// output share the same stdout, so take the array that starts on its own line.
function parsePackJson(stdout: string): PackResult[] {
  const start = stdout.search(/^\[/m);
  assert.notEqual(start, -1, `no JSON array in npm pack output:\n${stdout}`);
  return JSON.parse(stdout.slice(start)) as PackResult[];
}

const mainMjs = `import { createBus, skip } from 'busbar';
const bus = createBus();
bus.subscribe('greeter', 'greeting.*', (event) => \`hello \${event.data.name}\`);
const receipt = await bus.publish('greeting.sent', { name: 'Ada' });
const results = await receipt.settled();
console.log(JSON.stringify(results.map(r => ({ subscription: r.subscription, status: r.status, value: r.value }))));
await bus.close();
`;

// The subpaths: a durable bus on the embedded SQLite store, the event-sourcing
// and testing entries, and the PostgreSQL entry failing clearly without \`pg\`
// (an optional peer dependency the scratch project does not install).
const durableMjs = `import { createBus } from 'busbar';
import { createMemoryStore } from 'busbar/store';
import { createSqliteStore } from 'busbar/store/sqlite';
import { aggregateStream } from 'busbar/event-sourcing';
import { eventStoreContract } from 'busbar/testing';
const store = createSqliteStore({ path: 'events.db' });
const bus = createBus({ store });
const seen = [];
bus.subscribe('indexer', 'doc.*', (event) => { seen.push(event.sequence); }, { from: 'beginning' });
const receipt = await bus.publish('doc.added', { n: 1 });
await bus.idle();
await bus.close();
await store.close();
let missing;
try { await import('busbar/store/postgres'); } catch (error) { missing = error.code; }
const memory = createMemoryStore();
const { version } = await memory.appendToStream('a-1', []);
console.log(JSON.stringify({ sequence: receipt.sequence, seen, missing, version, helpers: [typeof aggregateStream, typeof eventStoreContract] }));
`;

// The server, the client and the CDC entry (which needs \`pg\`, absent here).
const serverMjs = `import { createServer } from 'busbar/server';
import { createClient } from 'busbar/client';
const server = await createServer({ port: 0, data: 'served.db', logger: false });
const { url } = await server.listen();
const client = createClient({ url });
const accepted = await client.publish('doc.added', { n: 1 });
const page = await client.read({ after: 0 });
await server.close();
let missing;
try { await import('busbar/cdc'); } catch (error) { missing = error.code; }
console.log(JSON.stringify({ position: accepted.position, read: page.events.map((event) => event.type), missing }));
`;

let scratchRoot: string | undefined;

after(async () => {
  if (scratchRoot !== undefined) {
    await rm(scratchRoot, { recursive: true, force: true });
  }
});

test('the packed package installs into a fresh project and runs', {
  timeout: 120_000,
}, async () => {
  scratchRoot = await mkdtemp(join(tmpdir(), 'busbar-pack-'));
  const packDir = join(scratchRoot, 'pack');
  const appDir = join(scratchRoot, 'app');
  await mkdir(packDir);
  await mkdir(appDir);

  // Pack: this runs `prepare`, i.e. a fresh build of dist/.
  const pack = await run('npm', ['pack', '--json', '--pack-destination', packDir], repoRoot);
  const [result] = parsePackJson(pack.stdout);
  assert.ok(result, 'npm pack --json reported no package');
  const paths = result.files.map((f) => f.path);
  assert.ok(paths.includes('dist/index.js'), `dist/index.js missing from tarball: ${paths}`);
  assert.ok(paths.includes('dist/index.d.ts'), `dist/index.d.ts missing from tarball: ${paths}`);
  assert.deepEqual(
    paths.filter((p) => p.includes('.test.')),
    [],
    'test files must not be published',
  );
  assert.deepEqual(
    paths.filter((p) => p.startsWith('src/')),
    [],
    'source files must not be published',
  );

  const tarballs = (await readdir(packDir)).filter((name) => name.endsWith('.tgz'));
  assert.equal(tarballs.length, 1, `expected one tarball in ${packDir}, found ${tarballs}`);
  const tarball = join(packDir, tarballs[0]);

  // Install into a brand-new ESM project (its runtime dependencies come from the registry).
  await writeFile(
    join(appDir, 'package.json'),
    `${JSON.stringify({ name: 'busbar-pack-smoke', version: '0.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  await run('npm', ['install', tarball, '--no-audit', '--no-fund'], appDir);

  // Use it from plain JavaScript, with the same Node binary that runs this test.
  await writeFile(join(appDir, 'main.mjs'), mainMjs);
  const { stdout } = await run(process.execPath, ['main.mjs'], appDir);
  assert.equal(
    stdout.trim(),
    '[{"subscription":"greeter","status":"completed","value":"hello Ada"}]',
  );

  await writeFile(join(appDir, 'durable.mjs'), durableMjs);
  const durable = await run(process.execPath, ['durable.mjs'], appDir);
  assert.deepEqual(JSON.parse(durable.stdout.trim()), {
    sequence: 1,
    seen: [1],
    missing: 'BUSBAR_ERR_MISSING_DRIVER',
    version: 0,
    helpers: ['function', 'function'],
  });

  await writeFile(join(appDir, 'server.mjs'), serverMjs);
  const served = await run(process.execPath, ['server.mjs'], appDir);
  assert.deepEqual(JSON.parse(served.stdout.trim()), { position: 1, read: ['doc.added'], missing: 'BUSBAR_ERR_MISSING_DRIVER' });

  // The bin, as a user's shell runs it: by its shebang, with this Node first on PATH.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
  const version = await execFileAsync(join(appDir, 'node_modules', '.bin', 'busbar'), ['--version'], { cwd: appDir, env, encoding: 'utf8' });
  assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
});
