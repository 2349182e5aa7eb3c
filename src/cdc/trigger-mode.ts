import type { CaptureSource } from './capture-source.ts';
import { createTriggerSource } from './trigger/index.ts';

/** What the facade passes to trigger mode: its own options plus the shared ones. */
export interface TriggerModeOptions {
  connectionString: string;
  onWarning?: (message: string) => void;
  schema?: string;
  readerName?: string;
  batchSize?: number;
  pollInterval?: number;
}

/**
 * Trigger mode's source for `createPostgresCdc({ mode: 'trigger' })`.
 *
 * @example
 * ```ts
 * const source = createTriggerModeSource({ connectionString, schema: 'busbar_cdc' });
 * ```
 */
export function createTriggerModeSource(options: TriggerModeOptions): CaptureSource {
  return createTriggerSource({
    connectionString: options.connectionString,
    ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
    ...(options.schema === undefined ? {} : { schema: options.schema }),
    ...(options.readerName === undefined ? {} : { readerName: options.readerName }),
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.pollInterval === undefined ? {} : { pollInterval: options.pollInterval }),
  });
}
