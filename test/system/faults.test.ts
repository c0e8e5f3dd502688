import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { sharedMinio } from '../support/global-fixtures.ts';
import { startFaultProxy, type Fault, type FaultProxy } from '../support/fault-proxy.ts';
import { OciTestClient, sha256 } from '../support/oci-client.ts';
import { STACK_USER, startStack, type RunningStack } from '../support/stack.ts';

const MiB = 1024 * 1024;
const REPO = `${STACK_USER.handle}/faults`;

async function bucketState(prefix: string): Promise<{ pendingUploads: number; uploadObjects: number }> {
  const minio = await sharedMinio();
  const uploads = await minio.client.send(new ListMultipartUploadsCommand({ Bucket: minio.bucket }));
  const objects = await minio.client.send(new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: `${prefix}/holdfast/uploads/` }));
  return {
    pendingUploads: (uploads.Uploads ?? []).filter((upload) => upload.Key?.startsWith(`${prefix}/`)).length,
    uploadObjects: objects.KeyCount ?? 0,
  };
}

/** A seeded generator, so the fault sequence is the same every run. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('system: S3 faults between the registry and MinIO', function () {
  this.timeout(600_000);
  let stack: RunningStack;
  let proxy: FaultProxy;
  const prefix = `system-faults-${process.pid}`;
  const client = new OciTestClient(STACK_USER);

  before(async function () {
    const random = seeded(42);
    let puts = 0;
    proxy = await startFaultProxy((await sharedMinio()).endpoint, (request): Fault => {
      if (request.method !== 'PUT') return { kind: 'pass' };
      puts++;
      // One request waits past its presigned URL's 2 s lifetime: a real expired-URL refusal.
      if (puts === 7) return { kind: 'delay', ms: 4500 };
      const roll = random();
      if (roll < 0.1) return { kind: 'slowdown' };
      if (roll < 0.12) return { kind: 'reset' };
      if (roll < 0.15) return { kind: 'delay', ms: 300 + Math.floor(random() * 400) };
      return { kind: 'pass' };
    });
    stack = await startStack({ minio: await sharedMinio(), prefix, hold: { publicEndpoint: proxy.url.replace('127.0.0.1', 'localhost'), presignTtlSeconds: 2 } });
  });
  after(async function () {
    await stack?.stop();
    await proxy?.close();
  });

  it('completes 50 of 50 pushes byte-exact through 10% SlowDown, 2% resets, latency spikes and an expired URL', async function () {
    const base = stack.registries[0] as string;
    for (let push = 0; push < 50; push++) {
      const blob = randomBytes(6 * MiB + push * 1024);
      const location = await client.start(base, REPO);
      const chunk = 4 * MiB;
      for (let offset = 0; offset < blob.length; offset += chunk) {
        const response = await client.patch(base, REPO, location, blob.subarray(offset, offset + chunk), offset);
        expect(response.status, response.text).to.equal(202);
      }
      const put = await client.finish(base, REPO, location, sha256(blob));
      expect(put.status, put.text).to.equal(201);
      expect(sha256(await client.fetchBlob(base, REPO, sha256(blob)))).to.equal(sha256(blob));
    }
    const kinds = proxy.log.map((entry) => entry.fault);
    expect(kinds.filter((kind) => kind === 'slowdown').length).to.be.greaterThan(5);
    expect(kinds).to.include('reset');
    expect(await bucketState(prefix)).to.deep.equal({ pendingUploads: 0, uploadObjects: 0 });
  });
});

describe('system: client faults', function () {
  this.timeout(300_000);
  let stack: RunningStack;
  const prefix = `system-clients-${process.pid}`;
  const client = new OciTestClient(STACK_USER);

  before(async function () {
    stack = await startStack({ minio: await sharedMinio(), prefix, hold: { uploadTtlSeconds: 3, janitorIntervalSeconds: 1 } });
  });
  after(async function () {
    await stack?.stop();
  });

  it('a client that disconnects mid-PATCH resumes from the reported offset', async function () {
    const base = stack.registries[0] as string;
    const blob = randomBytes(12 * MiB);
    const location = await client.start(base, REPO);
    expect((await client.patch(base, REPO, location, blob.subarray(0, 6 * MiB), 0)).status).to.equal(202);
    // Announce 6 MiB, send 2 MiB, hang up.
    const url = new URL(base);
    const token = await client.token(base, REPO);
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(url.port), url.hostname, () => {
        socket.write(
          `PATCH ${location} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\n` +
            `Content-Length: ${6 * MiB}\r\nContent-Range: ${6 * MiB}-${12 * MiB - 1}\r\n\r\n`,
        );
        socket.write(blob.subarray(6 * MiB, 8 * MiB), () => setTimeout(() => (socket.destroy(), resolve()), 200));
      });
      socket.on('error', () => resolve());
    });
    const offset = await client.offset(base, REPO, location);
    expect(offset, 'the bytes that arrived before the hang-up are kept').to.equal(8 * MiB);
    expect((await client.patch(base, REPO, location, blob.subarray(offset), offset)).status).to.equal(202);
    const put = await client.finish(base, REPO, location, sha256(blob));
    expect(put.status, put.text).to.equal(201);
  });

  it('an upload abandoned after POST and one PATCH is gone after the TTL: no multipart upload, no staged objects', async function () {
    const base = stack.registries[0] as string;
    const location = await client.start(base, REPO);
    expect((await client.patch(base, REPO, location, randomBytes(7 * MiB), 0)).status).to.equal(202);
    expect((await bucketState(prefix)).pendingUploads).to.be.at.least(1);
    const deadline = Date.now() + 20_000;
    let state = await bucketState(prefix);
    while ((state.pendingUploads > 0 || state.uploadObjects > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      state = await bucketState(prefix);
    }
    expect(state).to.deep.equal({ pendingUploads: 0, uploadObjects: 0 });
    expect((await client.call(base, REPO, 'GET', location)).status, 'the registry reports it unknown').to.equal(404);
  });
});
