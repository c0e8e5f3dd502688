import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { sharedMinio, sharedPostgres } from '../support/global-fixtures.ts';
import { DockerLikeClient, FailureLog, SyntheticBlob } from '../support/scale-client.ts';
import { startScaleStack, type ScaleStack } from '../support/scale-stack.ts';
import { STACK_USER } from '../support/stack.ts';

const MiB = 1024 * 1024;
const REPO = `${STACK_USER.handle}/crash-points`;

/**
 * One operation at a time on the scale-out topology (two holds, two
 * registries, round-robin proxies): a hold frozen just after S3 acted on a
 * request and killed before it could record the outcome, whose work the
 * other hold must finish when the driver repeats the call; and state one
 * instance changed that another must not answer from memory.
 */
describe('system: scale-out, one operation at a time (a hold killed between an S3 effect and its record; state across instances)', function () {
  this.timeout(300_000);
  let stack: ScaleStack;
  let client: DockerLikeClient;
  const failures = new FailureLog();

  before(async function () {
    stack = await startScaleStack({
      minio: await sharedMinio(),
      postgresUrl: await (await sharedPostgres()).createDatabase(),
      prefix: `system-crash-points-${process.pid}`,
      // GC only when a test runs a pass, with no grace.
      gc: { graceSeconds: 0, intervalSeconds: 0 },
      hold: { uploadTtlSeconds: 3600, janitorIntervalSeconds: 0, deletionLeaseSeconds: 30 },
      // Pull URLs are not cached in the registries here, so what a pull gets is what the holds answer.
      driver: { maxCachedUrls: 0 },
    });
    client = new DockerLikeClient(stack.url, STACK_USER, failures);
  });
  after(async function () {
    await client?.close();
    await stack?.stop();
  });

  it('a hold killed after S3 completed the multipart upload, before the session says so: the PUT still answers 201', async function () {
    const blob = SyntheticBlob.create('crash-after-complete', 20 * MiB + 5);
    const started = await client.call(REPO, 'POST', `/v2/${REPO}/blobs/uploads/`);
    expect(started.status).to.equal(202);
    const location = String(started.headers.location);
    for (let offset = 0; offset < blob.size; offset += 8 * MiB) {
      const chunk = blob.read(offset, Math.min(8 * MiB, blob.size - offset));
      const patched = await client.call(REPO, 'PATCH', location, {
        body: chunk,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}`, 'content-length': String(chunk.length) },
      });
      expect(patched.status, patched.body.toString()).to.equal(202);
    }
    // CompleteMultipartUpload: a POST on the upload's object with its uploadId.
    const completion = (method: string, path: string, query: URLSearchParams) => method === 'POST' && path.includes('/holdfast/objects/') && query.has('uploadId');
    const caught = Promise.race(stack.gates.map((gate, index) => gate.hold(completion).then(() => index)));
    const put = client.call(REPO, 'PUT', `${location}?digest=${blob.digest}`, { headers: { 'content-length': '0' } });
    const victim = await caught;
    stack.gates.forEach((gate, index) => index !== victim && gate.releaseAll());
    await stack.restart('hold', victim);
    stack.gates[victim]?.releaseAll();
    const answer = await put;
    expect(answer.status, answer.body.toString()).to.equal(201);
    const bytes = await client.getBlob(REPO, blob.digest);
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).to.equal(blob.digest);
  });

  it('a blob collected through one instance and pushed again through another: every pull through either hold gets its bytes', async function () {
    const blob = SyntheticBlob.create('collected-and-pushed-again', 6 * MiB + 3);
    const push = async () => {
      expect(await client.pushBlob(REPO, blob, 8 * MiB), 'retries').to.equal(0);
    };
    const pullEach = async (times: number) => {
      for (let pull = 0; pull < times; pull++) {
        const bytes = await client.getBlob(REPO, blob.digest);
        expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, `pull ${pull}`).to.equal(blob.digest);
      }
    };
    await push();
    // Pulls alternate between the holds: both have now presigned these bytes.
    await pullEach(4);
    // No manifest references it: a pass (no grace) releases it, through one hold or the other.
    expect((await stack.runGc(0)).deletedBlobs).to.be.at.least(1);
    await push();
    await pullEach(4);
  });
});
