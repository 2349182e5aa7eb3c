import { BusbarError } from './errors.ts';

// Checks of subscription options, each failing with a message that names the option.

export function subjectSet(
  subject: string | readonly string[] | undefined,
): ReadonlySet<string> | undefined {
  if (subject === undefined) return undefined;
  const subjects = typeof subject === 'string' ? [subject] : subject;
  if (!Array.isArray(subjects) || subjects.some((s) => typeof s !== 'string')) {
    throw invalidOption('subject', 'a string or an array of strings');
  }
  return new Set(subjects);
}

export function oneOf<T extends string>(name: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw invalidOption(name, `one of ${allowed.join(', ')}`);
  return value;
}

export function positiveInteger(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1)
    throw invalidOption(name, 'an integer ≥ 1');
  return value as number;
}

export function nonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw invalidOption(name, 'a finite number ≥ 0');
  }
  return value;
}

export function invalidOption(name: string, expected: string): BusbarError {
  return new BusbarError(
    'BUSBAR_ERR_INVALID_ARGUMENT',
    `subscription option "${name}" must be ${expected}`,
    {
      details: { option: name },
    },
  );
}
