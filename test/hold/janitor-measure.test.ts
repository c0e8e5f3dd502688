import { randomUUID } from 'node:crypto';
import { sharedMinio } from '../support/global-fixtures.ts';
import { DIDS, startTestHold } from '../support/hold-harness.ts';
import { putMany } from '../support/snowball.ts';

/**
 * Not a check: the time and heap of one janitor pass over many upload
 * records, printed. Runs only with HOLDFAST_JANITOR_MEASURE=<records>
 * (e.g. 10000), and with node's --expose-gc for a clean baseline. With
 * HOLDFAST_JANITOR_MEASURE_IDLE=1 the pass runs two hours past the TTL, so
 * every record is idle; otherwise every record is fresh.
 */
const records = Number(process.env.HOLDFAST_JANITOR_MEASURE ?? 0);
const idle = process.env.HOLDFAST_JANITOR_MEASURE_IDLE === '1';
/** HOLDFAST_JANITOR_MEASURE_BUDGET=<directories>: one pass's budget, instead of the default (its time budget goes with it). */
const budget = process.env.HOLDFAST_JANITOR_MEASURE_BUDGET ? Number(process.env.HOLDFAST_JANITOR_MEASURE_BUDGET) : undefined;

(records > 0 ? describe : describe.skip)(`janitor pass over ${records} upload records (measurement)`, function () {
  this.timeout(0);
  it('prints time, peak heap and GETs of one pass', async function () {
    let now = new Date();
    const hold = await startTestHold('s3', { config: { uploadTtlSeconds: 3600 }, now: () => now, ...(budget ? { janitorBudget: { directories: budget, ms: 3_600_000 } } : {}) });
    try {
      const minio = await sharedMinio();
      const fillStarted = performance.now();
      const stamp = now.toISOString();
      const files = function* () {
        for (let i = 0; i < records; i++) {
          const uuid = randomUUID();
          const record = { version: 2, name: `uploads/temp-${uuid}`, did: DIDS.owner, kind: 'single', upload_id: '', state: 'open', created_at: stamp, updated_at: stamp, parts: [], staged: [], size: 0 };
          yield { key: `${hold.prefix}holdfast/uploads/${uuid}/session.json`, body: JSON.stringify(record) };
        }
      };
      await putMany(minio, files());
      const fillSeconds = (performance.now() - fillStarted) / 1000;
      if (idle) now = new Date(now.getTime() + 3 * 3600 * 1000);
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      const baseline = process.memoryUsage().heapUsed;
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
      const gets = () => getCount(hold.hold.metrics.storageLatency.get());
      const getsBefore = await gets();
      const started = performance.now();
      const result = await hold.hold.runJanitor();
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().heapUsed);
      gc?.();
      const retained = process.memoryUsage().heapUsed - baseline;
      console.log(
        `[janitor-measure] ${records} ${idle ? 'idle' : 'fresh'} records (filled in ${fillSeconds.toFixed(1)} s): pass ${seconds.toFixed(2)} s, peak heap +${((peak - baseline) / 2 ** 20).toFixed(1)} MiB over ${(baseline / 2 ** 20).toFixed(1)} MiB (retained after GC +${(retained / 2 ** 20).toFixed(1)} MiB), GetObject ${(await gets()) - getsBefore}, result ${JSON.stringify(result)}`,
      );
    } finally {
      await hold.close();
    }
  });
});

async function getCount(metric: Promise<{ values: { metricName?: string; labels: Record<string, unknown>; value: number }[] }> | { values: { metricName?: string; labels: Record<string, unknown>; value: number }[] }): Promise<number> {
  const { values } = await metric;
  return values.filter((value) => value.metricName?.endsWith('_count') && value.labels.operation === 'GetObject').reduce((sum, value) => sum + value.value, 0);
}
