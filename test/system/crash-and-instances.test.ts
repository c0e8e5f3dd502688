import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { sharedMinio, sharedPostgres } from '../support/global-fixtures.ts';
import { OciTestClient, sha256 } from '../support/oci-client.ts';
import { STACK_USER, startStack, type RunningStack } from '../support/stack.ts';

const MiB = 1024 * 1024;
const REPO = `${STACK_USER.handle}/system`;

async function pendingUploads(prefix: string): Promise<number> {
  const minio = await sharedMinio();
  const page = await minio.client.send(new ListMultipartUploadsCommand({ Bucket: minio.bucket }));
  return (page.Uploads ?? []).filter((upload) => upload.Key?.startsWith(`${prefix}/`)).length;
}

describe('system: crash survival (MinIO + hold + registry processes)', function () {
  this.timeout(600_000);
  let stack: RunningStack;
  const client = new OciTestClient(STACK_USER);
  const prefix = `system-crash-${process.pid}`;

  before(async function () {
    stack = await startStack({ minio: await sharedMinio(), prefix });
  });
  after(async function () {
    await stack?.stop();
  });

  /** Pushes `blob` in `chunk`-byte PATCHes; `afterPatch(n)` may kill things between them. */
  async function chunkedPush(blob: Buffer, chunk: number, afterPatch: (n: number) => Promise<void>): Promise<void> {
    const base = () => stack.registries[0] as string;
    const location = await client.start(base(), REPO);
    let offset = 0;
    let patches = 0;
    while (offset < blob.length) {
      const response = await client.patch(base(), REPO, location, blob.subarray(offset, offset + chunk), offset).catch(() => undefined);
      if (response?.status !== 202) {
        // The server went away mid-request: ask where the upload stands, continue from there.
        offset = await client.offset(base(), REPO, location);
        continue;
      }
      offset += chunk;
      await afterPatch(++patches);
    }
    expect(await client.offset(base(), REPO, location)).to.equal(blob.length);
    const put = await client.finish(base(), REPO, location, sha256(blob));
    expect(put.status, put.text).to.equal(201);
    expect(sha256(await client.fetchBlob(base(), REPO, sha256(blob)))).to.equal(sha256(blob));
  }

  it('survives SIGKILL of the registry after part 3, 10 trials of 256 MiB in 8 MiB PATCHes', async function () {
    for (let trial = 0; trial < 10; trial++) {
      const blob = randomBytes(256 * MiB);
      await chunkedPush(blob, 8 * MiB, async (n) => {
        if (n === 3) await stack.restartRegistry(0);
      });
    }
    expect(await pendingUploads(prefix)).to.equal(0);
  });

  it('survives SIGKILL of the hold mid-upload', async function () {
    for (let trial = 0; trial < 3; trial++) {
      const blob = randomBytes(64 * MiB + 123);
      await chunkedPush(blob, 8 * MiB, async (n) => {
        if (n === 2) await stack.restartHold();
      });
    }
    expect(await pendingUploads(prefix)).to.equal(0);
  });
});

describe('system: two registry instances on one Postgres and one hold', function () {
  this.timeout(600_000);
  let stack: RunningStack;
  const client = new OciTestClient(STACK_USER);

  before(async function () {
    const url = await (await sharedPostgres()).createDatabase();
    stack = await startStack({ minio: await sharedMinio(), prefix: `system-multi-${process.pid}`, metadata: { kind: 'postgres', url }, registryInstances: 2 });
  });
  after(async function () {
    await stack?.stop();
  });

  it('completes 20 chunked pushes whose PATCHes alternate between instances, byte-exact', async function () {
    for (let push = 0; push < 20; push++) {
      const blob = randomBytes(20 * MiB + push);
      const chunk = 3 * MiB + 7;
      const instance = (n: number) => stack.registries[n % 2] as string;
      const location = await client.start(instance(push), REPO);
      let patches = 0;
      for (let offset = 0; offset < blob.length; offset += chunk) {
        const response = await client.patch(instance(push + ++patches), REPO, location, blob.subarray(offset, offset + chunk), offset);
        expect(response.status, response.text).to.equal(202);
      }
      const put = await client.finish(instance(push + patches + 1), REPO, location, sha256(blob));
      expect(put.status, put.text).to.equal(201);
      expect(sha256(await client.fetchBlob(instance(push), REPO, sha256(blob)))).to.equal(sha256(blob));
    }
  });
});
