import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { GarbageCollector } from '../../src/registry/gc/collector.ts';
import { ImmutableTags } from '../../src/registry/policies/immutable.ts';
import { Retention, type RetentionReport } from '../../src/registry/policies/retention.ts';
import type { RetentionRule } from '../../src/registry/policies/retention-plan.ts';
import { sha256 } from '../support/bytes.ts';
import { DIDS } from '../support/hold-harness.ts';
import { startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';

const IMMUTABLE = [{ repositories: 'alice/released', tags: ['v*'] }];
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const HOUR_MS = 3_600_000;

for (const [backend, metadata] of [
  ['fs', 'sqlite'],
  ['fs', 'postgres'],
  ['s3', 'sqlite'],
  ['s3', 'postgres'],
] as const) {
  describe(`storage policies (${backend}, ${metadata})`, function () {
    this.timeout(300_000);
    let registry: TestRegistry;
    const tokens = new Map<string, string>();

    before(async function () {
      registry = await startTestRegistry({ backend, metadata, policies: { immutableTags: IMMUTABLE } });
    });
    after(async function () {
      await registry?.close();
    });

    async function http(repo: string, method: string, path: string, body?: Buffer, contentType?: string) {
      if (!tokens.has(repo)) tokens.set(repo, await registry.token('alice', `repository:${repo}:pull,push,delete`));
      const response = await request(`${registry.url}${path}`, {
        method: method as 'GET',
        body,
        headers: { authorization: `Bearer ${tokens.get(repo) as string}`, ...(contentType ? { 'content-type': contentType } : {}) },
      });
      return { status: response.statusCode, text: await response.body.text() };
    }

    /** Pushes a one-layer image (fresh bytes unless given) and returns its manifest's digest; `tag` may be a digest-less push with undefined. */
    async function pushImage(repo: string, tag: string | undefined, layer = randomBytes(1000), extra: Record<string, unknown> = {}): Promise<{ digest: string; layer: Buffer; config: Buffer }> {
      const config = randomBytes(64);
      for (const blob of [config, layer]) {
        const pushed = await http(repo, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, blob, 'application/octet-stream');
        expect(pushed.status, pushed.text).to.equal(201);
      }
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
          ...extra,
        }),
      );
      const digest = sha256(manifest);
      const put = await http(repo, 'PUT', `/v2/${repo}/manifests/${tag ?? digest}`, manifest, OCI_MANIFEST);
      expect(put.status, put.text).to.equal(201);
      return { digest, layer, config };
    }

    async function putIndex(repo: string, reference: string, children: string[]): Promise<{ status: number; text: string; digest: string }> {
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((digest) => ({ mediaType: OCI_MANIFEST, digest, size: 1 })) }));
      return { ...(await http(repo, 'PUT', `/v2/${repo}/manifests/${reference}`, index, OCI_INDEX)), digest: sha256(index) };
    }

    async function resolve(repo: string, reference: string): Promise<string | undefined> {
      return registry.registry.metadata.resolveTag(repo, reference);
    }

    describe('immutable tags', function () {
      const repo = 'alice/released';

      it('refuses a push that would move an immutable tag, with 403 DENIED saying so, and changes nothing', async function () {
        const first = await pushImage(repo, 'v1.0');
        const other = await pushImage(repo, 'scratch');
        const manifest = await http(repo, 'GET', `/v2/${repo}/manifests/scratch`);
        const moved = await http(repo, 'PUT', `/v2/${repo}/manifests/v1.0`, Buffer.from(manifest.text), OCI_MANIFEST);
        expect(moved.status).to.equal(403);
        const error = (JSON.parse(moved.text) as { errors: { code: string; message: string; detail: unknown }[] }).errors[0];
        expect(error?.code).to.equal('DENIED');
        expect(error?.message).to.equal(`tag v1.0 in ${repo} is immutable and points at ${first.digest}; push under a new tag instead`);
        expect(await resolve(repo, 'v1.0')).to.equal(first.digest);
        expect(other.digest).to.not.equal(first.digest);
      });

      it('accepts the same digest pushed to the tag again (a client retrying)', async function () {
        const manifest = await http(repo, 'GET', `/v2/${repo}/manifests/v1.0`);
        const again = await http(repo, 'PUT', `/v2/${repo}/manifests/v1.0`, Buffer.from(manifest.text), OCI_MANIFEST);
        expect(again.status, again.text).to.equal(201);
      });

      it('refuses a DELETE of the tag and of the manifest it points at', async function () {
        const digest = (await resolve(repo, 'v1.0')) as string;
        const byTag = await http(repo, 'DELETE', `/v2/${repo}/manifests/v1.0`);
        expect([byTag.status, byTag.text]).to.deep.equal([403, JSON.stringify({ errors: [{ code: 'DENIED', message: `tag v1.0 in ${repo} is immutable and cannot be deleted`, detail: { tag: 'v1.0', digest } }] })]);
        const byDigest = await http(repo, 'DELETE', `/v2/${repo}/manifests/${digest}`);
        expect(byDigest.status).to.equal(403);
        expect(byDigest.text).to.contain(`manifest ${digest} in ${repo} is held by the immutable tag v1.0`);
        const layer = (JSON.parse((await http(repo, 'GET', `/v2/${repo}/manifests/v1.0`)).text) as { layers: { digest: string }[] }).layers[0]?.digest as string;
        const blob = await http(repo, 'DELETE', `/v2/${repo}/blobs/${layer}`);
        expect(blob.status, 'nor a blob its manifest lists').to.equal(403);
        expect((await http(repo, 'GET', `/v2/${repo}/manifests/v1.0`)).status).to.equal(200);
      });

      it('protects what an immutable index lists, while other tags and repositories move and delete freely', async function () {
        const child = await pushImage(repo, undefined);
        const index = await putIndex(repo, 'v2-multi', [child.digest]);
        expect(index.status, index.text).to.equal(201);
        expect((await http(repo, 'DELETE', `/v2/${repo}/manifests/${child.digest}`)).status).to.equal(403);

        const scratch = await pushImage(repo, 'scratch');
        expect(await resolve(repo, 'scratch')).to.equal(scratch.digest);
        expect((await http(repo, 'DELETE', `/v2/${repo}/manifests/scratch`)).status).to.equal(202);
        const elsewhere = 'alice/sandbox';
        await pushImage(elsewhere, 'v1');
        const moved = await pushImage(elsewhere, 'v1');
        expect(await resolve(elsewhere, 'v1')).to.equal(moved.digest);
      });

      it('of two first pushes of one immutable tag at once, exactly one lands', async function () {
        const [a, b] = [await pushImage(repo, undefined), await pushImage(repo, undefined)];
        const bodies = await Promise.all([a, b].map((image) => http(repo, 'GET', `/v2/${repo}/manifests/${image.digest}`)));
        const puts = await Promise.all(bodies.map((body) => http(repo, 'PUT', `/v2/${repo}/manifests/v3`, Buffer.from(body.text), OCI_MANIFEST)));
        expect(puts.map((put) => put.status).sort()).to.deep.equal([201, 403]);
        const winner = puts[0]?.status === 201 ? a : b;
        expect(await resolve(repo, 'v3')).to.equal(winner.digest);
      });
    });

    describe('retention', function () {
      /** Retention over the registry's own store; its clock runs `offsetMs` ahead of real time. */
      function retention(rules: RetentionRule[], options: { offsetMs?: number; onPlanned?: (repository: string) => Promise<void> } = {}) {
        return new Retention({
          rules,
          store: registry.registry.metadata.retention,
          listRepositories: (page) => registry.registry.metadata.listRepositories(page),
          immutableTags: new ImmutableTags(IMMUTABLE),
          now: () => new Date(Date.now() + (options.offsetMs ?? 0)),
          ...(options.onPlanned ? { onPlanned: options.onPlanned } : {}),
        });
      }
      const rule = (fields: Partial<RetentionRule> & { repositories: string }): RetentionRule => ({ keepTags: [], ...fields });
      const tagsOf = async (repo: string) => (await registry.registry.metadata.listTags(repo)).sort();

      it('keeps pattern tags and the most recent, removes the rest and the manifests only they held, and the GC then frees their blobs', async function () {
        const repo = 'alice/ci';
        const kept = [await pushImage(repo, 'latest'), await pushImage(repo, 'v1.0')];
        const old = [await pushImage(repo, 'c1'), await pushImage(repo, 'c2'), await pushImage(repo, 'c3')];
        const recent = [await pushImage(repo, 'c4'), await pushImage(repo, 'c5')];
        const untagged = await pushImage(repo, undefined);
        // A signature of c1 (goes with it) and one of c5 (stays with it).
        const subjectOf = (digest: string) => ({ subject: { mediaType: OCI_MANIFEST, digest, size: 1 }, artifactType: 'application/vnd.test.signature' });
        const c1Signature = await pushImage(repo, undefined, randomBytes(10), subjectOf(old[0]?.digest as string));
        const c5Signature = await pushImage(repo, undefined, randomBytes(10), subjectOf(recent[1]?.digest as string));
        const rules = [rule({ repositories: 'alice/ci', keepTags: ['latest', 'v*'], keepLast: 2, untaggedAfterHours: 1 })];

        const dry = await retention(rules, { offsetMs: 2 * HOUR_MS }).run({ dryRun: true, items: true });
        expect(await tagsOf(repo), 'a dry run changes nothing').to.deep.equal(['c1', 'c2', 'c3', 'c4', 'c5', 'latest', 'v1.0']);
        const listed = (report: RetentionReport) => (report.items ?? []).map((item) => `${item.kind} ${item.tag ?? item.digest} ${item.action}`).sort();
        const expected = (action: string) =>
          [...['c1', 'c2', 'c3'].map((tag) => `tag ${tag} ${action}`), ...[...old, untagged, c1Signature].map((image) => `manifest ${image.digest} ${action}`)].sort();
        expect(listed(dry)).to.deep.equal(expected('would-delete'));
        const c2 = dry.items?.find((item) => item.tag === 'c2');
        expect(c2).to.deep.include({ rule: 0, pattern: 'alice/ci', reason: 'matches none of keepTags (latest, v*); not among the 2 most recently pushed tags' });
        expect(dry.items?.find((item) => item.digest === c1Signature.digest)?.reason).to.equal(`a referrer of ${old[0]?.digest as string}, which this rule removes`);

        const report = await retention(rules, { offsetMs: 2 * HOUR_MS }).run({ items: true });
        expect(listed(report)).to.deep.equal(expected('deleted'));
        expect([report.deletedTags, report.deletedManifests, report.skipped]).to.deep.equal([3, 5, 0]);
        expect(await tagsOf(repo)).to.deep.equal(['c4', 'c5', 'latest', 'v1.0']);
        for (const image of [...kept, ...recent, c5Signature]) expect((await http(repo, 'GET', `/v2/${repo}/manifests/${image.digest}`)).status).to.equal(200);
        for (const image of [...old, untagged, c1Signature]) expect((await http(repo, 'GET', `/v2/${repo}/manifests/${image.digest}`)).status).to.equal(404);

        await new GarbageCollector({ store: registry.registry.metadata.gc, storage: registry.registry.storage, did: DIDS.owner, graceSeconds: 0 }).run();
        const stored = (blob: Buffer) => registry.hold.client.stat(DIDS.owner, sha256(blob)).then(() => true, () => false);
        for (const image of [...old, untagged, c1Signature]) expect([await stored(image.config), await stored(image.layer)], 'freed').to.deep.equal([false, false]);
        for (const image of [...kept, ...recent, c5Signature]) expect([await stored(image.config), await stored(image.layer)], 'kept').to.deep.equal([true, true]);
      });

      it('olderThanDays removes only old tags and never an immutable one; an index and what it lists go together', async function () {
        const repo = 'alice/released';
        const before = await tagsOf(repo);
        const child = await pushImage(repo, undefined);
        const index = await putIndex(repo, 'nightly', [child.digest]);
        expect(index.status).to.equal(201);
        const report = await retention([rule({ repositories: 'alice/released', olderThanDays: 2, untaggedAfterHours: 1 })], { offsetMs: 3 * 24 * HOUR_MS }).run({ items: true });
        const removedTags = (report.items ?? []).filter((item) => item.kind === 'tag').map((item) => item.tag);
        expect(removedTags.sort()).to.deep.equal(before.filter((tag) => !tag.startsWith('v')).concat('nightly').sort());
        expect(await tagsOf(repo)).to.deep.equal(before.filter((tag) => tag.startsWith('v')));
        const order = (report.items ?? []).map((item) => item.digest);
        expect(order.indexOf(index.digest), 'the index goes before what it lists').to.be.lessThan(order.indexOf(child.digest));
        expect((await http(repo, 'GET', `/v2/${repo}/manifests/${child.digest}`)).status).to.equal(404);
      });

      it('a push that races the pass keeps what it pushed: a tag moved, and an old manifest tagged, after the plan', async function () {
        const repo = 'alice/race';
        await pushImage(repo, 'a');
        const orphan = await pushImage(repo, undefined);
        await pushImage(repo, 'b');
        let moved: { digest: string } | undefined;
        const report = await retention([rule({ repositories: 'alice/race', keepLast: 1, untaggedAfterHours: 1 })], {
          offsetMs: 2 * HOUR_MS,
          onPlanned: async () => {
            moved = await pushImage(repo, 'a');
            const body = await http(repo, 'GET', `/v2/${repo}/manifests/${orphan.digest}`);
            expect((await http(repo, 'PUT', `/v2/${repo}/manifests/kept`, Buffer.from(body.text), OCI_MANIFEST)).status).to.equal(201);
          },
        }).run({ items: true });
        expect(report.items?.filter((item) => item.action === 'skipped').map((item) => item.tag ?? item.digest)).to.include.members(['a', orphan.digest]);
        expect(await resolve(repo, 'a')).to.equal(moved?.digest);
        expect(await resolve(repo, 'kept')).to.equal(orphan.digest);
        for (const digest of [moved?.digest as string, orphan.digest]) expect((await http(repo, 'GET', `/v2/${repo}/manifests/${digest}`)).status).to.equal(200);
      });

      it('the first rule that matches a repository is the one applied', async function () {
        const repo = 'alice/first-rule';
        await pushImage(repo, 'x');
        await pushImage(repo, 'y');
        const report = await retention([rule({ repositories: 'alice/first-*', keepLast: 5 }), rule({ repositories: 'alice/**', keepLast: 0 })]).run({ dryRun: true, items: true });
        expect(report.items?.filter((item) => item.repository === repo)).to.deep.equal([]);
      });
    });
  });
}
