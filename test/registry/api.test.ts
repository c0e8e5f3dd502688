import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { sha256 } from '../support/bytes.ts';
import { startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';

const REPO = 'alice/app';

type Response = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; json(): { errors?: { code: string }[] } };

for (const backend of ['fs', 's3'] as const) {
  describe(`registry API (${backend})`, function () {
    let registry: TestRegistry;
    let token: string;

    before(async function () {
      registry = await startTestRegistry({ backend });
      token = await registry.token('alice', `repository:${REPO}:pull,push`);
    });
    after(async function () {
      await registry?.close();
    });

    async function call(method: string, path: string, options: { body?: Buffer | string; headers?: Record<string, string>; auth?: string | null } = {}): Promise<Response> {
      const headers: Record<string, string> = { ...options.headers };
      const auth = options.auth === undefined ? token : options.auth;
      if (auth) headers.authorization = `Bearer ${auth}`;
      const response = await request(`${registry.url}${path}`, { method: method as 'GET', headers, body: options.body });
      const body = Buffer.from(await response.body.arrayBuffer());
      return { status: response.statusCode, headers: response.headers, body, json: () => JSON.parse(body.toString() || '{}') };
    }

    async function startUpload(): Promise<string> {
      const started = await call('POST', `/v2/${REPO}/blobs/uploads/`);
      expect(started.status).to.equal(202);
      return started.headers.location as string;
    }

    async function pushBlob(bytes: Buffer): Promise<string> {
      const location = await startUpload();
      const put = await call('PUT', `${location}?digest=${sha256(bytes)}`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
      expect(put.status).to.equal(201);
      return sha256(bytes);
    }

    it('takes a 22-byte then a 20-byte chunk, reports Range 0-21 between them, and refuses out-of-order chunks with 416', async function () {
      const blob = randomBytes(42);
      const location = await startUpload();
      const second = await call('PATCH', location, { body: blob.subarray(22), headers: { 'content-range': '22-41', 'content-type': 'application/octet-stream' } });
      expect(second.status, 'chunk 2 first').to.equal(416);
      const first = await call('PATCH', location, { body: blob.subarray(0, 22), headers: { 'content-range': '0-21', 'content-type': 'application/octet-stream' } });
      expect(first.status).to.equal(202);
      expect(first.headers.range).to.equal('0-21');
      const again = await call('PATCH', location, { body: blob.subarray(0, 22), headers: { 'content-range': '0-21', 'content-type': 'application/octet-stream' } });
      expect(again.status, 'chunk 1 again').to.equal(416);
      expect(again.headers.range).to.equal('0-21');
      const status = await call('GET', location);
      expect(status.status).to.equal(204);
      expect(status.headers.range).to.equal('0-21');
      expect((await call('PATCH', location, { body: blob.subarray(22), headers: { 'content-range': '22-41' } })).status).to.equal(202);
      const put = await call('PUT', `${location}?digest=${sha256(blob)}`);
      expect(put.status).to.equal(201);
      expect(put.headers['docker-content-digest']).to.equal(sha256(blob));
      const head = await call('HEAD', `/v2/${REPO}/blobs/${sha256(blob)}`);
      expect(head.status).to.equal(200);
      expect(head.headers['content-length']).to.equal('42');
    });

    it('accepts a streamed PATCH with no length, a final chunk on PUT, and resumes after a registry restart', async function () {
      const blob = randomBytes(6 * 1024 * 1024 + 3);
      const location = await startUpload();
      const { Readable } = await import('node:stream');
      const streamed = await call('PATCH', location, { body: Readable.from([blob.subarray(0, 3 * 1024 * 1024), blob.subarray(3 * 1024 * 1024, 5 * 1024 * 1024)]) as never });
      expect(streamed.status).to.equal(202);
      await registry.restart();
      const status = await call('GET', location);
      expect(status.headers.range).to.equal(`0-${5 * 1024 * 1024 - 1}`);
      const put = await call('PUT', `${location}?digest=${sha256(blob)}`, { body: blob.subarray(5 * 1024 * 1024), headers: { 'content-range': `${5 * 1024 * 1024}-${blob.length - 1}` } });
      expect(put.status, put.body.toString()).to.equal(201);
      const get = await call('GET', `/v2/${REPO}/blobs/${sha256(blob)}`);
      if (backend === 'fs') {
        expect(get.status).to.equal(200);
        expect(sha256(get.body)).to.equal(sha256(blob));
      } else {
        expect(get.status).to.equal(307);
        const fetched = await request(get.headers.location as string);
        expect(sha256(Buffer.from(await fetched.body.arrayBuffer()))).to.equal(sha256(blob));
      }
    });

    it('cancels an upload, after which it is unknown', async function () {
      const location = await startUpload();
      expect((await call('DELETE', location)).status).to.equal(204);
      const after = await call('GET', location);
      expect(after.status).to.equal(404);
      expect(after.json().errors?.[0]?.code).to.equal('BLOB_UPLOAD_UNKNOWN');
      expect(await registry.hold.inspect.pendingMultipartUploads()).to.equal(0);
    });

    it('pushes and pulls a manifest by tag and digest, lists tags, and serves referrers', async function () {
      const config = Buffer.from('{}');
      const layer = randomBytes(1000);
      await pushBlob(config);
      await pushBlob(layer);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
        }),
      );
      const put = await call('PUT', `/v2/${REPO}/manifests/v1`, { body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
      expect(put.status).to.equal(201);
      expect(put.headers['docker-content-digest']).to.equal(sha256(manifest));
      const byTag = await call('GET', `/v2/${REPO}/manifests/v1`, { auth: null });
      expect(byTag.status, 'anonymous pull').to.equal(200);
      expect(byTag.body.equals(manifest)).to.equal(true);
      expect(byTag.headers['content-type']).to.equal('application/vnd.oci.image.manifest.v1+json');
      const signature = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: 'application/x-signature',
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(config), size: config.length },
          layers: [],
          subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length },
        }),
      );
      const referrer = await call('PUT', `/v2/${REPO}/manifests/${sha256(signature)}`, { body: signature, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
      expect(referrer.status).to.equal(201);
      expect(referrer.headers['oci-subject']).to.equal(sha256(manifest));
      const referrers = await call('GET', `/v2/${REPO}/referrers/${sha256(manifest)}?artifactType=application/x-signature`);
      expect(referrers.headers['oci-filters-applied']).to.equal('artifactType');
      expect((JSON.parse(referrers.body.toString()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)).to.deep.equal([sha256(signature)]);
      for (const tag of ['v2', 'v3']) await call('PUT', `/v2/${REPO}/manifests/${tag}`, { body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
      const page = await call('GET', `/v2/${REPO}/tags/list?n=2`);
      expect(JSON.parse(page.body.toString())).to.deep.equal({ name: REPO, tags: ['v1', 'v2'] });
      expect(page.headers.link).to.equal(`</v2/${REPO}/tags/list?n=2&last=v2>; rel="next"`);
      expect((await call('DELETE', `/v2/${REPO}/manifests/v3`)).status).to.equal(202);
      expect((await call('GET', `/v2/${REPO}/manifests/v3`)).status).to.equal(404);
    });
  });
}
