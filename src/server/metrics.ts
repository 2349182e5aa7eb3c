import type { ServerContext } from './context.ts';
import type { MeterRegistry } from './meters.ts';
import { subscriptionViews } from './routes/subscriptions.ts';

/** The content type of the Prometheus text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;
type Sample = readonly [Labels, number];

/** Builds a Prometheus text exposition: each family once, with HELP and TYPE. */
class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'summary', help: string, samples: readonly Sample[]): void {
    this.lines.push(`# HELP ${name} ${help.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.lines.push(`${name}${labelText(labels)} ${numberText(value)}`);
  }

  single(name: string, type: 'counter' | 'gauge', help: string, value: number): void {
    this.family(name, type, help, [[{}, value]]);
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

/**
 * `/metrics`: the bus's counters and gauges, the log head, per-subscription
 * queues, outcomes, lag and handling-time summary, and whatever other parts
 * of the server registered in `context.meters`, in the Prometheus text
 * format.
 *
 * @example
 * ```ts
 * reply.type(PROMETHEUS_CONTENT_TYPE).send(await prometheusText(context, meters));
 * ```
 */
export async function prometheusText(context: ServerContext, meters: MeterRegistry): Promise<string> {
  const stats = context.bus.stats();
  const [head, subscriptions] = await Promise.all([context.store.head().catch(() => Number.NaN), subscriptionViews(context.bus)]);
  const out = new Exposition();
  out.single('busbar_events_published_total', 'counter', 'Events accepted since the bus started.', stats.total_published);
  out.family(
    'busbar_topic_events_published_total',
    'counter',
    'Events accepted per topic since the bus started.',
    Object.entries(stats.events_by_type).map(([topic, count]) => [{ topic }, count]),
  );
  out.single('busbar_deliveries_total', 'counter', 'Deliveries completed or skipped by a handler.', stats.total_delivered);
  out.single('busbar_events_expired_total', 'counter', 'Events not delivered because they expired.', stats.total_expired);
  out.single('busbar_events_dropped_total', 'counter', 'Events dropped by a drop-oldest queue.', stats.total_dropped);
  out.single('busbar_dead_lettered_total', 'counter', 'Dead letters made.', stats.total_dead_lettered);
  out.single('busbar_dead_letters', 'gauge', 'Dead letters kept now.', stats.dead_letters);
  out.single('busbar_subscribers', 'gauge', 'Live subscriptions.', stats.active_subscribers);
  out.single('busbar_queue_size', 'gauge', 'Events waiting in all subscription queues.', stats.queue_size);
  out.single('busbar_delivery_latency_average_seconds', 'gauge', 'Mean time from publish to handled.', stats.average_delivery_latency_ms / 1000);
  out.single('busbar_log_head', 'gauge', 'Position of the newest event in the log (NaN when the store does not answer).', head);
  out.single('busbar_uptime_seconds', 'gauge', 'Seconds since the server started.', (Date.now() - context.startedAt) / 1000);

  const each = (read: (view: (typeof subscriptions)[number]) => number): Sample[] =>
    subscriptions.map((view) => [{ subscription: view.name }, read(view)]);
  out.family('busbar_subscription_pending', 'gauge', 'Events waiting in the subscription queue.', each((view) => view.stats.pending));
  out.family('busbar_subscription_in_flight', 'gauge', 'Handlers running now.', each((view) => view.stats.inFlight));
  const outcomes = ['completed', 'skipped', 'failed', 'retried', 'deadLettered', 'expired', 'dropped', 'cancelled'] as const;
  out.family(
    'busbar_subscription_outcomes_total',
    'counter',
    'Handler outcomes per subscription (failed counts attempts).',
    subscriptions.flatMap((view) => outcomes.map((outcome): Sample => [{ subscription: view.name, outcome: snakeCase(outcome) }, view.stats[outcome]])),
  );
  out.family(
    'busbar_subscription_lag_events',
    'gauge',
    'Events committed after a durable subscription’s checkpoint.',
    subscriptions.flatMap((view): Sample[] => (view.lag === undefined ? [] : [[{ subscription: view.name }, view.lag.events]])),
  );
  out.family(
    'busbar_subscription_handling_seconds',
    'summary',
    'Handler time per attempt, sampled.',
    subscriptions.flatMap((view): Sample[] => [
      [{ subscription: view.name, quantile: '0.5' }, view.stats.latency.p50 / 1000],
      [{ subscription: view.name, quantile: '0.99' }, view.stats.latency.p99 / 1000],
    ]),
  );
  for (const meter of meters.list()) out.single(`busbar_${meter.name}`, meter.type, meter.help, meter.read());
  return out.toString();
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([name, value]) => `${name}="${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`).join(',')}}`;
}

function numberText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}
