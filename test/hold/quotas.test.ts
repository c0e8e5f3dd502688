import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { HoldClient } from '../../src/driver/hold-client.ts';
import type { Quotas } from '../../src/hold/quotas/quotas.ts';
import { putToUrl, sha256 } from '../support/bytes.ts';
import { AUDIENCE, BACKENDS, DIDS, startTestHold, type TestHold } from '../support/hold-harness.ts';

const LIMIT = 3000;

for (const backend of BACKENDS) {
  describe(`hold quotas (${backend})`, function () {
    this.timeout(120_000);
    let hold: TestHold;
    let quotas: Quotas;

    before(async function () {
      hold = await startTestHold(backend, {
        config: {
          crew: [
            { did: DIDS.crewWrite, access: 'write' },
            { did: DIDS.crewRead, access: 'read' },
          ],
          quotas: { tiers: { small: LIMIT, large: '1GB' }, defaultTier: 'small' },
        },
      });
      quotas = hold.hold.service.quotas as Quotas;
    });
    after(async function () {
      await hold?.close();
    });

    /** The single-PUT way: a presigned PUT, then /move. */
    async function publish(did: string, blob: Uint8Array, client: HoldClient = hold.client): Promise<string> {
      const digest = sha256(blob);
      const put = await client.putPresignedUrl(did, digest);
      await putToUrl(put.url, blob);
      await client.move(did, put.upload_name as string, digest);
      return digest;
    }
    const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (err: { code?: string; message: string }) => err);
    const stored = (digest: string) => hold.client.stat(DIDS.owner, digest).then(() => true, () => false);

    it('charges a DID once per blob, however often it publishes or claims it', async function () {
      const a = randomBytes(1000);
      const digest = await publish(DIDS.crewWrite, a);
      await publish(DIDS.crewWrite, a);
      await hold.client.claim(DIDS.crewWrite, digest);
      expect(await quotas.usage(DIDS.crewWrite)).to.equal(1000);
    });

    let big: string;
    let small: string;

    it('refuses a publish that would pass the limit, with the numbers, and stores nothing', async function () {
      big = await publish(DIDS.crewWrite, randomBytes(1500));
      expect(await quotas.usage(DIDS.crewWrite)).to.equal(2500);
      const blob = randomBytes(1000);
      const error = await refusal(publish(DIDS.crewWrite, blob));
      expect(error?.code).to.equal('DENIED');
      expect(error?.message).to.equal(`quota exceeded for ${DIDS.crewWrite} on ${AUDIENCE}: 2.5 kB used of 3 kB (tier small); this push adds 1 kB`);
      expect(await quotas.usage(DIDS.crewWrite)).to.equal(2500);
      expect(await stored(sha256(blob))).to.equal(false);
    });

    it('a mount (claim) of stored bytes is charged as a publish is', async function () {
      const ownerBlob = randomBytes(800);
      const digest = await publish(DIDS.owner, ownerBlob);
      expect((await refusal(hold.client.claim(DIDS.crewWrite, digest)))?.code, '2500 + 800 > 3000').to.equal('DENIED');
      small = await publish(DIDS.owner, randomBytes(500));
      await hold.client.claim(DIDS.crewWrite, small);
      expect(await quotas.usage(DIDS.crewWrite)).to.equal(LIMIT);
      expect(await quotas.usage(DIDS.owner), 'the owner is neither limited nor counted').to.equal(0);
    });

    it('at the limit, an upload is refused at its start, before a byte moves', async function () {
      const multipart = await refusal(hold.client.startMultipart(DIDS.crewWrite));
      expect([multipart?.code, multipart?.message]).to.deep.equal(['DENIED', `quota exceeded for ${DIDS.crewWrite} on ${AUDIENCE}: 3 kB used of 3 kB (tier small)`]);
      expect((await refusal(hold.client.putPresignedUrl(DIDS.crewWrite, sha256(randomBytes(10)))))?.code).to.equal('DENIED');
      const metrics = await hold.hold.metrics.registry.metrics();
      expect(metrics).to.match(/holdfast_hold_quota_refusals_total\{phase="start"\} 2\b/);
      expect(metrics, 'the publish and the mount refused before').to.match(/holdfast_hold_quota_refusals_total\{phase="charge"\} 2\b/);
      expect(metrics, 'no DID in the public metrics').to.not.contain(DIDS.crewWrite);
    });

    it('usage drops when the bytes are deleted', async function () {
      await hold.client.release(DIDS.owner, small);
      expect(await stored(small)).to.equal(false);
      expect(await quotas.usage(DIDS.crewWrite)).to.equal(LIMIT - 500);
    });

    it('holdfast quota --check finds charges for bytes gone behind its back, and --fix recounts', async function () {
      const digest = await publish(DIDS.crewWrite, randomBytes(100));
      const [algorithm, hex] = digest.split(':') as [string, string];
      const target = (await hold.hold.backend.stat(`${hold.prefix}docker/registry/v2/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data`))?.target;
      await hold.hold.backend.delete([`${hold.prefix}docker/registry/v2/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data`, ...(target ? [target] : [])]);
      const row = async () => (await quotas.check({ fix: false })).find((entry) => entry.did === DIDS.crewWrite);
      expect(await row()).to.deep.equal({ did: DIDS.crewWrite, recorded: 2600, counted: 2500, staleCharges: 1 });
      await quotas.check({ fix: true });
      expect(await row()).to.deep.equal({ did: DIDS.crewWrite, recorded: 2500, counted: 2500, staleCharges: 0 });
      expect(await quotas.list()).to.deep.equal([{ did: DIDS.crewWrite, bytes: 2500, limit: { tier: 'small', bytes: LIMIT } }]);
    });

    it('two publishes for one DID at once, through two hold processes on S3, cannot both pass its limit', async function () {
      await hold.client.release(DIDS.crewWrite, big);
      expect(await quotas.usage(DIDS.crewWrite)).to.equal(1000);
      const sibling = backend === 's3' ? await hold.sibling() : undefined;
      const other = sibling ? new HoldClient({ url: sibling.url, audience: AUDIENCE, signer: hold.signer }) : hold.client;
      try {
        const results = await Promise.allSettled([publish(DIDS.crewWrite, randomBytes(1500), hold.client), publish(DIDS.crewWrite, randomBytes(1500), other)]);
        expect(results.map((result) => result.status).sort()).to.deep.equal(['fulfilled', 'rejected']);
        expect(await quotas.usage(DIDS.crewWrite)).to.equal(2500);
      } finally {
        if (sibling) await other.close();
      }
    });
  });
}
