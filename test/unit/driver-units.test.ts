import { expect } from 'chai';
import { MockAgent } from 'undici';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { parseDriverConfig } from '../../src/driver/config.ts';
import { mappingHoldErrors } from '../../src/driver/errors.ts';
import { HoldClient, HoldClientError } from '../../src/driver/hold-client.ts';
import type { DriverError } from '../../src/driver/types.ts';
import { BudgetTimeoutError, MemoryBudget } from '../../src/driver/memory-budget.ts';
import { maxBlobSize, partSizeFor } from '../../src/driver/part-size.ts';
import { PresignedUrlCache } from '../../src/driver/presigned-url-cache.ts';
import { Transport } from '../../src/driver/transport.ts';
import { decodeWriterId, encodeWriterId } from '../../src/driver/writer-id.ts';
import { ConfigError } from '../../src/core/config.ts';
import { generateSigningKey } from '../support/hold-harness.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('part sizes', function () {
  it('keeps equal parts on equal-part profiles and grows elsewhere', function () {
    expect(partSizeFor(1, 5 * MiB, true)).to.equal(5 * MiB);
    expect(partSizeFor(9999, 5 * MiB, true)).to.equal(5 * MiB);
    expect(partSizeFor(2000, 5 * MiB, false)).to.equal(5 * MiB);
    expect(partSizeFor(2001, 5 * MiB, false)).to.equal(10 * MiB);
    expect(partSizeFor(8001, 64 * MiB, false)).to.equal(1024 * MiB);
    expect(partSizeFor(8001, 64 * MiB, false, 512 * MiB)).to.equal(512 * MiB);
  });

  it('documents the largest blob per profile', function () {
    expect(maxBlobSize(5 * MiB, true)).to.equal(50_000 * MiB);
    expect(maxBlobSize(64 * MiB, true)).to.equal(625 * GiB);
    expect(maxBlobSize(5 * MiB, false)).to.equal(2000 * (5 + 10 + 20 + 40 + 80) * MiB);
  });
});

describe('memory budget', function () {
  it('serves waiters in order as bytes are released', async function () {
    const budget = new MemoryBudget(10);
    await budget.acquire(6);
    const order: string[] = [];
    const a = budget.acquire(6).then(() => order.push('a'));
    const b = budget.acquire(1).then(() => order.push('b'));
    expect(budget.tryAcquire(1)).to.equal(false);
    budget.release(6);
    await Promise.all([a, b]);
    expect(order).to.deep.equal(['a', 'b']);
    expect(budget.used).to.equal(7);
    expect(await budget.acquire(11).catch((err: unknown) => err)).to.be.instanceOf(RangeError);
  });
});

describe('memory budget shares per tenant', function () {
  it('lets other tenants past one that holds its whole share, and times that one out', async function () {
    const budget = new MemoryBudget(10, 4);
    await budget.acquire(4, { tenant: 'a' });
    const waiting = budget.acquire(4, { tenant: 'a', timeoutMs: 50 }).catch((err: unknown) => err);
    await budget.acquire(4, { tenant: 'b' });
    expect(budget.usedBy('b')).to.equal(4);
    const error = (await waiting) as BudgetTimeoutError;
    expect(error).to.be.instanceOf(BudgetTimeoutError);
    expect(error.overShare).to.equal(true);
    expect(budget.usedBy('a')).to.equal(4);
  });

  it("hands a tenant's released bytes to its own waiter", async function () {
    const budget = new MemoryBudget(10, 4);
    await budget.acquire(4, { tenant: 'a' });
    const waiting = budget.acquire(3, { tenant: 'a' });
    budget.release(4, 'a');
    await waiting;
    expect(budget.usedBy('a')).to.equal(3);
  });

  it('allows one reservation larger than the share to a tenant that holds nothing', async function () {
    const budget = new MemoryBudget(10, 2);
    await budget.acquire(8, { tenant: 'a' });
    expect(budget.usedBy('a')).to.equal(8);
  });

  it('keeps all idle bytes to a quarter of the budget', function () {
    const budget = new MemoryBudget(40, 40);
    expect(budget.tryAcquire(10, 'a')).to.equal(true);
    expect(budget.tryAcquire(1, 'b')).to.equal(false);
    budget.releaseIdle(10, 'a');
    expect(budget.tryAcquire(1, 'b')).to.equal(true);
  });

  it('keeps idle bytes to half a share', function () {
    const budget = new MemoryBudget(100, 10);
    expect(budget.tryAcquire(6, 'a')).to.equal(false);
    expect(budget.tryAcquire(5, 'a')).to.equal(true);
    expect(budget.tryAcquire(1, 'a')).to.equal(false);
  });
});

describe('memory budget buffer pool', function () {
  it('hands a recycled buffer to the next waiter instead of allocating', async function () {
    const budget = new MemoryBudget(2 * MiB);
    const first = await budget.allocate(MiB);
    const second = await budget.allocate(MiB);
    const waiting = budget.allocate(MiB);
    budget.recycle(first);
    expect(await waiting).to.equal(first);
    budget.recycle(second);
    expect(await budget.allocate(MiB)).to.equal(second);
  });

  it('drops pooled buffers to make room for other reservations', async function () {
    const budget = new MemoryBudget(2 * MiB);
    budget.recycle(await budget.allocate(2 * MiB));
    expect(budget.tryAcquire(MiB / 2)).to.equal(true);
    const other = await budget.allocate(MiB);
    expect(other.length).to.equal(MiB);
    expect(budget.used).to.equal(1.5 * MiB);
  });
});

describe('writer ids', function () {
  it('round-trips and rejects junk', function () {
    const name = 'uploads/temp-0a1b2c3d-0000-4000-8000-123456789abc';
    const id = encodeWriterId(name, 'ZjA2/+=upload~id');
    expect(id).to.match(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]+$/);
    expect(decodeWriterId(id)).to.deep.equal({ uploadName: name, uploadId: 'ZjA2/+=upload~id' });
    for (const junk of ['', 'x.y', '../../etc.passwd', `${'0'.repeat(36)}.!`]) expect(() => decodeWriterId(junk)).to.throw();
  });
});

describe('driver config', function () {
  const base = { hold: { url: 'http://127.0.0.1:1', audience: 'did:web:hold' }, issuer: 'did:web:registry', privateKey: 'PEM' };

  it('applies provider presets', function () {
    expect(parseDriverConfig({ ...base, provider: 'storj' }).partSize).to.equal(64 * MiB);
    expect(parseDriverConfig({ ...base, provider: 'r2' }).equalParts).to.equal(true);
    expect(parseDriverConfig(base).maxPartsInFlight).to.equal(4);
  });

  it('names the part-size limits', function () {
    for (const partSize of [5 * MiB - 1, 64 * MiB + 1]) {
      const error = (() => {
        try {
          parseDriverConfig({ ...base, partSize });
        } catch (err) {
          return err;
        }
      })();
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).message).to.match(/partSize must be from 5242880 \(5 MiB\) to 67108864 \(64 MiB\)/);
    }
  });
});

describe('service token signer', function () {
  it('reuses a token for the first half of its life, per subject and audience', async function () {
    let now = 1_000_000_000_000;
    const signer = new ServiceTokenSigner({ issuer: 'did:web:r', privateKey: (await generateSigningKey()).privateKey, ttlSeconds: 120, now: () => now });
    const first = await signer.sign('did:plc:a', 'did:web:h');
    expect(await signer.sign('did:plc:a', 'did:web:h')).to.equal(first);
    expect(await signer.sign('did:plc:b', 'did:web:h')).not.to.equal(first);
    expect(await signer.sign('did:plc:a', 'did:web:other')).not.to.equal(first);
    now += 59_000;
    expect(await signer.sign('did:plc:a', 'did:web:h')).to.equal(first);
    now += 2_000;
    const fresh = await signer.sign('did:plc:a', 'did:web:h');
    expect(fresh).not.to.equal(first);
    const payload = JSON.parse(Buffer.from(fresh.split('.')[1] as string, 'base64url').toString()) as { iat: number; exp: number };
    expect(payload.iat).to.equal(Math.floor(now / 1000));
    expect(payload.exp - payload.iat).to.equal(120);
  });
});

describe('hold client against answers a real hold cannot give', function () {
  let agent: MockAgent;
  let client: HoldClient;

  beforeEach(async function () {
    agent = new MockAgent();
    agent.disableNetConnect();
    const signer = new ServiceTokenSigner({ issuer: 'did:web:r', privateKey: (await generateSigningKey()).privateKey });
    client = new HoldClient({ url: 'http://hold.invalid', audience: 'did:web:h', signer, dispatcher: agent, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 }, validateResponses: true });
  });
  afterEach(async function () {
    await agent.close();
  });

  it('retries 503 and a dropped connection, then succeeds', async function () {
    const pool = agent.get('http://hold.invalid');
    pool.intercept({ path: '/stat', method: 'POST' }).reply(503, { error: { code: 'BACKEND_UNAVAILABLE', message: 'x' } });
    pool.intercept({ path: '/stat', method: 'POST' }).replyWithError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    pool.intercept({ path: '/stat', method: 'POST' }).reply(200, { digest: 'sha256:x', size: 1 });
    expect(await client.stat('did:plc:a', 'sha256:x')).to.deep.equal({ digest: 'sha256:x', size: 1 });
  });

  it('does not retry a 500 and reports a non-JSON body clearly', async function () {
    agent.get('http://hold.invalid').intercept({ path: '/stat', method: 'POST' }).reply(500, '<html>oops</html>');
    const error = (await client.stat('did:plc:a', 'sha256:x').catch((err: unknown) => err)) as HoldClientError;
    expect(error).to.be.instanceOf(HoldClientError);
    expect(error.status).to.equal(500);
    expect(error.code).to.equal('UNKNOWN');
  });

  it('checks answers against the contract and says which endpoint broke it', async function () {
    agent.get('http://hold.invalid').intercept({ path: '/stat', method: 'POST' }).reply(200, { digest: 'sha256:x', size: 'large' });
    const error = (await client.stat('did:plc:a', 'sha256:x').catch((err: unknown) => err)) as HoldClientError;
    expect(error.code).to.equal('INVALID_RESPONSE');
    expect(error.message).to.match(/^\/stat answered outside the contract/);
  });

  it("maps the hold's 501 UNSUPPORTED to the driver's UNSUPPORTED, not UNAVAILABLE", async function () {
    agent.get('http://hold.invalid').intercept({ path: '/move', method: 'POST' }).reply(501, { error: { code: 'UNSUPPORTED', message: 'no UploadPartCopy' } });
    const error = await mappingHoldErrors(() => client.move('did:plc:a', 'uploads/temp-x', 'sha256:x')).catch((err: unknown) => err);
    expect((error as DriverError).code).to.equal('UNSUPPORTED');
  });

  it('gives up on a storage 400 at once, and after the retries on 503', async function () {
    const transport = new Transport({ dispatcher: agent, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 }, timeoutMs: 1000 });
    const storage = agent.get('http://s3.invalid');
    storage.intercept({ path: '/bad', method: 'PUT' }).reply(400, '<Error><Code>InvalidArgument</Code></Error>');
    const bad = await transport.put(async () => 'http://s3.invalid/bad', Buffer.from('x'), 'part').catch((err: unknown) => err);
    expect((bad as Error).message).to.match(/400 \(InvalidArgument\)/);
    storage.intercept({ path: '/busy', method: 'PUT' }).reply(503, '<Error><Code>SlowDown</Code></Error>').times(3);
    const busy = await transport.put(async () => 'http://s3.invalid/busy', Buffer.from('x'), 'part').catch((err: unknown) => err);
    expect((busy as { code: string }).code).to.equal('UNAVAILABLE');
    storage.intercept({ path: '/noetag', method: 'PUT' }).reply(200, '').times(3);
    const noEtag = await transport.put(async () => 'http://s3.invalid/noetag', Buffer.from('x'), 'part').catch((err: unknown) => err);
    expect((noEtag as Error).message).to.match(/without an ETag/);
  });
});

describe('presigned URL cache', function () {
  const issue = (now: number, lifetimeMs: number, label: string) => async () => ({ url: `https://s3.test/${label}`, expiresAt: new Date(now + lifetimeMs) });

  it('reuses a URL while half its lifetime remains and it is younger than maxAgeMs, then asks again', async function () {
    let now = 1_000_000;
    let lifetime = 900_000;
    const cache = new PresignedUrlCache({ maxEntries: 10, maxAgeMs: 60_000, now: () => now });
    let calls = 0;
    const fetch = async () => {
      calls++;
      return issue(now, lifetime, `u${calls}`)();
    };
    expect((await cache.get('k', fetch)).url).to.equal('https://s3.test/u1');
    now += 59_000;
    expect((await cache.get('k', fetch)).url).to.equal('https://s3.test/u1');
    now += 2_000;
    expect((await cache.get('k', fetch)).url, 'older than maxAgeMs').to.equal('https://s3.test/u2');
    lifetime = 40_000;
    now += 61_000;
    expect((await cache.get('k', fetch)).url).to.equal('https://s3.test/u3');
    now += 19_000;
    expect((await cache.get('k', fetch)).url).to.equal('https://s3.test/u3');
    now += 2_000;
    expect((await cache.get('k', fetch)).url, 'past half its lifetime').to.equal('https://s3.test/u4');
    expect(calls).to.equal(4);
  });

  it('asks once for concurrent misses of one key, and never caches a failure', async function () {
    const cache = new PresignedUrlCache({ maxEntries: 10, now: () => 0 });
    let calls = 0;
    const slow = async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return { url: 'https://s3.test/x', expiresAt: new Date(60_000) };
    };
    await Promise.all(Array.from({ length: 8 }, () => cache.get('k', slow)));
    expect(calls).to.equal(1);
    const failing = async () => {
      throw new Error('hold unavailable');
    };
    await cache.get('other', failing).catch(() => undefined);
    expect((await cache.get('other', slow)).url).to.equal('https://s3.test/x');
  });

  it('never hands out a URL cached for another generation of a digest', async function () {
    const cache = new PresignedUrlCache({ maxEntries: 10, now: () => 0 });
    let calls = 0;
    const fetch = async () => ({ url: `https://s3.test/${++calls}`, expiresAt: new Date(60_000) });
    expect((await cache.get(PresignedUrlCache.key('did:plc:a', 'GET', 'sha256:aa', 0), fetch)).url).to.equal('https://s3.test/1');
    expect((await cache.get(PresignedUrlCache.key('did:plc:a', 'GET', 'sha256:aa', 0), fetch)).url).to.equal('https://s3.test/1');
    expect((await cache.get(PresignedUrlCache.key('did:plc:a', 'GET', 'sha256:aa', 1), fetch)).url, 'deleted and stored again').to.equal('https://s3.test/2');
  });

  it('forgets every URL of a digest when it is deleted', async function () {
    const cache = new PresignedUrlCache({ maxEntries: 10, now: () => 0 });
    let calls = 0;
    const fetch = async () => ({ url: `https://s3.test/${++calls}`, expiresAt: new Date(60_000) });
    await cache.get(PresignedUrlCache.key('did:plc:a', 'GET', 'sha256:aa'), fetch);
    await cache.get(PresignedUrlCache.key('did:plc:a', 'HEAD', 'sha256:aa'), fetch);
    cache.forgetDigest('sha256:aa');
    expect((await cache.get(PresignedUrlCache.key('did:plc:a', 'GET', 'sha256:aa'), fetch)).url).to.equal('https://s3.test/3');
  });
});
