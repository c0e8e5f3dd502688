import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { forEachLimited } from '../../src/hold/backends/s3.ts';
import { BACKENDS, DIDS, startTestHold, type TestHold } from '../support/hold-harness.ts';

/** Upload records written straight into the bucket, as many as a test needs, with `updated_at` at `at`. */
async function fillRecords(hold: TestHold, count: number, at: Date, extra: (uuid: string) => { key: string; body: string }[] = () => []): Promise<string[]> {
  const uuids = Array.from({ length: count }, () => randomUUID());
  const stamp = at.toISOString();
  const files = uuids.flatMap((uuid) => {
    const record = { version: 2, name: `uploads/temp-${uuid}`, did: DIDS.owner, kind: 'single', upload_id: '', state: 'open', created_at: stamp, updated_at: stamp, parts: [], staged: [], size: 0 };
    return [{ key: `${hold.prefix}holdfast/uploads/${uuid}/session.json`, body: JSON.stringify(record) }, ...extra(uuid)];
  });
  await putAll(hold, files);
  return uuids;
}

/** Through the hold's own backend, whichever S3 server or filesystem it is on, 16 at a time. */
async function putAll(hold: TestHold, files: { key: string; body: string }[]): Promise<void> {
  await forEachLimited(files, 16, (file) => hold.hold.backend.putSmall(file.key, Buffer.from(file.body)));
}

/** GetObject calls the hold made, by its own storage metrics. */
async function getObjectCalls(hold: TestHold): Promise<number> {
  const { values } = await hold.hold.metrics.storageLatency.get();
  return values.filter((value) => value.metricName?.endsWith('_count') && value.labels.operation === 'GetObject').reduce((sum, value) => sum + value.value, 0);
}

for (const backend of BACKENDS) describe(`the janitor pass is bounded (${backend})`, function () {
  it('lists from a key on, in key order', async function () {
    const hold = await startTestHold(backend);
    try {
      const keys = ['a-x', 'a/b', 'a/c/d', 'a0', 'b'].map((key) => `${hold.prefix}list/${key}`);
      for (const key of [...keys].reverse()) await hold.hold.backend.putSmall(key, Buffer.from('x'));
      const listed = async (startAfter?: string) => {
        const found: string[] = [];
        for await (const object of hold.hold.backend.list(`${hold.prefix}list/`, startAfter === undefined ? {} : { startAfter: `${hold.prefix}list/${startAfter}` })) found.push(object.key);
        return found;
      };
      expect(await listed()).to.deep.equal(keys);
      expect(await listed('a/b')).to.deep.equal(keys.slice(2));
      expect(await listed('a/')).to.deep.equal(keys.slice(1));
      expect(await listed('a/c/d')).to.deep.equal(keys.slice(3));
      expect(await listed('a-x')).to.deep.equal(keys.slice(1));
      expect(await listed('b')).to.deep.equal([]);
    } finally {
      await hold.close();
    }
  });

  it('covers at most its budget of upload directories per run, resuming where the last run stopped', async function () {
    const budget = 40;
    let now = new Date();
    const hold = await startTestHold(backend, { config: { uploadTtlSeconds: 3600 }, now: () => now, janitorBudget: { directories: budget } });
    try {
      // Idle records, and as many directories whose record is gone: a segment written after the upload ended.
      const segment = (uuid: string) => ({ key: `${hold.prefix}holdfast/uploads/${uuid}/staged/00000000000000000000`, body: 'late' });
      await fillRecords(hold, budget, now);
      await putAll(hold, Array.from({ length: 2 * budget }, () => segment(randomUUID())));
      now = new Date(now.getTime() + 2 * 3600 * 1000);
      const runs = [];
      for (let run = 0; run < 3; run++) runs.push(await hold.hold.runJanitor());
      for (const result of runs) expect(result.purged + result.orphans, 'directories decided in one run').to.be.at.most(budget);
      expect(runs.reduce((sum, result) => sum + result.purged, 0)).to.equal(budget);
      expect(runs.reduce((sum, result) => sum + result.orphans, 0)).to.equal(2 * budget);
      expect(await hold.inspect.keys('holdfast/uploads/'), 'three runs cover every directory').to.deep.equal([]);
      expect(await hold.hold.runJanitor()).to.deep.equal({ abandoned: 0, purged: 0, skipped: 0, orphans: 0 });
    } finally {
      await hold.close();
    }
  });

  it('stops a pass at its time budget, after at least one directory', async function () {
    let now = new Date();
    const hold = await startTestHold(backend, { config: { uploadTtlSeconds: 3600 }, now: () => now, janitorBudget: { ms: 0 } });
    try {
      await fillRecords(hold, 3, now);
      now = new Date(now.getTime() + 2 * 3600 * 1000);
      for (let run = 0; run < 3; run++) expect((await hold.hold.runJanitor()).purged).to.equal(1);
      expect(await hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
    } finally {
      await hold.close();
    }
  });

  it('reads records without filling the cache of live ones', async function () {
    let now = new Date();
    const hold = await startTestHold(backend, { config: { uploadTtlSeconds: 3600 }, now: () => now });
    try {
      await fillRecords(hold, 200, now);
      now = new Date(now.getTime() + 2 * 3600 * 1000);
      const live = await hold.client.startMultipart(DIDS.owner);
      const remembered = hold.hold.service.records.rememberedCount;
      expect(remembered).to.equal(1);
      expect(await hold.hold.runJanitor()).to.deep.equal({ abandoned: 0, purged: 200, skipped: 0, orphans: 0 });
      expect(hold.hold.service.records.rememberedCount, 'the live upload is still the only record remembered').to.equal(remembered);
      if (backend === 's3') {
        const gets = await getObjectCalls(hold);
        await hold.client.partPresignedUrl(DIDS.owner, live.upload_name, live.upload_id, 1);
        expect(await getObjectCalls(hold), 'the live record is served from memory').to.equal(gets);
      }
      await hold.client.abortMultipart(DIDS.owner, live.upload_name, live.upload_id);
    } finally {
      await hold.close();
    }
  });

  // Counted by the hold's storage metrics, which only the S3 backend reports.
  if (backend === 's3') it('does not read a record the listing shows was written since the idle cutoff', async function () {
    const hold = await startTestHold('s3', { config: { uploadTtlSeconds: 3600 } });
    try {
      await fillRecords(hold, 100, new Date());
      const before = await getObjectCalls(hold);
      expect(await hold.hold.runJanitor()).to.deep.equal({ abandoned: 0, purged: 0, skipped: 0, orphans: 0 });
      expect((await getObjectCalls(hold)) - before).to.equal(0);
      expect(await hold.inspect.keys('holdfast/uploads/')).to.have.length(100);
    } finally {
      await hold.close();
    }
  });
});
