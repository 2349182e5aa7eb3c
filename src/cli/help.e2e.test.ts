import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runCli } from './cli-process.fixture.ts';
import { COMMANDS } from './commands.ts';

// Each test spawns its own short-lived process: a few at once keep the file quick.
describe('busbar help, version and usage errors', { concurrency: 3 }, () => {
  it('lists every command with busbar --help, and exits 0', async () => {
    const { code, stdout } = await runCli(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: busbar <command> \[options\]/);
    for (const command of COMMANDS) assert.match(stdout, new RegExp(`^  ${command.name} +\\S`, 'm'), `lists ${command.name}`);
  });

  it('prints the package version with --version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const { code, stdout } = await runCli(['--version']);
    assert.deepEqual([code, stdout], [0, `${version}\n`]);
  });

  for (const command of COMMANDS) {
    it(`prints the usage of "${command.name}" with --help and exits 0`, async () => {
      const { code, stdout, stderr } = await runCli([command.name, '--help']);
      assert.equal(code, 0, stderr);
      assert.match(stdout, new RegExp(`^Usage: busbar ${command.name}\\b`));
      assert.match(stdout, /--help/);
      if (command.name !== 'serve') assert.match(stdout, /--server <url>[\s\S]*--api-key <key>/);
    });
  }

  it('documents every server option in serve --help', async () => {
    const { stdout } = await runCli(['serve', '--help']);
    for (const flag of ['--host', '--port', '--data', '--postgres', '--api-keys', '--config', 'BUSBAR_PORT']) assert.ok(stdout.includes(flag), `mentions ${flag}`);
  });

  it('exits 2 with "busbar: <code>: <message>" for an unknown flag', async () => {
    const { code, stdout, stderr } = await runCli(['publish', 'order.created', '{}', '--colour']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /^busbar: BUSBAR_ERR_INVALID_ARGUMENT: Unknown option '--colour'\nrun "busbar publish --help" for usage\n$/);
  });

  it('exits 2 for a missing argument, an unknown command, and no command at all', async () => {
    const missing = await runCli(['publish', 'order.created']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^busbar: BUSBAR_ERR_INVALID_ARGUMENT: expected <type> <json\|->, got "order\.created"/);
    const unknown = await runCli(['serv']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "serv"; the commands are serve, publish, tail, replay, bench/);
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^Usage: busbar <command>/);
  });

  it('exits 2 when a server option is invalid, naming the option and where it came from', async () => {
    const { code, stderr } = await runCli(['serve', '--port', 'http']);
    assert.equal(code, 2);
    assert.match(stderr, /^busbar: BUSBAR_ERR_INVALID_ARGUMENT: option "port" \(--port\) must be an integer from 0 to 65535, got "http"/);
  });

  it('exits 2 for data that is not JSON, and for a bad --from', async () => {
    const data = await runCli(['publish', 'order.created', '{id:1}']);
    assert.equal(data.code, 2);
    assert.match(data.stderr, /is not JSON/);
    const from = await runCli(['tail', 'order.*', '--from', 'yesterday']);
    assert.equal(from.code, 2);
    assert.match(from.stderr, /--from must be a whole number/);
  });
});
