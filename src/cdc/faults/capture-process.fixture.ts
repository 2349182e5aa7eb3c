/**
 * Runs `capture-child.fixture.ts` as a real process and follows what it
 * says: when it (re)connected, which markers it stored, its warnings. A
 * kill and a restart keep one history, so a test measures recovery across
 * generations of the process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CaptureChildConfig } from './capture-child.fixture.ts';

const CHILD = join(import.meta.dirname, 'capture-child.fixture.ts');

/**
 * @example
 * ```ts
 * const capture = new CaptureProcess({ mode: 'trigger', connectionString, storePath, name: 'orders', tables, marker, ...timings });
 * capture.start();
 * await capture.connectedAfter(0);
 * await capture.kill(); // SIGKILL
 * capture.start();      // again, on the same store
 * ```
 */
export class CaptureProcess {
  /** When each `connected` arrived (Date.now()), across restarts. */
  readonly connects: number[] = [];
  readonly markers = new Set<number>();
  readonly warnings: string[] = [];
  readonly gaveUp: string[] = [];
  /** Processes started, the first included. */
  generations = 0;
  private readonly config: CaptureChildConfig;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stderr = '';

  constructor(config: CaptureChildConfig) {
    this.config = config;
  }

  start(): void {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(this.config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.generations++;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    createInterface({ input: child.stdout! }).on('line', (line) => this.hear(line));
    child.stderr!.on('data', (chunk: Buffer) => {
      // Kept short: a long tail is what a failing test needs, not the whole run.
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
  }

  /** SIGKILL: no goodbye to PostgreSQL, no store close. Resolves once the process is gone. */
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM and wait for a clean close (SIGKILL after 15 s). */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** The first connect at or after `since`, waiting up to `timeout` ms. */
  async connectedAfter(since: number, timeout = 30_000): Promise<number> {
    return this.until(`capture to connect again (${this.summary()})`, timeout, () => this.connects.find((at) => at >= since));
  }

  async markerStored(id: number, timeout = 60_000): Promise<number> {
    return this.until(`marker ${id} in the store (${this.summary()})`, timeout, () => (this.markers.has(id) ? Date.now() : undefined));
  }

  /** Connects, processes, the last warnings and stderr: what a failing test should say. */
  summary(): string {
    const warnings = this.warnings.slice(-5).join(' | ');
    return `${this.connects.length} connects, ${this.generations} processes; last warnings: ${warnings}; stderr: ${this.stderr.slice(-1500)}`;
  }

  private hear(line: string): void {
    const space = line.indexOf(' ');
    const word = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    if (word === 'connected') this.connects.push(Date.now());
    else if (word === 'marker') this.markers.add(Number(rest));
    else if (word === 'warning') this.warnings.push(JSON.parse(rest) as string);
    else if (word === 'gave-up') this.gaveUp.push(JSON.parse(rest) as string);
  }

  private async until<T>(what: string, timeout: number, check: () => T | undefined): Promise<T> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (this.gaveUp.length > 0) throw new Error(`capture gave up while waiting for ${what}: ${this.gaveUp.join('; ')}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
