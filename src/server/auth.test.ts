import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusbarError } from '../core/errors.ts';
import { Authenticator } from './auth.ts';
import { patternCovers } from './pattern-scope.ts';

describe('whether a granted pattern covers a requested one', () => {
  const cases: [granted: string, requested: string, covered: boolean][] = [
    ['orders.>', 'orders.*', true],
    ['orders.>', 'orders.eu.created', true],
    ['orders.>', 'orders.>', true],
    ['orders.>', 'orders', false],
    ['orders.>', '>', false],
    ['orders.>', '*.created', false],
    ['orders.*', 'orders.created', true],
    ['orders.*', 'orders.*', true],
    ['orders.*', 'orders.>', false],
    ['orders.*', 'orders.eu.created', false],
    ['*.created', 'orders.created', true],
    ['*.created', '*.created', true],
    ['*.created', 'orders.*', false],
    ['>', '>', true],
    ['>', 'anything.at.all', true],
    ['orders.created', 'orders.created', true],
    ['orders.created', 'orders.*', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
  ];
  for (const [granted, requested, covered] of cases) {
    it(`${covered ? 'lets' : 'does not let'} "${granted}" cover "${requested}"`, () => {
      assert.equal(patternCovers(granted, requested), covered);
    });
  }
});

describe('authenticating API keys', () => {
  const shop = { name: 'shop', key: 'shop-secret-0123456789', publish: ['orders.>'], subscribe: ['orders.*'] };
  const ops = { name: 'ops', key: 'ops-secret-0123456789ab', admin: true };
  const auth = new Authenticator([shop, ops]);

  function refused(run: () => unknown, code: string): void {
    assert.throws(run, (error: unknown) => error instanceof BusbarError && error.code === code);
  }

  it('lets everyone do everything when no keys are configured', () => {
    const open = new Authenticator([]);
    assert.equal(open.enabled, false);
    const principal = open.authenticate(undefined, undefined);
    assert.equal(principal.name, 'anonymous');
    assert.ok(principal.can('admin'));
    assert.ok(principal.can('publish', 'any.topic'));
  });

  it('finds the key from a Bearer header or, failing that, a query token', () => {
    assert.equal(auth.authenticate(`Bearer ${shop.key}`, undefined).name, 'shop');
    assert.equal(auth.authenticate(`bearer  ${ops.key}`, undefined).name, 'ops');
    assert.equal(auth.authenticate(undefined, shop.key).name, 'shop');
  });

  it('answers 401 without a key, with an unknown key or with another scheme', () => {
    refused(() => auth.authenticate(undefined, undefined), 'BUSBAR_ERR_UNAUTHORIZED');
    refused(() => auth.authenticate('Bearer not-a-key-we-know-of', undefined), 'BUSBAR_ERR_UNAUTHORIZED');
    refused(() => auth.authenticate(`Basic ${shop.key}`, undefined), 'BUSBAR_ERR_UNAUTHORIZED');
    refused(() => auth.authenticate(undefined, ''), 'BUSBAR_ERR_UNAUTHORIZED');
    // A near miss (one character off) is as unknown as any other key.
    refused(() => auth.authenticate(`Bearer ${shop.key.slice(0, -1)}X`, undefined), 'BUSBAR_ERR_UNAUTHORIZED');
  });

  it('grants publish by topic, subscribe by pattern inside a grant, and admin only to admins', () => {
    const principal = auth.authenticate(`Bearer ${shop.key}`, undefined);
    assert.ok(principal.can('publish', 'orders.created'));
    assert.ok(principal.can('publish', 'orders.eu.created'));
    assert.ok(!principal.can('publish', 'payments.made'));
    assert.ok(principal.can('subscribe', 'orders.created'));
    assert.ok(principal.can('subscribe', 'orders.*'));
    assert.ok(!principal.can('subscribe', 'orders.>'));
    assert.ok(!principal.can('subscribe', '>'));
    assert.ok(!principal.can('admin'));
    const admin = auth.authenticate(`Bearer ${ops.key}`, undefined);
    assert.ok(admin.can('admin'));
    assert.ok(admin.can('publish', 'payments.made'));
    assert.ok(admin.can('subscribe', '>'));
  });

  it('refuses invalid key lists when the server is built', () => {
    assert.throws(() => new Authenticator([{ name: 'x', key: 'short' }]), /at least 16 characters/);
    assert.throws(() => new Authenticator([shop, { ...ops, key: shop.key }]), /reuses the secret/);
  });
});
