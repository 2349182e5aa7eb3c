import type { NotifyOptions, PublishOptions } from './bus-types.ts';
import type { Delivery } from './delivery.ts';
import { toError } from './errors.ts';

interface Publisher {
  publish(topic: string, data: unknown, options?: PublishOptions): Promise<Delivery>;
}

/**
 * Runs `work` and publishes what it returns to `topic`, or the error it
 * throws to `errorTopic`, stamping when the work started (`initializedat`)
 * and when it ended (`time`) — Elixir event_bus's `EventSource.notify`.
 */
export async function runAndNotify(
  bus: Publisher,
  topic: string,
  work: () => unknown,
  options: NotifyOptions = {},
): Promise<Delivery> {
  const { errorTopic = `${topic}.failed`, ...eventOptions } = options;
  const initializedat = new Date().toISOString();
  const extensions = { ...eventOptions.extensions, initializedat };
  let result: unknown;
  try {
    result = await work();
  } catch (thrown) {
    const error = toError(thrown);
    const code = (error as { code?: unknown }).code;
    return bus.publish(
      errorTopic,
      { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) },
      { ...eventOptions, extensions, time: new Date() },
    );
  }
  return bus.publish(topic, result, { ...eventOptions, extensions, time: new Date() });
}
