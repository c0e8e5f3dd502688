import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { GarbageCollector } from '../../src/registry/gc/collector.ts';
import { issuerId } from '../../src/hold/keys.ts';
import { DIDS } from '../support/hold-harness.ts';
import { sha256 } from '../support/bytes.ts';
import { startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';
import { collect } from '../support/collect.ts';

const REPO = 'alice/gc';

for (const metadata of ['sqlite', 'postgres'] as const) {
  describe(`online garbage collection (${metadata})`, function () {
    this.timeout(300_000);
    let registry: TestRegistry;
    let token: string;
    /** The collector's clock runs with real time, shifted to skip grace periods. */
    let clockOffsetMs = 0;

    before(async function () {
      registry = await startTestRegistry({ backend: 's3', metadata });
      token = await registry.token('alice', `repository:${REPO}:pull,push`);
    });
    after(async function () {
      await registry?.close();
    });

    const collector = (graceSeconds: number) =>
      new GarbageCollector({ store: registry.registry.metadata.gc, storage: registry.registry.storage, did: DIDS.owner, graceSeconds, now: () => new Date(Date.now() + clockOffsetMs) });

    async function http(method: string, path: string, body?: Buffer, contentType?: string) {
      const response = await request(`${registry.url}${path}`, {
        method: method as 'GET',
        body,
        headers: { authorization: `Bearer ${token}`, ...(contentType ? { 'content-type': contentType } : {}) },
      });
      const text = await response.body.text();
      return { status: response.statusCode, text };
    }

    async function pushBlob(bytes: Buffer) {
      return http('POST', `/v2/${REPO}/blobs/uploads/?digest=${sha256(bytes)}`, bytes, 'application/octet-stream');
    }

    function manifestOf(config: Buffer, layers: Buffer[]): Buffer {
      return Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length })),
        }),
      );
    }

    async function pushImage(tag: string, config: Buffer, layers: Buffer[]): Promise<string> {
      for (const blob of [config, ...layers]) expect((await pushBlob(blob)).status).to.equal(201);
      const manifest = manifestOf(config, layers);
      const put = await http('PUT', `/v2/${REPO}/manifests/${tag}`, manifest, 'application/vnd.oci.image.manifest.v1+json');
      expect(put.status, put.text).to.equal(201);
      return sha256(manifest);
    }

    async function inHold(blob: Buffer): Promise<boolean> {
      return registry.hold.client.stat(DIDS.owner, sha256(blob)).then(
        () => true,
        () => false,
      );
    }

    it('deletes the layers only a deleted image used and keeps shared ones and the other image', async function () {
      const shared = randomBytes(300_000);
      const [configA, onlyA, configB, onlyB] = [randomBytes(100), randomBytes(200_000), randomBytes(101), randomBytes(150_000)];
      const imageA = await pushImage('a', configA, [shared, onlyA]);
      await pushImage('b', configB, [shared, onlyB]);
      expect((await http('DELETE', `/v2/${REPO}/manifests/${imageA}`)).status).to.equal(202);
      const report = await collector(0).run();
      expect(report.deletedBlobs).to.equal(2);
      expect(report.deletedBytes).to.equal(configA.length + onlyA.length);
      for (const gone of [configA, onlyA]) expect(await inHold(gone), 'unique to the deleted image').to.equal(false);
      for (const kept of [shared, configB, onlyB]) expect(await inHold(kept), 'still used by image b').to.equal(true);
      expect((await http('GET', `/v2/${REPO}/manifests/b`)).status).to.equal(200);
      expect((await http('HEAD', `/v2/${REPO}/blobs/${sha256(shared)}`)).status).to.equal(200);
      expect((await http('HEAD', `/v2/${REPO}/blobs/${sha256(onlyA)}`)).status).to.equal(404);
      expect((await collector(0).run()).deletedBlobs, 'a second pass finds nothing').to.equal(0);
    });

    it('keeps a blob that a push references again within the grace period', async function () {
      const [configC, layer, configD] = [randomBytes(102), randomBytes(50_000), randomBytes(103)];
      const imageC = await pushImage('c', configC, [layer]);
      await http('DELETE', `/v2/${REPO}/manifests/${imageC}`);
      const first = await collector(3600).run();
      expect(first.deletedBlobs).to.equal(0);
      expect(first.waiting).to.be.at.least(2);
      await pushImage('d', configD, [layer]);
      clockOffsetMs += 2 * 3600 * 1000;
      const second = await collector(3600).run();
      expect(second.rescued).to.be.at.least(1);
      expect(await inHold(layer), 'rescued by image d').to.equal(true);
      expect(await inHold(configC), 'past the grace period').to.equal(false);
    });

    it('--dry-run lists what would go and changes nothing', async function () {
      const [config, layer] = [randomBytes(104), randomBytes(10_000)];
      const image = await pushImage('e', config, [layer]);
      await http('DELETE', `/v2/${REPO}/manifests/${image}`);
      const before = await registry.hold.inspect.keys();
      const candidates = [...(await collect(registry.registry.metadata.gc.candidates('manifest'))), ...(await collect(registry.registry.metadata.gc.candidates('blob')))];
      const report = await collector(0).run({ dryRun: true });
      expect(report.items.filter((entry) => entry.action === 'would-delete').map((entry) => entry.digest)).to.include.members([sha256(config), sha256(layer)]);
      expect(report.items.every((entry) => entry.reason.length > 0)).to.equal(true);
      expect(await registry.hold.inspect.keys()).to.deep.equal(before);
      expect([...(await collect(registry.registry.metadata.gc.candidates('manifest'))), ...(await collect(registry.registry.metadata.gc.candidates('blob')))]).to.deep.equal(candidates);
      await collector(0).run();
    });

    it('relinks a released blob whose bytes another registry kept, instead of refusing it forever', async function () {
      const [config, layer] = [randomBytes(106), randomBytes(4096)];
      const image = await pushImage('reclaimed', config, [layer]);
      // Another registry sharing the hold uses the same layer.
      const hex = sha256(layer).slice('sha256:'.length);
      await registry.hold.hold.backend.putSmall(`${registry.hold.prefix}holdfast/claims/sha256/${hex}/${issuerId('did:web:other-registry.test')}`, Buffer.from('{}'));
      await http('DELETE', `/v2/${REPO}/manifests/${image}`);
      const report = await collector(0).run();
      expect(report.items.find((entry) => entry.digest === sha256(layer))?.action).to.equal('kept-by-another-registry');
      expect(await inHold(layer)).to.equal(true);
      // Pushing it again here finds the bytes stored: the push must succeed, not be told to retry forever.
      expect((await pushBlob(layer)).status).to.equal(201);
      expect((await pushBlob(config)).status, 'the config was collected and is uploaded afresh').to.equal(201);
      const put = await http('PUT', `/v2/${REPO}/manifests/reclaimed`, manifestOf(config, [layer]), 'application/vnd.oci.image.manifest.v1+json');
      expect(put.status, put.text).to.equal(201);
      expect((await http('HEAD', `/v2/${REPO}/blobs/${sha256(layer)}`)).status).to.equal(200);
    });

    it('never leaves a manifest pointing at a missing blob when a push races a pass (50 runs)', async function () {
      const outcomes = { pushedFirst: 0, retried: 0, collectedFirst: 0 };
      const config = randomBytes(105);
      for (let run = 0; run < 50; run++) {
        const layer = randomBytes(2048);
        const first = await pushImage(`race-${run}-old`, config, [layer]);
        await http('DELETE', `/v2/${REPO}/manifests/${first}`);
        const push = async () => {
          const failures: string[] = [];
          for (let attempt = 0; attempt < 8; attempt++) {
            const blobs = await Promise.all([pushBlob(config), pushBlob(layer)]);
            if (blobs.every((result) => result.status === 201)) {
              const put = await http('PUT', `/v2/${REPO}/manifests/race-${run}`, manifestOf(config, [layer]), 'application/vnd.oci.image.manifest.v1+json');
              if (put.status === 201) return attempt;
              expect(put.status, put.text).to.be.oneOf([400, 503]);
              failures.push(`manifest ${put.status} ${put.text}`);
            } else {
              for (const result of blobs) expect(result.status, result.text).to.be.oneOf([201, 503]);
              failures.push(...blobs.map((result) => `blob ${result.status} ${result.text}`));
            }
            // A client backs off before it retries.
            await new Promise((resolve) => setTimeout(resolve, 50 * (attempt + 1)));
          }
          throw new Error(`the push did not succeed after 8 attempts: ${failures.join(' | ')}`);
        };
        // Start the pass at a different moment of the push each run.
        const delayed = new Promise((resolve) => setTimeout(resolve, (run % 10) * 4)).then(() => collector(0).run());
        const [attempts, report] = await Promise.all([push(), delayed]);
        if (attempts === 0) outcomes.pushedFirst++;
        else outcomes.retried++;
        if (report.deletedBlobs > 0) outcomes.collectedFirst++;
        // Whatever happened, the tagged manifest's blobs are in the hold.
        expect((await http('GET', `/v2/${REPO}/manifests/race-${run}`)).status).to.equal(200);
        expect(await inHold(layer), `run ${run}: the layer is present`).to.equal(true);
        expect(await inHold(config), `run ${run}: the config is present`).to.equal(true);
      }
      expect(outcomes.pushedFirst + outcomes.retried).to.equal(50);
      if (process.env.GC_RACE_REPORT) console.log(`gc race (${metadata}): ${JSON.stringify(outcomes)}`);
    });
  });
}
