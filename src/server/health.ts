import type { HealthProblem } from '../core/bus-types.ts';
import type { ServerContext } from './context.ts';

/** How long the store may take to answer a readiness probe before it counts as down. */
export const STORE_PROBE_TIMEOUT_MS = 2000;

export interface ComponentCheck {
  status: 'ok' | 'degraded' | 'failed';
  /** Store: how long reading the head took, ms. */
  latencyMs?: number;
  message?: string;
  problems?: HealthProblem[];
}

/** The answer of `/v1/health` and `/v1/health/ready`. */
export interface HealthReport {
  /** `ok`, `degraded` (ready, but a subscription is stuck or near its queue limit) or `unavailable`. */
  status: 'ok' | 'degraded' | 'unavailable';
  /** Whether the server can take events: the store answers and the bus is open. */
  ready: boolean;
  uptime_seconds: number;
  checks: { store: ComponentCheck; bus: ComponentCheck };
}

/**
 * Checks each component the server needs: the store (reads its head, timed)
 * and the bus (its own health: closed, stuck or backed-up subscriptions).
 *
 * @example
 * ```ts
 * const report = await checkHealth(context);
 * reply.code(report.ready ? 200 : 503).send(report);
 * ```
 */
export async function checkHealth(context: ServerContext): Promise<HealthReport> {
  const store = await probeStore(context);
  const health = context.bus.health();
  const bus: ComponentCheck =
    health.status === 'ok'
      ? { status: 'ok' }
      : { status: health.status === 'closed' ? 'failed' : 'degraded', problems: health.problems };
  const ready = store.status === 'ok' && bus.status !== 'failed';
  return {
    status: !ready ? 'unavailable' : bus.status === 'degraded' ? 'degraded' : 'ok',
    ready,
    uptime_seconds: (Date.now() - context.startedAt) / 1000,
    checks: { store, bus },
  };
}

async function probeStore(context: ServerContext): Promise<ComponentCheck> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${STORE_PROBE_TIMEOUT_MS} ms`)), STORE_PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([context.store.head(), timeout]);
    return { status: 'ok', latencyMs: round(performance.now() - started) };
  } catch (error) {
    return { status: 'failed', latencyMs: round(performance.now() - started), message: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
