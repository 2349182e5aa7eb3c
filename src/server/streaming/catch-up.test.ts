import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSse, openWs } from './streaming-clients.fixture.ts';
import { startStreamingFixture } from './test-context.fixture.ts';

const TOTAL = 2000;
const range = (count: number) => Array.from({ length: count }, (_, n) => n + 1);

for (const store of ['sqlite', 'memory'] as const) {
  describe(`switching from catch-up to live under concurrent publishing (${store} store)`, () => {
    it(`delivers 1..${TOTAL} exactly once and in order to clients that subscribe from 0 while events are published`, async () => {
      const fixture = await startStreamingFixture({ store });
      try {
        let published = 0;
        const publishing = (async () => {
          while (published < TOTAL) {
            await fixture.publishMany(20, 'catchup.tick', {}, published + 1);
            published += 20;
            // Spread the publishing out so subscribers join at different points.
            if (published % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
          }
        })();
        const waitFor = (count: number) =>
          new Promise<void>((resolve) => {
            const check = () => (published >= count ? resolve() : setImmediate(check));
            check();
          });

        await waitFor(300);
        const ws = await openWs(fixture.wsUrl);
        ws.send({ op: 'subscribe', id: 'from-zero', topics: ['catchup.*'], from: { after: 0 } });
        const sse = await openSse(`${fixture.baseUrl}/v1/stream?topics=catchup.tick&from=beginning`);
        await waitFor(1200);
        const late = await openWs(fixture.wsUrl);
        late.send({ op: 'subscribe', id: 'late', topics: ['catchup.tick'], from: 'beginning' });
        await publishing;

        const [wsEvents, lateEvents] = await Promise.all([
          ws.waitForEvents('from-zero', TOTAL, 30_000),
          late.waitForEvents('late', TOTAL, 30_000),
          sse.waitFor(TOTAL, 30_000),
        ]);
        // Anything more would be a duplicate arriving late.
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.deepEqual(wsEvents.map((frame) => frame.position), range(TOTAL));
        assert.deepEqual(wsEvents.map((frame) => frame.event.data.n), range(TOTAL));
        assert.deepEqual(lateEvents.map((frame) => frame.position), range(TOTAL));
        assert.deepEqual(sse.messages.map((message) => Number(message.id)), range(TOTAL));
        assert.equal(ws.events('from-zero').length, TOTAL);
        sse.abort();
        await ws.close();
        await late.close();
      } finally {
        await fixture.close();
      }
    });
  });
}
