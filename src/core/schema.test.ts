import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { BusbarError, ValidationError } from './errors.ts';
import { isStandardSchema, type StandardSchemaV1, validateData } from './schema.ts';

const Order = z.object({
  id: z.string(),
  total: z.number().nonnegative(),
  lines: z.array(z.object({ sku: z.string(), qty: z.number().int() })).optional(),
});

function catchValidation(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ValidationError, 'a ValidationError');
    return error;
  }
  assert.fail('expected a ValidationError');
}

describe('validateData with a zod schema', () => {
  test('returns the parsed output for valid data', () => {
    const data = { id: 'o-1', total: 42 };
    assert.deepEqual(validateData('order.created', Order, data), data);
  });

  test('returns the schema output, with its transforms and defaults applied', () => {
    const schema = z.object({
      id: z.string().transform((id) => id.toUpperCase()),
      currency: z.string().default('EUR'),
    });
    assert.deepEqual(validateData('order.created', schema, { id: 'o-1', extra: true }), {
      id: 'O-1',
      currency: 'EUR',
    });
  });

  test('returns synchronously for a synchronous schema', () => {
    const result = validateData('order.created', Order, { id: 'o-1', total: 1 });
    assert.equal(result instanceof Promise, false);
  });

  test('throws a ValidationError with code BUSBAR_ERR_VALIDATION and status 400', () => {
    const error = catchValidation(() => validateData('order.created', Order, { id: 1, total: 1 }));
    assert.ok(error instanceof BusbarError);
    assert.equal(error.code, 'BUSBAR_ERR_VALIDATION');
    assert.equal(error.status, 400);
    assert.equal(error.name, 'ValidationError');
  });

  test('lists every problem with its path, not just the first', () => {
    const error = catchValidation(() =>
      validateData('order.created', Order, { id: 7, total: 'lots' }),
    );
    assert.deepEqual(
      error.issues.map((issue) => issue.path),
      [['id'], ['total']],
    );
    for (const issue of error.issues) assert.equal(typeof issue.message, 'string');
    assert.ok(error.issues.every((issue) => issue.message.length > 0));
  });

  test('gives nested problems their full path, array indexes included', () => {
    const error = catchValidation(() =>
      validateData('order.created', Order, {
        id: 'o-1',
        total: -1,
        lines: [
          { sku: 'a', qty: 1 },
          { sku: 2, qty: 1.5 },
        ],
      }),
    );
    assert.deepEqual(
      error.issues.map((issue) => issue.path),
      [['total'], ['lines', 1, 'sku'], ['lines', 1, 'qty']],
    );
  });

  test('names the topic and each problem path in the message', () => {
    const error = catchValidation(() =>
      validateData('order.created', Order, { id: 7, total: 'lots' }),
    );
    assert.match(error.message, /^data for "order\.created" is invalid: /);
    assert.match(error.message, /id: .*; total: /);
  });

  test('puts the topic and issues in the error details', () => {
    const error = catchValidation(() => validateData('order.created', Order, { total: 1 }));
    assert.equal(error.details?.topic, 'order.created');
    assert.deepEqual(error.details?.issues, error.issues);
  });

  test('an issue at the root has an empty path', () => {
    const error = catchValidation(() => validateData('order.created', Order, 'not an object'));
    assert.deepEqual(
      error.issues.map((issue) => issue.path),
      [[]],
    );
    assert.doesNotMatch(error.message, /invalid: : /);
  });
});

describe('validateData with an async schema', () => {
  const Username = z.string().refine(async (name) => name !== 'taken', 'username is taken');

  test('returns a promise of the parsed output', async () => {
    const result = validateData('user.created', Username, 'free');
    assert.ok(result instanceof Promise);
    assert.equal(await result, 'free');
  });

  test('returns a promise that rejects with a ValidationError listing the issue', async () => {
    const result = validateData('user.created', Username, 'taken');
    assert.ok(result instanceof Promise);
    await assert.rejects(result, (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.equal(error.code, 'BUSBAR_ERR_VALIDATION');
      assert.deepEqual(
        error.issues.map((issue) => issue.message),
        ['username is taken'],
      );
      return true;
    });
  });
});

describe('validateData with a hand-written Standard Schema', () => {
  test('flattens path segments given as { key } objects', () => {
    const schema: StandardSchemaV1 = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: () => ({
          issues: [
            { message: 'bad qty', path: [{ key: 'lines' }, { key: 0 }, 'qty'] },
            { message: 'bad root' },
          ],
        }),
      },
    };
    const error = catchValidation(() => validateData('order.created', schema, {}));
    assert.deepEqual(error.issues, [
      { message: 'bad qty', path: ['lines', 0, 'qty'] },
      { message: 'bad root', path: [] },
    ]);
    assert.match(error.message, /lines\.0\.qty: bad qty; bad root$/);
  });
});

describe('isStandardSchema', () => {
  test('is true for zod schemas', () => {
    assert.equal(isStandardSchema(Order), true);
    assert.equal(isStandardSchema(z.string()), true);
    assert.equal(isStandardSchema(z.string().refine(async () => true)), true);
  });

  test('is false for plain objects and other values', () => {
    for (const value of [
      {},
      { id: 'string' },
      { '~standard': {} },
      { '~standard': { validate: 'no' } },
      null,
      undefined,
      'z.string()',
      42,
      () => true,
    ]) {
      assert.equal(isStandardSchema(value), false, String(value));
    }
  });

  test('is true for a callable schema, as ArkType types are functions', () => {
    const callable = Object.assign((value: unknown) => value, {
      '~standard': {
        version: 1 as const,
        vendor: 'callable',
        validate: (value: unknown) => ({ value }),
      },
    });
    assert.equal(isStandardSchema(callable), true);
  });
});
