import { BusbarError } from '../../core/errors.ts';
import type { ServerContext } from '../context.ts';
import type { ConnectionRegistry } from './connection-registry.ts';
import type { LiveHub } from './live-hub.ts';

/** What both streaming endpoints share within one server. */
export interface StreamingRuntime {
  readonly context: ServerContext;
  readonly hub: LiveHub;
  readonly registry: ConnectionRegistry;
}

/** A query parameter given at most once; a repeated one is an error rather than a guess. */
export function singleParameter(name: string, value: unknown): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `query parameter "${name}" must be given once`);
}
