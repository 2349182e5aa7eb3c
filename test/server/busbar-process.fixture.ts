/**
 * `busbar serve` as a child process, the way an operator runs it: the
 * repository's Node running src/cli/main.ts on a free port with its log in a
 * SQLite file. The end-to-end tests talk to it only over the network, so
 * nothing of the server's memory is shared with the test.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
/**
 * Node's compile cache, shared by every start: the server's sources are
 * type-stripped and compiled once instead of on each of the many restarts
 * (a cold start costs seconds on a busy 2-core machine, a warm one a fraction).
 */
const COMPILE_CACHE = join(REPO, 'node_modules', '.cache', 'busbar-e2e-compile-cache');
/** How long a start may take before the test fails: Node boot, SQLite open, WAL recovery after a kill. */
const START_PATIENCE_MS = 15_000;
/** Output kept per stream, for failure messages: the tail is what explains a crash. */
const KEPT_OUTPUT = 64 * 1024;

/** How a child ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Resident memory of the child, in bytes, from /proc (Linux). */
export interface Memory {
  /** Resident now. */
  readonly rss: number;
  /** The peak since the process started (VmHWM). */
  readonly peak: number;
}

/** A running `busbar serve`. */
export interface BusbarProcess {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `ws://127.0.0.1:<port>/v1/ws`. */
  readonly wsUrl: string;
  readonly pid: number;
  /** The SQLite file holding the log. */
  readonly data: string;
  /** The tail of what it wrote, for assertion messages. */
  readonly output: string;
  readonly exited: Promise<Exit>;
  /** Sends `signal` and resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
  /** Its resident memory now and at its peak. */
  memory(): Memory;
}

/** What `startBusbar` takes. */
export interface StartOptions {
  /** The SQLite file; reuse one to restart on the same log. */
  data: string;
  /** More `busbar serve` flags, e.g. `['--max-message-bytes', '4096']`. */
  args?: string[];
}

const running = new Set<ChildProcessWithoutNullStreams>();
// A test runner that dies (a timeout, an uncaught error) must not leave servers behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `busbar serve --port 0 --data <file>`, reads the URL it logs and
 * resolves once `GET /v1/health/ready` answers 200.
 *
 * @example
 * ```ts
 * const server = await startBusbar({ data: join(directory, 'busbar.db') });
 * await fetch(`${server.url}/v1/events`, { method: 'POST', ... });
 * await server.stop('SIGKILL');
 * ```
 */
export async function startBusbar(options: StartOptions): Promise<BusbarProcess> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0', '--data', options.data, ...(options.args ?? [])], {
    cwd: REPO,
    env: serverEnvironment(),
  });
  running.add(child);
  let output = '';
  const keep = (chunk: string): void => {
    output = (output + chunk).slice(-KEPT_OUTPUT);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  let url: string;
  try {
    url = await listeningUrl(child, exited, () => output);
    await untilReady(url, exited, () => output);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/v1/ws`,
    pid: child.pid!,
    data: options.data,
    get output() {
      return output;
    },
    exited,
    stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    memory: () => memoryOf(child.pid!),
  };
}

/**
 * A fresh temporary directory for one test file's logs, removed by `remove`.
 *
 * @example
 * ```ts
 * const scratch = scratchDirectory('durability');
 * const server = await startBusbar({ data: scratch.file('busbar.db') });
 * after(() => scratch.remove());
 * ```
 */
export function scratchDirectory(name: string): { path: string; file(name: string): string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `busbar-e2e-${name}-`));
  return { path, file: (file) => join(path, file), remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** The environment without BUSBAR_* variables, so the machine's settings do not leak into the server. */
function serverEnvironment(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BUSBAR_')));
  return { ...env, NODE_COMPILE_CACHE: COMPILE_CACHE };
}

/** The URL from the `busbar listening on …` log line (port 0 picks a free port, so only the server knows it). */
function listeningUrl(child: ChildProcessWithoutNullStreams, exited: Promise<Exit>, output: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let partial = '';
    const onData = (chunk: string): void => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (!line.includes('"msg":"busbar listening on ')) continue;
        done();
        resolve((JSON.parse(line) as { url: string }).url);
        return;
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`busbar serve did not log its URL within ${START_PATIENCE_MS} ms:\n${output()}`));
    }, START_PATIENCE_MS);
    const done = (): void => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => {
      done();
      reject(new Error(`busbar serve exited (${code ?? signal}) before listening:\n${output()}`));
    });
  });
}

async function untilReady(url: string, exited: Promise<Exit>, output: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const end = Date.now() + START_PATIENCE_MS;
  let last = '';
  while (!gone && Date.now() < end) {
    try {
      const response = await fetch(`${url}/v1/health/ready`);
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`busbar serve at ${url} was not ready (${gone ? 'it exited' : 'timed out'}; last answer: ${last}):\n${output()}`);
}

function memoryOf(pid: number): Memory {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the memory of process ${pid} from /proc (Linux only, and the process must run)`, { cause: error });
  }
  const kilobytes = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kilobytes('VmRSS'), peak: kilobytes('VmHWM') };
}

/** An event as the server serialises it: a structured CloudEvent whose `sequence` is its log position. */
export type LoggedCloudEvent = Record<string, unknown> & { id: string; type: string; sequence: number };

/**
 * The newest position in the server's log.
 *
 * @example
 * ```ts
 * const before = await logHead(server.url);
 * ```
 */
export async function logHead(url: string): Promise<number> {
  const response = await fetch(`${url}/v1/events?limit=1&after=0`);
  if (response.status !== 200) throw new Error(`GET /v1/events answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { head: number }).head;
}

/**
 * The whole log, page by page through `GET /v1/events`, as the server
 * serialises it.
 *
 * @example
 * ```ts
 * const events = await readWholeLog(server.url);
 * assert.deepEqual(events.map((event) => event.sequence), range(1, events.length + 1));
 * ```
 */
export async function readWholeLog(url: string): Promise<{ events: LoggedCloudEvent[]; head: number }> {
  const events: LoggedCloudEvent[] = [];
  let after = 0;
  for (;;) {
    const response = await fetch(`${url}/v1/events?after=${after}&limit=1000`);
    if (response.status !== 200) throw new Error(`GET /v1/events?after=${after} answered ${response.status}: ${await response.text()}`);
    const page = (await response.json()) as { events: LoggedCloudEvent[]; last: number; head: number };
    events.push(...page.events);
    if (page.last >= page.head) return { events, head: page.head };
    after = page.last;
  }
}
