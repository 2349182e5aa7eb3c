import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseArgs } from 'node:util';
import { BusbarError } from '../core/errors.ts';
import { DEFAULT_LIMITS, resolveServerConfig, SERVER_OPTIONS, serverOptionsHelp, serverParseArgsOptions } from './config.ts';

const key = (name: string) => ({ name, key: `${name}-secret-0123456789`, publish: ['orders.>'] });

function rejects(run: () => unknown, option: string, source: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof BusbarError);
    assert.equal(error.code, 'BUSBAR_ERR_INVALID_ARGUMENT');
    assert.equal(error.details?.option, option);
    assert.match(String(error.details?.source), source);
    assert.match(error.message, new RegExp(`"${option}"`));
    return true;
  });
}

describe('resolving the server configuration', () => {
  it('uses the documented defaults when nothing is given', () => {
    const config = resolveServerConfig();
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 2872);
    assert.equal(config.data, './busbar.db');
    assert.equal(config.postgres, undefined);
    assert.deepEqual(config.apiKeys, []);
    assert.equal(config.rateLimit, undefined);
    assert.deepEqual(config.limits, DEFAULT_LIMITS);
    assert.equal(config.logger, 'info');
    assert.equal(config.strict, false);
    assert.equal(config.source, 'busbar');
    assert.equal(config.origins.port, 'default');
  });

  it('lets flags win over environment variables, which win over the config file', () => {
    const file = JSON.stringify({ port: 1000, host: '0.0.0.0', logLevel: 'warn', strict: true });
    const config = resolveServerConfig({
      flags: { port: '3000', config: 'busbar.json' },
      env: { BUSBAR_PORT: '2000', BUSBAR_HOST: '::1' },
      readFile: (path) => {
        assert.equal(path, 'busbar.json');
        return file;
      },
    });
    assert.equal(config.port, 3000);
    assert.equal(config.host, '::1');
    assert.equal(config.logger, 'warn');
    assert.equal(config.strict, true);
    assert.equal(config.origins.port, '--port');
    assert.equal(config.origins.host, 'BUSBAR_HOST');
    assert.equal(config.origins.logLevel, 'config file busbar.json (key "logLevel")');
  });

  it('finds the config file through BUSBAR_CONFIG too', () => {
    const config = resolveServerConfig({ env: { BUSBAR_CONFIG: 'from-env.json' }, readFile: () => '{"port": 4000}' });
    assert.equal(config.port, 4000);
  });

  it('reads API keys as JSON from BUSBAR_API_KEYS and as an array from the config file', () => {
    const fromEnv = resolveServerConfig({ env: { BUSBAR_API_KEYS: JSON.stringify([key('shop')]) } });
    assert.deepEqual(fromEnv.apiKeys, [key('shop')]);
    const fromFile = resolveServerConfig({ flags: { config: 'c.json' }, readFile: () => JSON.stringify({ apiKeys: [key('ops')] }) });
    assert.deepEqual(fromFile.apiKeys, [key('ops')]);
  });

  it('turns rate limit, limits and booleans from text into numbers and flags', () => {
    const config = resolveServerConfig({
      env: {
        BUSBAR_RATE_LIMIT: '100',
        BUSBAR_RATE_LIMIT_WINDOW: '1000',
        BUSBAR_MAX_BODY_BYTES: '2048',
        BUSBAR_HEARTBEAT_MS: '500',
        BUSBAR_STRICT: 'yes',
      },
    });
    assert.deepEqual(config.rateLimit, { max: 100, timeWindow: 1000 });
    assert.equal(config.limits.maxBodyBytes, 2048);
    assert.equal(config.limits.heartbeatMs, 500);
    assert.equal(config.limits.maxMessageBytes, DEFAULT_LIMITS.maxMessageBytes);
    assert.equal(config.strict, true);
  });

  it('uses PostgreSQL instead of the SQLite file when a URL is given', () => {
    const config = resolveServerConfig({ flags: { postgres: 'postgres://user@db:5432/events' } });
    assert.equal(config.postgres, 'postgres://user@db:5432/events');
    assert.equal(config.data, undefined);
  });

  it('refuses a SQLite file given together with PostgreSQL, naming both sources', () => {
    rejects(() => resolveServerConfig({ flags: { postgres: 'postgres://db/events' }, env: { BUSBAR_DATA: 'x.db' } }), 'data', /BUSBAR_DATA/);
    assert.throws(() => resolveServerConfig({ flags: { postgres: 'postgres://db/events' }, env: { BUSBAR_DATA: 'x.db' } }), /--postgres/);
  });

  it('names the option and its source for every invalid value', () => {
    rejects(() => resolveServerConfig({ env: { BUSBAR_PORT: 'http' } }), 'port', /^BUSBAR_PORT$/);
    rejects(() => resolveServerConfig({ flags: { port: '70000' } }), 'port', /^--port$/);
    rejects(() => resolveServerConfig({ flags: { 'max-body-bytes': '0' } }), 'maxBodyBytes', /--max-body-bytes/);
    rejects(() => resolveServerConfig({ env: { BUSBAR_STRICT: 'maybe' } }), 'strict', /BUSBAR_STRICT/);
    rejects(() => resolveServerConfig({ env: { BUSBAR_LOG_LEVEL: 'loud' } }), 'logLevel', /BUSBAR_LOG_LEVEL/);
    rejects(() => resolveServerConfig({ flags: { postgres: 'mysql://db' } }), 'postgres', /--postgres/);
    rejects(() => resolveServerConfig({ flags: { config: 'c.json' }, readFile: () => '{"port": -1}' }), 'port', /config file c.json/);
    rejects(() => resolveServerConfig({ flags: { config: 'c.json' }, readFile: () => '{"prot": 1}' }), 'prot', /config file c.json/);
    rejects(() => resolveServerConfig({ flags: { config: 'c.json' }, readFile: () => '{nope' }), 'config', /--config/);
    rejects(
      () =>
        resolveServerConfig({
          flags: { config: 'missing.json' },
          readFile: () => {
            throw new Error('ENOENT');
          },
        }),
      'config',
      /--config/,
    );
    rejects(() => resolveServerConfig({ flags: { colour: 'red' } }), 'colour', /--colour/);
  });

  it('rejects malformed API keys without echoing their secrets', () => {
    const secret = 'this-is-the-secret-value';
    rejects(() => resolveServerConfig({ env: { BUSBAR_API_KEYS: `[{"name":"a","key":"${secret}"` } }), 'apiKeys', /BUSBAR_API_KEYS/);
    assert.throws(
      () => resolveServerConfig({ env: { BUSBAR_API_KEYS: `[{"name":"a","key":"${secret}"` } }),
      (error: Error) => !error.message.includes(secret),
    );
    rejects(() => resolveServerConfig({ env: { BUSBAR_API_KEYS: '[{"name":"a","key":"short"}]' } }), 'apiKeys', /BUSBAR_API_KEYS/);
    rejects(
      () => resolveServerConfig({ env: { BUSBAR_API_KEYS: JSON.stringify([{ ...key('a'), publish: ['orders..x'] }]) } }),
      'apiKeys',
      /BUSBAR_API_KEYS/,
    );
    rejects(() => resolveServerConfig({ env: { BUSBAR_API_KEYS: JSON.stringify([key('a'), key('a')]) } }), 'apiKeys', /BUSBAR_API_KEYS/);
    rejects(() => resolveServerConfig({ env: { BUSBAR_API_KEYS: JSON.stringify([{ ...key('a'), admin: 'yes' }]) } }), 'apiKeys', /BUSBAR_API_KEYS/);
  });
});

describe('documenting the server options', () => {
  it('documents every option once, with a flag, an environment variable and a description', () => {
    const flags = SERVER_OPTIONS.map((option) => option.flag);
    assert.equal(new Set(flags).size, flags.length);
    for (const option of SERVER_OPTIONS) {
      assert.match(option.env, /^BUSBAR_[A-Z_]+$/);
      assert.ok(option.description.length > 10, option.name);
    }
    const help = serverOptionsHelp();
    for (const option of SERVER_OPTIONS) {
      assert.ok(help.includes(`--${option.flag}`), option.flag);
      assert.ok(help.includes(option.env), option.env);
    }
  });

  it('lists every option with its flag, variable and default in docs/server.md', () => {
    const page = readFileSync(new URL('../../docs/server.md', import.meta.url), 'utf8');
    for (const option of SERVER_OPTIONS) {
      const row = `| \`${option.name}\` | \`--${option.flag}\` | \`${option.env}\` | ${option.default === undefined ? '—' : `\`${option.default}\``} |`;
      assert.ok(page.includes(row), `docs/server.md lacks the row ${row}`);
    }
  });

  it('gives parseArgs exactly the documented flags, so the CLI parses what the help lists', () => {
    const { values } = parseArgs({
      args: ['--port', '9000', '--strict', '--api-keys', '[]'],
      options: serverParseArgsOptions(),
    });
    const config = resolveServerConfig({ flags: values });
    assert.equal(config.port, 9000);
    assert.equal(config.strict, true);
  });
});
