import ajv from 'ajv';
import ajv2019 from 'ajv/dist/2019.js';
import ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { BusbarError } from '../core/errors.ts';
import type { StandardSchemaV1 } from '../core/schema.ts';

/** A JSON Schema document: an object, or `true`/`false`. */
export type JsonSchema = Record<string, unknown> | boolean;

const options = {
  allErrors: true,
  // Unknown keywords are a mistake worth a 400 at registration; loose type
  // combinations, tuples and `required` without `properties` are legal JSON
  // Schema that Ajv's strict mode would refuse.
  strict: true,
  strictTypes: false,
  strictTuples: false,
  strictRequired: false,
  logger: false,
} as const;

/**
 * Compiles a JSON Schema (draft-07 by default; 2019-09 and 2020-12 when its
 * `$schema` says so) into a Standard Schema, so `bus.registerTopic` enforces
 * it on every publish path like a zod schema. An invalid schema throws
 * `BUSBAR_ERR_INVALID_ARGUMENT` with Ajv's reason.
 *
 * Each schema gets its own Ajv instance: schemas with the same `$id` can be
 * registered for two topics, and replacing one frees the old compiled code.
 * `format` is checked (email, uri, date-time, uuid… from ajv-formats).
 *
 * @example
 * ```ts
 * bus.registerTopic('order.created', {
 *   schema: jsonSchemaValidator('order.created', { type: 'object', required: ['id'] }),
 * });
 * ```
 */
export function jsonSchemaValidator(topic: string, schema: unknown): StandardSchemaV1 {
  if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) {
    throw invalidSchema(topic, 'a JSON Schema must be an object or a boolean');
  }
  let validate: ReturnType<InstanceType<typeof ajv.default>['compile']>;
  try {
    validate = compilerFor(schema as JsonSchema).compile(schema as JsonSchema);
  } catch (error) {
    throw invalidSchema(topic, (error as Error).message, error);
  }
  return {
    '~standard': {
      version: 1,
      vendor: 'busbar-json-schema',
      validate(value) {
        if (validate(value)) return { value };
        return {
          issues: (validate.errors ?? []).map((error) => ({
            message: error.message ?? `fails "${error.keyword}"`,
            path: pathOf(error.instancePath),
          })),
        };
      },
    },
  };
}

function compilerFor(schema: JsonSchema): InstanceType<typeof ajv.default> {
  const dialect = typeof schema === 'object' && typeof schema.$schema === 'string' ? schema.$schema : '';
  const compiler = dialect.includes('2020-12')
    ? new ajv2020.default(options)
    : dialect.includes('2019-09')
      ? new ajv2019.default(options)
      : new ajv.default(options);
  addFormats.default(compiler);
  return compiler;
}

/** `/items/0/name` → `['items', '0', 'name']`, undoing JSON Pointer escapes. */
function pathOf(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function invalidSchema(topic: string, reason: string, cause?: unknown): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `the schema of topic "${topic}" is not a valid JSON Schema: ${reason}`, {
    cause,
    details: { topic },
  });
}
