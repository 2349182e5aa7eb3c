import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

// A resolve hook that hides `pg`, as on a machine where it was never installed.
const hidePg = `data:text/javascript,${encodeURIComponent(`
  export async function resolve(specifier, context, next) {
    if (specifier === 'pg') {
      const error = new Error("Cannot find package 'pg'");
      error.code = 'ERR_MODULE_NOT_FOUND';
      throw error;
    }
    return next(specifier, context);
  }
`)}`;

const script = `
  import { register } from 'node:module';
  register(${JSON.stringify(hidePg)});
  try {
    await import(${JSON.stringify(new URL('./index.ts', import.meta.url).href)});
    console.log(JSON.stringify({ imported: true }));
  } catch (error) {
    console.log(JSON.stringify({ code: error.code, message: error.message }));
  }
`;

test('without pg installed, importing busbar/store/postgres fails with BUSBAR_ERR_MISSING_DRIVER naming npm i pg', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '--eval', script]);
  const outcome = JSON.parse(stdout) as { code?: string; message?: string };
  assert.equal(outcome.code, 'BUSBAR_ERR_MISSING_DRIVER');
  assert.match(outcome.message!, /npm i pg/);
});
