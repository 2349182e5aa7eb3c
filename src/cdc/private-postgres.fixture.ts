/**
 * A private PostgreSQL instance for one test file: logical replication needs
 * `wal_level=logical`, which the shared server does not have, and fault
 * tests stop, freeze and kill the server, which must never hit the shared one.
 *
 * The instance is a copy of a template data directory that `initdb` makes
 * once per machine (copying takes a fraction of initdb's second), started
 * with `pg_ctl` on a free port, listening on 127.0.0.1 and on a socket in its
 * own temporary directory. PostgreSQL refuses to run as root, so a root
 * process runs the binaries as the `postgres` OS user.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  readonly connectionString: string;
  readonly port: number;
  /** The postmaster's process id (changes on restart). */
  readonly pid: number;
  /** Stops the server if it runs (restart: `start()`). */
  stopServer(): Promise<void>;
  /** Starts a stopped or killed server again on the same port and data. */
  start(): Promise<void>;
  /** A fast shutdown and start, as an operator's restart. */
  restart(): Promise<void>;
  /**
   * Signals the whole server: the postmaster and every backend. SIGSTOP
   * freezes it as a hung machine would (a SIGSTOP of the postmaster alone
   * leaves running backends answering), SIGCONT thaws it, SIGKILL crashes it.
   */
  kill(signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): void;
  /** Stops the server and deletes its files. */
  stop(): Promise<void>;
}

export interface PrivatePostgresOptions {
  /** Extra server settings (`-c name=value`), e.g. `{ wal_sender_timeout: '5s' }`. */
  settings?: Record<string, string>;
}

const SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  wal_level: 'logical',
  max_replication_slots: '10',
  max_wal_senders: '10',
  max_connections: '40',
  shared_buffers: '16MB',
  // Test data only: the OS page cache survives a server crash, and no test
  // crashes the machine.
  fsync: 'off',
  full_page_writes: 'off',
  log_min_messages: 'warning',
};

/** Running instances and their directories, stopped when the process exits. */
const live = new Map<PrivatePostgres, string>();
let exitHookInstalled = false;

/**
 * Starts a private PostgreSQL with `wal_level=logical`. Stop it in `after()`;
 * a process that exits without doing so stops it on the way out.
 *
 * @example
 * ```ts
 * const postgres = await startPrivatePostgres();
 * after(() => postgres.stop());
 * const client = new pg.Client({ connectionString: postgres.connectionString });
 * ```
 */
export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = binDirectory();
  const template = await templateDataDirectory(bin);
  const dir = mkdtempSync(join(tmpdir(), 'busbar-pg-'));
  asPostgresOwner(dir);
  const data = join(dir, 'data');
  execFileSync('cp', ['-a', template, data]);
  const settings = { ...SETTINGS, ...options.settings };
  let port = 0;
  let pid = 0;

  const pgCtl = (args: string[]) => runAsPostgres(join(bin, 'pg_ctl'), ['-D', data, ...args]);
  const serverOptions = () =>
    [`-p ${port}`, `-k ${dir}`, ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`)].join(' ');
  const start = async (): Promise<void> => {
    await pgCtl(['-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', serverOptions(), 'start']).catch((error: unknown) => {
      throw new Error(`private PostgreSQL did not start: ${String(error)}\n${serverLog(dir)}`, { cause: error });
    });
    pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  };

  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (error) {
      // Another process may have taken the port between our probe and the bind.
      if (attempt === 3) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  const instance: PrivatePostgres = {
    get connectionString() {
      return `postgres://postgres@127.0.0.1:${port}/postgres`;
    },
    get port() {
      return port;
    },
    get pid() {
      return pid;
    },
    async stopServer() {
      if (isRunning(pid)) {
        signalGroup(pid, 'SIGCONT');
        await pgCtl(['-m', 'fast', '-w', 'stop']).catch(() => {});
      }
    },
    start,
    async restart() {
      signalGroup(pid, 'SIGCONT');
      // The log file matters: without it the new postmaster would hold our stdout pipe open.
      await pgCtl(['-l', join(dir, 'server.log'), '-m', 'fast', '-w', '-t', '60', '-o', serverOptions(), 'restart']);
      pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    },
    kill(signal) {
      signalGroup(pid, signal);
    },
    async stop() {
      live.delete(instance);
      if (isRunning(pid)) {
        signalGroup(pid, 'SIGCONT');
        await pgCtl(['-m', 'immediate', '-w', 'stop']).catch(() => {});
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.set(instance, dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', stopAllSync);
  }
  return instance;
}

/** On exit only synchronous work runs: crash the servers, delete their files. */
function stopAllSync(): void {
  for (const [instance, dir] of live) {
    signalGroup(instance.pid, 'SIGCONT');
    signalGroup(instance.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `/usr/lib/postgresql/<highest version>/bin`, or PG_BIN when set. */
function binDirectory(): string {
  if (process.env.PG_BIN !== undefined) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root).filter((name) => existsSync(join(root, name, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(`no PostgreSQL server binaries under ${root}: install postgresql, or set PG_BIN to the directory holding initdb and pg_ctl`);
  }
  return join(root, versions[0]!, 'bin');
}

/** The machine's template data directory for this PostgreSQL version, made once. */
async function templateDataDirectory(bin: string): Promise<string> {
  const version = bin.split('/').at(-2) ?? 'pg';
  const template = join(tmpdir(), `busbar-pg-template-${version}-${userInfo().uid}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const building = mkdtempSync(join(tmpdir(), 'busbar-pg-template-build-'));
  asPostgresOwner(building);
  const data = join(building, 'data');
  await runAsPostgres(join(bin, 'initdb'), [
    '-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions',
  ]);
  try {
    // Atomic: a test file starting in parallel sees a whole template or none.
    renameSync(data, template);
  } catch {
    // Someone else finished first: theirs is as good as ours.
  }
  rmSync(building, { recursive: true, force: true });
  return template;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function asPostgresOwner(path: string): void {
  if (!isRoot()) return;
  const { uid, gid } = postgresUser();
  chownSync(path, uid, gid);
}

let postgresIds: { uid: number; gid: number } | undefined;

function postgresUser(): { uid: number; gid: number } {
  postgresIds ??= {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  };
  return postgresIds;
}

/** initdb and the server refuse root: a root process runs them as `postgres`. */
async function runAsPostgres(file: string, args: string[]): Promise<void> {
  const [command, commandArgs] = isRoot() ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  await run(command, commandArgs, { encoding: 'utf8' });
}

/**
 * Signals the postmaster and its children. Each backend calls setsid(), so
 * the server is not one process group: the children are found by parent id.
 * SIGSTOP goes to the postmaster first (it forks no new backend meanwhile),
 * SIGCONT to it last.
 */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  const children = childrenOf(pid);
  const order = signal === 'SIGCONT' ? [...children, pid] : [pid, ...children];
  for (const each of order) {
    try {
      process.kill(each, signal);
    } catch {}
  }
}

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command may hold spaces and parentheses: the fields after its last ')' are fixed.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(name));
    } catch {}
  }
  return children;
}

function isRunning(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function serverLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'server.log'), 'utf8').slice(-2000);
  } catch {
    return '';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
