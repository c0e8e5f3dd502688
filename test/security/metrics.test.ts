import { expect } from 'chai';
import { request } from 'undici';
import { DIDS } from '../support/hold-harness.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

const SECRET = 'registry-metrics-secret-0123456789';
const basic = (user: { username: string; password: string }) => `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;

/** Pushes one blob as alice and runs a GC pass, so the stored-bytes gauge has a value. */
async function storeAndCollect(registry: TestRegistry): Promise<void> {
  await new OciTestClient(USERS.alice).pushBlob(registry.url, 'alice/app', Buffer.from('metrics leak nothing'));
  await registry.registry.gc?.run();
}

describe('registry /metrics leaks nothing to tenants', function () {
  it('with neither a secret nor metrics.listen, the public port has no /metrics: anonymous callers and signed-in users get 404 and no series', async function () {
    const registry = await startTestRegistry({ backend: 'fs', anonymousPull: false, gc: { did: DIDS.owner, intervalSeconds: 0 } });
    try {
      await storeAndCollect(registry);
      for (const headers of [{}, { authorization: basic(USERS.bob) }]) {
        const response = await request(`${registry.url}/metrics`, { headers });
        const text = await response.body.text();
        expect(response.statusCode).to.equal(404);
        expect(text).not.to.include('holdfast_');
        expect(text).not.to.include(DIDS.owner);
      }
    } finally {
      await registry.close();
    }
  });

  it('behind a bearer secret: 401 without it; with it, stored bytes are one total with no DID label', async function () {
    const registry = await startTestRegistry({ backend: 'fs', gc: { did: DIDS.owner, intervalSeconds: 0 }, metrics: { bearerToken: SECRET } });
    try {
      await storeAndCollect(registry);
      for (const authorization of [undefined, basic(USERS.alice), `Bearer ${SECRET}x`, `Bearer ${await registry.token('alice', 'repository:alice/app:pull')}`]) {
        const response = await request(`${registry.url}/metrics`, { headers: authorization ? { authorization } : {} });
        const text = await response.body.text();
        expect(response.statusCode, String(authorization)).to.equal(401);
        expect(text).not.to.include('holdfast_');
      }
      const scraped = await request(`${registry.url}/metrics`, { headers: { authorization: `Bearer ${SECRET}` } });
      const text = await scraped.body.text();
      expect(scraped.statusCode).to.equal(200);
      expect(text).to.match(/^holdfast_stored_bytes \d+$/m);
      expect(text).not.to.include('did=');
      expect(text).not.to.include(DIDS.owner);
    } finally {
      await registry.close();
    }
  });

  it('per-user labels only when the operator asks, on metrics.listen, and then not on the public port', async function () {
    const registry = await startTestRegistry({ backend: 'fs', gc: { did: DIDS.owner, intervalSeconds: 0 }, metrics: { listen: { host: '127.0.0.1', port: 0 }, perUserLabels: true } });
    try {
      await storeAndCollect(registry);
      const main = await request(`${registry.url}/metrics`);
      expect(main.statusCode).to.equal(404);
      await main.body.dump();
      const scraped = await request(`${registry.registry.metricsAddress as string}/metrics`);
      expect(scraped.statusCode).to.equal(200);
      expect(await scraped.body.text()).to.include(`holdfast_stored_bytes{did="${DIDS.owner}"}`);
    } finally {
      await registry.close();
    }
  });
});
