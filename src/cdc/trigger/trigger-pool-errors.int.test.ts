import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { type CaptureDatabase, openCaptureDatabase, TEST_DATABASE_URL } from './trigger-test.fixture.ts';

let db: CaptureDatabase;

before(async () => {
  db = await openCaptureDatabase();
  await db.admin.query(`CREATE TABLE ${db.quotedApp}.item (id int PRIMARY KEY)`);
});

after(async () => {
  await db?.cleanup();
});

// A fast shutdown or pg_terminate_backend sends FATAL to every backend at
// once; one that reaches a pooled connection while it is checked out with
// no query in flight (even in the same socket read as the ReadyForQuery
// that handed it out) used to be emitted as an 'error' event nobody
// listened to, which crashes the process: found by the CDC fault tests
// (src/cdc/faults/) restarting PostgreSQL under a write burst.
test("the source's setup and health connections killed again and again never crash the process, and it answers again after", async () => {
  const application = `busbar_pool_${randomBytes(4).toString('hex')}`;
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('application_name', application);
  const source = db.source({ connectionString: url.toString(), readerName: application });
  await source.ensureFor([{ schema: db.app, name: 'item' }], { replicaIdentityFull: new Map() });

  let answered = 0;
  let failed = 0;
  let killed = 0;
  const until = Date.now() + 2000;
  const checking = (async () => {
    while (Date.now() < until) await source.health().then(() => answered++, () => failed++);
  })();
  const killing = (async () => {
    while (Date.now() < until) {
      const { rowCount } = await db.admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
        [application],
      );
      killed += rowCount ?? 0;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 8));
    }
  })();
  await Promise.all([checking, killing]);

  assert.ok(killed > 10, `the source's connections were killed (${killed} times)`);
  assert.ok(failed > 0 && answered > 0, `health checks both failed and answered under the kills (${failed} failed, ${answered} answered)`);
  const health = await source.health();
  assert.equal(health.lagBytes, 0, 'it answers once the kills stop');
});
