import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { startEmbedded } from '../../src/cli/embedded.ts';
import { freePort } from '../../src/core/net.ts';
import { sha256 } from '../support/bytes.ts';
import { craneBinary, orasBinary, runTool, skopeoBinary } from '../support/clients.ts';
import { buildImage, type BuiltImage } from '../support/oci-layout.ts';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/**
 * `npm start` runs with authentication off on loopback. A web page in the
 * user's browser must not be able to use it: neither cross-site (a simple
 * POST needs no preflight) nor by DNS rebinding (its own name as `Host`).
 */
describe('attack: cross-site and DNS-rebinding requests to `npm start` (authentication off)', function () {
  this.timeout(300_000);
  let dir: string;
  let stack: Awaited<ReturnType<typeof startEmbedded>>;
  let base: string;
  let host: string;
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length }, layers: [] }),
  );

  async function call(method: string, urlPath: string, headers: Record<string, string>, body?: Buffer) {
    const response = await request(`${base}${urlPath}`, { method: method as 'GET', headers, body });
    const text = await response.body.text();
    return { status: response.statusCode, text };
  }

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-start-'));
    const port = await freePort();
    stack = await startEmbedded({ dataDir: dir, port, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
    base = `http://127.0.0.1:${port}`;
    host = `127.0.0.1:${port}`;
    expect((await call('POST', `/v2/me/app/blobs/uploads/?digest=${sha256(config)}`, {}, config)).status).to.equal(201);
    expect((await call('PUT', '/v2/me/app/manifests/v1', { 'content-type': MANIFEST_TYPE }, manifest)).status).to.equal(201);
  });
  after(async function () {
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a cross-site text/plain blob POST (403) and stores nothing', async function () {
    const blob = Buffer.from('posted by a web page');
    const response = await call('POST', `/v2/me/app/blobs/uploads/?digest=${sha256(blob)}`, { origin: 'http://evil.example', 'content-type': 'text/plain' }, blob);
    expect(response.status, response.text).to.equal(403);
    expect(JSON.parse(response.text).errors[0].code).to.equal('DENIED');
    expect((await call('HEAD', `/v2/me/app/blobs/${sha256(blob)}`, {})).status).to.equal(404);
  });

  it('refuses a rebound manifest PUT and DELETE (Host: evil.example) and changes nothing', async function () {
    const put = await call('PUT', '/v2/me/app/manifests/v2', { host: 'evil.example', 'content-type': MANIFEST_TYPE }, manifest);
    expect(put.status, put.text).to.equal(403);
    expect((await call('GET', '/v2/me/app/manifests/v2', { accept: MANIFEST_TYPE })).status).to.equal(404);
    const removed = await call('DELETE', `/v2/me/app/manifests/${sha256(manifest)}`, { host: `evil.example:${host.split(':')[1]}` });
    expect(removed.status, removed.text).to.equal(403);
    expect((await call('GET', '/v2/me/app/manifests/v1', { accept: MANIFEST_TYPE })).status).to.equal(200);
  });

  it('refuses what a browser marks cross-site, and a loopback name on another port', async function () {
    expect((await call('GET', '/v2/me/app/tags/list', { 'sec-fetch-site': 'cross-site' })).status).to.equal(403);
    expect((await call('GET', '/v2/me/app/tags/list', { origin: 'http://localhost:1' })).status).to.equal(403);
    expect((await call('GET', '/v2/me/app/tags/list', { host: 'localhost:1' })).status).to.equal(403);
    expect((await call('GET', '/v2/me/app/tags/list', { host: `localhost:${host.split(':')[1]}`, 'sec-fetch-site': 'same-origin' })).status).to.equal(200);
  });

  it('covers the web pages too: a rebound or cross-site page request and a cross-site delete form are refused', async function () {
    const page = await call('GET', '/ui/r/me/app', {});
    expect(page.status).to.equal(200);
    expect(page.text).to.contain('me/app');
    expect((await call('GET', '/ui/r/me/app', { host: 'evil.example' })).status).to.equal(403);
    expect((await call('GET', '/ui/', { 'sec-fetch-site': 'cross-site' })).status).to.equal(403);
    const form = await call('POST', '/ui/r/me/app/-/delete', { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, Buffer.from('tag=v1'));
    expect(form.status, form.text).to.equal(403);
    expect((await call('GET', '/v2/me/app/manifests/v1', { accept: MANIFEST_TYPE })).status).to.equal(200);
  });

  describe('OCI clients still work', function () {
    let image: BuiltImage;

    before(async function () {
      image = await buildImage(path.join(dir, 'image'), [3 * 1024 * 1024 + 17, 10]);
    });

    it('skopeo, crane and oras push and pull', async function () {
      const skopeo = await skopeoBinary();
      await runTool(skopeo, ['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${image.dir}:${image.tag}`, `docker://${host}/me/skopeo:v1`]);
      const crane = await craneBinary();
      expect(await runTool(crane, ['digest', '--insecure', `${host}/me/skopeo:v1`])).to.equal(`${image.manifestDigest}\n`);
      await runTool(crane, ['push', '--insecure', image.dir, `${host}/me/crane:v1`]);
      const oras = await orasBinary();
      await runTool(oras, ['cp', '--from-plain-http', `${host}/me/crane:v1`, '--to-oci-layout', `${path.join(dir, 'oras-pulled')}:v1`]);
      expect(await runTool(crane, ['digest', '--insecure', `localhost:${host.split(':')[1]}/me/crane:v1`])).to.equal(`${image.manifestDigest}\n`);
    });
  });
});
