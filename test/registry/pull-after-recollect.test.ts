import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { request } from 'undici';
import createHoldDriver from '../../src/driver/index.ts';
import { freePort } from '../../src/core/net.ts';
import { parseRegistryConfig } from '../../src/registry/config.ts';
import { GarbageCollector } from '../../src/registry/gc/collector.ts';
import { Registry } from '../../src/registry/registry.ts';
import { getFromUrl, sha256 } from '../support/bytes.ts';
import { AUDIENCE, DIDS, ISSUER } from '../support/hold-harness.ts';
import { startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';

const REPO = 'alice/recollected';

/**
 * Two instances of one registry (one Postgres, one issuer) on one hold that
 * publishes by reference: a blob collected through one and pushed again gets
 * new bytes under a new object, and the other must stop handing out the URL
 * it cached for the old one.
 */
describe('pull URLs after another instance collects a blob and it is pushed again', function () {
  this.timeout(120_000);
  let a: TestRegistry;
  let b: Registry;
  let bUrl: string;
  let token: string;

  before(async function () {
    a = await startTestRegistry({ backend: 's3', metadata: 'postgres', delivery: 'redirect' });
    const port = await freePort();
    bUrl = `http://127.0.0.1:${port}`;
    const config = parseRegistryConfig({ ...a.registry.config, listen: { host: '127.0.0.1', port }, publicUrl: bUrl });
    const storage = createHoldDriver({
      hold: { url: a.hold.url, audience: AUDIENCE },
      issuer: ISSUER,
      privateKey: a.hold.keys.privateKey,
      partSize: 5 * 1024 * 1024,
      retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 100 },
    });
    b = await Registry.create(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), storage });
    await b.listen();
    token = await a.token('alice', `repository:${REPO}:pull,push`);
  });
  after(async function () {
    await b?.close();
    await a?.close();
  });

  async function pushBlob(base: string, bytes: Buffer): Promise<void> {
    const response = await request(`${base}/v2/${REPO}/blobs/uploads/?digest=${sha256(bytes)}`, {
      method: 'POST',
      body: bytes,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    });
    expect(response.statusCode, await response.body.text()).to.equal(201);
  }

  async function pullUrl(base: string, digest: string): Promise<string> {
    const response = await request(`${base}/v2/${REPO}/blobs/${digest}`, { headers: { authorization: `Bearer ${token}` } });
    await response.body.dump();
    expect(response.statusCode).to.equal(307);
    return response.headers.location as string;
  }

  it('redirects to the new bytes, not to the URL cached for the collected ones', async function () {
    const bytes = randomBytes(64 * 1024);
    const digest = sha256(bytes);
    await pushBlob(a.url, bytes);
    const first = await pullUrl(a.url, digest);
    expect((await getFromUrl(first)).body.equals(bytes)).to.equal(true);

    const collector = new GarbageCollector({ store: b.metadata.gc, storage: b.storage, did: DIDS.owner, graceSeconds: 0 });
    const report = await collector.run();
    expect(report.items.find((item) => item.digest === digest)?.action, 'collected through b').to.equal('deleted');
    expect((await getFromUrl(first)).status, 'the old object is gone').to.equal(404);
    await pushBlob(bUrl, bytes);

    const again = await pullUrl(a.url, digest);
    const pulled = await getFromUrl(again);
    expect(pulled.status, `a redirected to ${again}`).to.equal(200);
    expect(pulled.body.equals(bytes)).to.equal(true);
  });
});
