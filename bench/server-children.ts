/**
 * The server suite's processes talk over Node's IPC channel: the parent
 * forks a child (a server, a load generator, a crowd of clients) and calls
 * named operations on it; the child answers each call by its id. Every
 * child also answers `cpu` with its own CPU time, so the suite can say how
 * the machine's cores were shared during each measurement.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';

interface Call {
  id: number;
  op: string;
  args: unknown;
}

type Answer = { id: number; result: unknown } | { id: number; error: string };

/** CPU time of a process, user + system, in ms. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Cores busy on the whole machine so far (user, system, interrupts, steal),
 * in core-ms, from /proc/stat; NaN where there is none. The difference over
 * a run, next to the suite's own processes' CPU, shows what else ran.
 */
export function machineBusyMs(): number {
  let line: string;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  } catch {
    return Number.NaN;
  }
  // cpu  user nice system idle iowait irq softirq steal …, in clock ticks (USER_HZ, 100 on Linux).
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 10;
}

/** A forked child whose operations the parent calls. */
export class Child {
  readonly name: string;
  readonly process: ChildProcess;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private nextId = 0;
  private exited: Error | undefined;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.process = child;
    child.on('message', (message: Answer | { ready: true } | { failed: string }) => {
      if (!('id' in message)) return;
      const waiting = this.pending.get(message.id);
      if (waiting === undefined) return;
      this.pending.delete(message.id);
      if ('error' in message) waiting.reject(new Error(`${name}: ${message.error}`));
      else waiting.resolve(message.result);
    });
    child.on('exit', (code, signal) => {
      this.exited = new Error(`${name} exited (${signal ?? `code ${code}`})`);
      for (const waiting of this.pending.values()) waiting.reject(this.exited);
      this.pending.clear();
    });
  }

  /**
   * Forks `script` (a .ts file beside this one) with `args`, and waits
   * until the child calls {@link serve}, which announces it is ready.
   */
  static async start(name: string, script: string, args: string[], execArgv: string[] = []): Promise<Child> {
    const child = fork(new URL(script, import.meta.url), args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const started = new Child(name, child);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { ready?: true; failed?: string }) => {
        if (message.ready !== true && message.failed === undefined) return;
        child.off('exit', onExit);
        child.off('message', onMessage);
        if (message.failed === undefined) resolve();
        else reject(new Error(`${name} could not start: ${message.failed}`));
      };
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`${name} exited while starting (${signal ?? `code ${code}`})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    return started;
  }

  /** Calls `op` in the child and resolves with its result. */
  call<T = unknown>(op: string, args: unknown = {}): Promise<T> {
    if (this.exited !== undefined) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.process.send({ id, op, args } satisfies Call);
    });
  }

  /** CPU time the child has used so far, ms. */
  cpu(): Promise<number> {
    return this.call<number>('cpu');
  }

  /** Asks the child to finish (`close`), and kills it if it does not within 10 s. */
  async stop(): Promise<void> {
    if (this.exited !== undefined) return;
    const gone = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    const kill = setTimeout(() => this.process.kill('SIGKILL'), 10_000);
    await this.call('close').catch(() => {});
    this.process.disconnect();
    await gone;
    clearTimeout(kill);
  }
}

export type Handlers = Record<string, (args: any) => unknown>;

/** The child side, when it cannot start: tells the parent why (no stack trace on the console) and exits. */
export function failToStart(error: unknown): void {
  const reason = error instanceof Error ? error.message : String(error);
  if (process.send === undefined) throw error;
  process.send({ failed: reason }, () => process.exit(1));
}

/**
 * The child side: announces it is ready, then answers calls with `handlers` (plus `cpu`, and
 * `close`, which runs `handlers.close` if given and then lets the process
 * end once its handles are gone).
 */
export function serve(handlers: Handlers): void {
  const all: Handlers = { cpu: cpuMs, ...handlers };
  process.on('message', (message: Call) => {
    const handler = all[message.op];
    const answer = (body: { result: unknown } | { error: string }) => process.send?.({ id: message.id, ...body });
    if (handler === undefined) {
      answer({ error: `no operation "${message.op}"` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.args))
      .then(
        (result) => answer({ result: result ?? null }),
        (error: unknown) => answer({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  // The parent going away ends the child, whatever it was doing.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 2000).unref());
  process.send?.({ ready: true });
}
