// Keeps the documentation honest: every example runs and checks itself, every
// example embedded in docs/ is the file it names, byte for byte, and the error
// page lists every error code.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startPrivatePostgres } from '../src/cdc/private-postgres.fixture.ts';
import { errorCodes } from '../src/index.ts';

const execFileAsync = promisify(execFile);
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const examples = readdirSync(join(repoRoot, 'examples'))
  .filter((name) => name.endsWith('.ts'))
  .sort();
const pages = readdirSync(join(repoRoot, 'docs'))
  .filter((name) => name.endsWith('.md'))
  .sort();

function read(path: string): string {
  return readFileSync(join(repoRoot, path), 'utf8');
}

const MARKER = /<!-- example: (\S+) -->/g;
// The marker, its line end, then a fenced ts block; the content is captured lazily
// up to the first fence that starts a line.
const EMBEDDED = /<!-- example: (\S+) -->\r?\n```ts\r?\n([\s\S]*?)^```/gm;

/**
 * Environment some examples need. The change-capture example needs a
 * PostgreSQL with wal_level=logical, which the shared server lacks: a private
 * instance is started for it (and stopped after).
 */
const environments: Record<string, () => Promise<Record<string, string>>> = {
  'cdc.ts': async () => {
    const postgres = await startPrivatePostgres();
    after(() => postgres.stop());
    return { BUSBAR_CDC_POSTGRES_URL: postgres.connectionString };
  },
};

describe('the examples', () => {
  test('there is at least one example', () => {
    assert.ok(examples.length > 0);
  });

  for (const name of examples) {
    test(`examples/${name} runs to completion and exits with code 0`, async () => {
      const extra = (await environments[name]?.()) ?? {};
      try {
        await execFileAsync(process.execPath, [join('examples', name)], {
          cwd: repoRoot,
          encoding: 'utf8',
          timeout: 30_000,
          env: { ...process.env, ...extra },
        });
      } catch (error) {
        const failure = error as Error & { code?: unknown; stdout?: string; stderr?: string };
        assert.fail(
          `examples/${name} failed (exit code ${String(failure.code)}): ${failure.message}\n` +
            `--- stdout ---\n${failure.stdout ?? ''}\n--- stderr ---\n${failure.stderr ?? ''}`,
        );
      }
    });
  }
});

describe('the documentation pages', () => {
  test('every concept has its page and the index links to each of them', () => {
    const index = read('docs/README.md');
    for (const page of pages.filter((name) => name !== 'README.md')) {
      assert.ok(index.includes(`](${page})`), `docs/README.md does not link to ${page}`);
    }
  });

  for (const page of pages) {
    test(`every example marker in docs/${page} is followed by that file's exact content`, () => {
      const text = read(join('docs', page));
      const markers = [...text.matchAll(MARKER)].map((match) => match[1]!);
      const embedded = [...text.matchAll(EMBEDDED)];
      assert.deepEqual(
        embedded.map((match) => match[1]),
        markers,
        `in docs/${page}, each <!-- example: … --> line must be followed directly by a \`\`\`ts block`,
      );
      for (const [, path, content] of embedded) {
        assert.equal(content, read(path!), `docs/${page} embeds an outdated copy of ${path}`);
      }
    });
  }

  test('every example is embedded in a page of docs/ or linked from the README', () => {
    const embedded = new Set(
      pages.flatMap((page) =>
        [...read(join('docs', page)).matchAll(MARKER)].map((match) => match[1]),
      ),
    );
    const readme = read('README.md');
    for (const name of examples) {
      const path = `examples/${name}`;
      assert.ok(
        embedded.has(path) || readme.includes(`](${path})`),
        `${path} is neither embedded in docs/ nor linked from README.md`,
      );
    }
  });

  test('docs/errors.md mentions every code in errorCodes', () => {
    const text = read('docs/errors.md');
    const missing = Object.keys(errorCodes).filter((code) => !text.includes(code));
    assert.deepEqual(missing, []);
  });
});
