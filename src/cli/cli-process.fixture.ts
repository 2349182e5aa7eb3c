/**
 * Runs the `busbar` command line as the user would: a child process of the
 * repository's Node running src/cli/main.ts, its output collected.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** The environment without the variables the CLI reads, so the machine's settings do not leak in. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('BUSBAR_') && name !== 'NO_COLOR') env[name] = value;
  return { ...env, ...extra };
}

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A running `busbar` process. */
export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything written so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once stdout holds a line matching `pattern`, with that line; fails after `ms`. */
  line(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Finished>;
}

/**
 * Starts `busbar <args>`; `input` is written to its stdin, which is then closed.
 *
 * @example
 * ```ts
 * const tail = startCli(['tail', 'order.*', '--server', url]);
 * await tail.line(/order\.created/);
 * ```
 */
export function startCli(args: string[], options: { input?: string; env?: Record<string, string> } = {}): CliProcess {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: REPO, env: cleanEnv(options.env ?? {}) });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const listener of listeners) listener();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.input);
  const exited = new Promise<Finished>((resolve) =>
    child.once('close', (code, signal) => {
      resolve({ code, signal, stdout, stderr });
      for (const listener of listeners) listener();
    }),
  );
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    line(pattern, ms = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = stdout.split('\n').find((line) => pattern.test(line));
          if (found !== undefined) {
            done();
            resolve(found);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`busbar exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}\nstdout: ${stdout}\nstderr: ${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no line matching ${pattern} within ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
        }, ms);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Runs `busbar <args>` to completion. */
export function runCli(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Finished> {
  return startCli(args, options).exited;
}
