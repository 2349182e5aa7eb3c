import { ValidationError, type ValidationIssue } from './errors.ts';

/**
 * The Standard Schema interface (standardschema.dev), copied as its authors
 * ask so that zod, valibot, arktype and others work without an adapter.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) => StandardSchemaV1.Result<Output> | Promise<StandardSchemaV1.Result<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

// eslint-disable-next-line @typescript-eslint/no-namespace -- the spec's own shape
export declare namespace StandardSchemaV1 {
  type Result<Output> = SuccessResult<Output> | FailureResult;
  interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
  }
}

export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  // ArkType's types are functions, so a callable with the property counts too.
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as StandardSchemaV1)['~standard']?.validate === 'function'
  );
}

/**
 * Validates `data` against `schema`; resolves to the schema's output or
 * throws a {@link ValidationError} listing every issue. Synchronous schemas
 * stay synchronous so the publish path does not pay for a promise.
 */
export function validateData(
  topic: string,
  schema: StandardSchemaV1,
  data: unknown,
): unknown | Promise<unknown> {
  const result = schema['~standard'].validate(data);
  if (result instanceof Promise) return result.then((settled) => unwrap(topic, settled));
  return unwrap(topic, result);
}

function unwrap(topic: string, result: StandardSchemaV1.Result<unknown>): unknown {
  if (result.issues === undefined) return result.value;
  throw new ValidationError(topic, result.issues.map(toIssue));
}

function toIssue(issue: StandardSchemaV1.Issue): ValidationIssue {
  const path = (issue.path ?? []).map((part) =>
    typeof part === 'object' && part !== null ? part.key : part,
  );
  return { message: issue.message, path };
}
