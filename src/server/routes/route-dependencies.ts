import type { ServerContext } from '../context.ts';
import type { MeterRegistry } from '../meters.ts';
import type { Publisher } from '../publisher.ts';
import type { TopicRegistry } from '../topic-registry.ts';

/** What the HTTP routes work with, built once by `createServer`. */
export interface RouteDependencies {
  readonly context: ServerContext;
  readonly publisher: Publisher;
  readonly topics: TopicRegistry;
  readonly meters: MeterRegistry;
}
