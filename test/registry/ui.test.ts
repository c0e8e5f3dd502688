import { GRANT_LIMITS } from '../../src/registry/auth/access.ts';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { openDatabase } from '../../src/metadata/db.ts';
import { sha256 } from '../support/bytes.ts';
import { DIDS } from '../support/hold-harness.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { USERS, startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';
import { cookiesOf, csrfToken, webLogin } from '../support/web-login.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const FORM = 'application/x-www-form-urlencoded';
const HOSTILE = '<script>alert(1)</script>';
const HOSTILE_URL = 'javascript:alert(document.cookie)';
const MEGABYTE_LABEL = 'x'.repeat(1024 * 1024);

/**
 * The web pages (src/registry/ui) over HTTP: what each page shows against
 * the API, and the attacks: pushed strings that try to become markup, forms
 * posted from elsewhere, a redirect after login to another site, and a
 * viewer without rights looking for what they may not see. The same pages
 * in a real browser are in test/clients/ui-browser.test.ts.
 */
for (const [backend, metadata] of [
  ['fs', 'sqlite'],
  ['s3', 'postgres'],
] as const) {
  describe(`web pages (${backend}, ${metadata})`, function () {
    this.timeout(300_000);
    let registry: TestRegistry;
    const alice = new OciTestClient(USERS.alice);
    let image: { manifest: string; config: string; bytes: number };
    let index: { digest: string; platforms: string[] };
    let referrer: string;

    const pushBlob = (repo: string, bytes: Buffer) => alice.pushBlob(registry.url, repo, bytes);

    /** By tag, or by its digest without `reference`; `body` as bytes is pushed as it is. */
    async function pushManifest(repo: string, reference: string | undefined, body: object | Buffer, mediaType = OCI_MANIFEST): Promise<string> {
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      const put = await alice.call(registry.url, repo, 'PUT', `/v2/${repo}/manifests/${reference ?? sha256(bytes)}`, { body: bytes, headers: { 'content-type': mediaType } });
      expect(put.status, put.text).to.equal(201);
      return sha256(bytes);
    }

    async function pushImage(repo: string, tag: string, config: object, layerSizes: number[]) {
      const configBytes = Buffer.from(JSON.stringify(config));
      const configDigest = await pushBlob(repo, configBytes);
      const layers = [];
      for (const size of layerSizes) layers.push({ mediaType: LAYER, digest: await pushBlob(repo, randomBytes(size)), size });
      const manifest = await pushManifest(repo, tag, {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.length },
        layers,
        annotations: { 'org.example.note': HOSTILE, 'org.example.link': HOSTILE_URL },
      });
      return { manifest, config: configDigest, bytes: configBytes.length + layerSizes.reduce((sum, size) => sum + size, 0) };
    }

    async function page(path: string, options: { cookie?: string; headers?: Record<string, string> } = {}) {
      const response = await request(`${registry.url}${path}`, { headers: { ...(options.cookie ? { cookie: options.cookie } : {}), ...options.headers } });
      const text = await response.body.text();
      return { status: response.statusCode, headers: response.headers, text };
    }

    async function post(path: string, fields: Record<string, string>, options: { cookie?: string; headers?: Record<string, string> } = {}) {
      const response = await request(`${registry.url}${path}`, {
        method: 'POST',
        body: new URLSearchParams(fields).toString(),
        headers: { 'content-type': FORM, ...(options.cookie ? { cookie: options.cookie } : {}), ...options.headers },
      });
      const text = await response.body.text();
      return { status: response.statusCode, headers: response.headers, text };
    }

    const login = (user: { username: string; password: string }) => webLogin(registry.url, user);

    async function apiStatus(repo: string, reference: string): Promise<number> {
      return (await alice.call(registry.url, repo, 'GET', `/v2/${repo}/manifests/${reference}`, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } })).status;
    }

    before(async function () {
      registry = await startTestRegistry({ backend, metadata, policies: { immutableTags: [{ repositories: 'alice/app', tags: ['v*'] }] } });
      image = await pushImage(
        'alice/app',
        'v1',
        {
          architecture: 'amd64',
          os: 'linux',
          created: '2026-01-02T03:04:05Z',
          config: {
            Entrypoint: ['/bin/app', HOSTILE],
            Cmd: ['--serve'],
            Env: ['PATH=/usr/bin', `EVIL=${HOSTILE}`],
            Labels: { 'org.opencontainers.image.source': HOSTILE_URL, 'org.example.script': HOSTILE, 'org.example.huge': MEGABYTE_LABEL, [`${HOSTILE}-key`]: 'v' },
          },
          history: [{ created: '2026-01-02T03:04:05Z', created_by: `RUN echo "${HOSTILE}"` }],
          rootfs: { type: 'layers', diff_ids: [] },
        },
        [1000, 2000],
      );
      await pushManifest('alice/app', 'latest', await manifestBody('alice/app', image.manifest));
      const amd = await pushImage('alice/multi', 'amd64-only', { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }, [3000]);
      const arm = await pushImage('alice/multi', 'arm64-only', { architecture: 'arm64', os: 'linux', variant: 'v8', rootfs: { type: 'layers', diff_ids: [] } }, [5000]);
      const entry = async (digest: string, platform: object) => ({ mediaType: OCI_MANIFEST, digest, size: (await manifestBody('alice/multi', digest)).length, platform });
      index = {
        digest: await pushManifest(
          'alice/multi',
          'v2',
          { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [await entry(amd.manifest, { os: 'linux', architecture: 'amd64' }), await entry(arm.manifest, { os: 'linux', architecture: 'arm64', variant: 'v8' })] },
          OCI_INDEX,
        ),
        platforms: [amd.manifest, arm.manifest],
      };
      const empty = Buffer.from('{}');
      const emptyDigest = await pushBlob('alice/multi', empty);
      referrer = await pushManifest('alice/multi', undefined, {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/spdx+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 }],
        subject: { mediaType: OCI_INDEX, digest: index.digest, size: (await manifestBody('alice/multi', index.digest)).length },
      });
    });
    after(async function () {
      await registry?.close();
    });

    async function manifestBody(repo: string, digest: string): Promise<Buffer> {
      const response = await alice.call(registry.url, repo, 'GET', `/v2/${repo}/manifests/${digest}`, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
      expect(response.status).to.equal(200);
      return Buffer.from(response.text);
    }

    it('home lists the repositories by owner, with the DID, and searches names and tags', async function () {
      const home = await page('/ui/');
      expect(home.status).to.equal(200);
      expect(home.headers['content-type']).to.match(/^text\/html/);
      expect(home.text).to.contain('href="/ui/r/alice/app"').and.contain('href="/ui/r/alice/multi"').and.contain(DIDS.owner);
      const byName = await page('/ui/?q=mult');
      expect(byName.text).to.contain('/ui/r/alice/multi').and.not.contain('href="/ui/r/alice/app"');
      const byTag = await page('/ui/?q=arm64');
      expect(byTag.text).to.contain('Tags starting with').and.contain('arm64-only');
    });

    it('the repository page shows tags with digest, size, platforms per platform and pull commands', async function () {
      const multi = await page('/ui/r/alice/multi');
      expect(multi.status).to.equal(200);
      expect(multi.text).to.contain('>v2<').and.contain('linux/amd64').and.contain('linux/arm64/v8');
      // The index's own size is both platforms' blobs; each badge carries its platform's.
      expect(multi.text).to.match(/linux\/arm64\/v8 · <span title="5,[0-9]{3} bytes">/);
      expect(multi.text).to.contain(`docker pull ${new URL(registry.url).host}/alice/multi:`);
      const app = await page('/ui/r/alice/app');
      // The image's total: config + two layers.
      expect(app.text).to.contain('>v1<').and.contain('>latest<').and.contain(`title="${image.bytes.toLocaleString('en-US')} bytes"`);
    });

    it('the manifest page shows config, layers, history, annotations and referrers, with every pushed string escaped', async function () {
      const shown = await page(`/ui/r/alice/app/-/manifests/${image.manifest}`);
      expect(shown.status).to.equal(200);
      expect(shown.text).to.not.contain(HOSTILE);
      expect(shown.text).to.contain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(shown.text).to.not.match(/href="javascript:/i);
      expect(shown.text).to.contain('linux/amd64').and.contain('/bin/app').and.contain('PATH=/usr/bin').and.contain('RUN echo');
      // The 1 MiB label is cut, not drawn whole.
      expect(shown.text.length).to.be.below(64 * 1024);
      expect(shown.text).to.contain('more characters');
      expect(shown.headers['content-security-policy']).to.contain("frame-ancestors 'none'").and.contain("script-src 'self'").and.not.contain('unsafe-inline');
      expect(shown.headers['x-content-type-options']).to.equal('nosniff');

      const indexPage = await page(`/ui/r/alice/multi/-/manifests/${index.digest}`);
      for (const platform of index.platforms) expect(indexPage.text).to.contain(`href="/ui/r/alice/multi/-/manifests/${encodeURIComponent(platform)}"`);
      expect(indexPage.text).to.contain('application/spdx+json').and.contain(encodeURIComponent(referrer));
      const referrerPage = await page(`/ui/r/alice/multi/-/manifests/${referrer}`);
      expect(referrerPage.text).to.contain('Subject').and.contain(encodeURIComponent(index.digest));
    });

    it('serves its script and stylesheet as files, and adds no page headers to /v2/', async function () {
      const home = await page('/ui/');
      const assets = [...home.text.matchAll(/(?:href|src)="(\/ui\/static\/[^"]+)"/g)].map((match) => match[1] as string);
      expect(assets).to.have.length(2);
      for (const asset of assets) {
        const response = await page(asset);
        expect(response.status).to.equal(200);
        expect(response.headers['cache-control']).to.contain('immutable');
      }
      expect(home.text).to.not.match(/<script>|<style|style="|onclick=/);
      const api = await request(`${registry.url}/v2/`);
      await api.body.dump();
      expect(api.headers['content-security-policy']).to.equal(undefined);
    });

    it('login sets an HttpOnly SameSite=Strict session, refuses a wrong password, and never redirects off the site', async function () {
      const form = await page('/ui/login');
      const cookie = cookiesOf(form.headers);
      const wrong = await post('/ui/login', { csrf: csrfToken(form.text), username: 'alice', password: 'nope', next: '/ui/' }, { cookie });
      expect(wrong.status).to.equal(401);
      expect(wrong.text).to.contain('Wrong user name or password');
      for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', '/ui//evil.example', 'javascript:alert(1)']) {
        const response = await post('/ui/login', { csrf: csrfToken(form.text), username: 'alice', password: USERS.alice.password, next }, { cookie });
        expect(response.status).to.equal(303);
        expect(response.headers.location, next).to.equal('/ui/');
      }
      const ok = await post('/ui/login', { csrf: csrfToken(form.text), username: 'alice', password: USERS.alice.password, next: '/ui/storage' }, { cookie });
      expect(ok.headers.location).to.equal('/ui/storage');
      const session = ([ok.headers['set-cookie']].flat() as string[]).find((line) => line.startsWith('hf_session='));
      expect(session).to.match(/HttpOnly/).and.match(/SameSite=Strict/).and.match(/Path=\/ui/);
      const without = await post('/ui/login', { username: 'alice', password: USERS.alice.password, next: '/ui/' }, { cookie });
      expect(without.status).to.equal(403);
    });

    it('a tampered session is no session', async function () {
      const cookie = await login(USERS.alice);
      const forged = cookie.replace(/hf_session=([^.;]+)\.([^;]+)/, (_all, payload: string) => {
        const parsed = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { u: string };
        return `hf_session=${Buffer.from(JSON.stringify({ ...parsed, u: 'bob' })).toString('base64url')}.AAAA`;
      });
      const storage = await page('/ui/storage', { cookie: forged });
      expect(storage.status).to.equal(303);
    });

    it('the storage page counts unique bytes once and each repository, with the hold and GC', async function () {
      const cookie = await login(USERS.alice);
      const storage = await page('/ui/storage', { cookie });
      expect(storage.status).to.equal(200);
      expect(storage.text).to.contain('alice/app').and.contain('alice/multi').and.contain('add up to more than the total');
      expect(storage.text).to.contain(registry.hold.url);
      expect(storage.text).to.contain('Garbage collection is off');
      expect((await page('/ui/storage')).status, 'anonymous').to.equal(303);
    });

    it('delete needs the owner, a same-site form and its CSRF token; an immutable tag stays', async function () {
      await pushManifest('alice/app', 'scratch', await manifestBody('alice/app', image.manifest));
      const owner = await login(USERS.alice);
      const confirm = await page('/ui/r/alice/app/-/delete?tag=scratch', { cookie: owner });
      expect(confirm.status).to.equal(200);
      expect(confirm.text).to.contain('Garbage collection');
      const token = csrfToken(confirm.text);

      expect((await post('/ui/r/alice/app/-/delete', { tag: 'scratch' }, { cookie: owner })).status, 'no token').to.equal(403);
      expect((await post('/ui/r/alice/app/-/delete', { tag: 'scratch', csrf: token })).status, 'no cookie').to.equal(403);
      expect((await post('/ui/r/alice/app/-/delete', { tag: 'scratch', csrf: token }, { cookie: owner, headers: { 'sec-fetch-site': 'cross-site' } })).status, 'cross-site').to.equal(403);
      expect((await post('/ui/r/alice/app/-/delete', { tag: 'scratch', csrf: token }, { cookie: owner, headers: { origin: 'http://evil.example' } })).status, 'other origin').to.equal(403);
      const bob = await login(USERS.bob);
      const bobsView = await page('/ui/r/alice/app', { cookie: bob });
      expect(bobsView.text).to.not.contain('/-/delete');
      expect((await post('/ui/r/alice/app/-/delete', { tag: 'scratch', csrf: csrfToken(bobsView.text) }, { cookie: bob })).status, 'not the owner').to.equal(403);
      expect(await apiStatus('alice/app', 'scratch')).to.equal(200);
      // A push grant is not a delete grant, here as in the API.
      await registry.registry.accounts.grant('repository', 'alice/app', 'bob', 'push', GRANT_LIMITS);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const grantedView = await page('/ui/r/alice/app', { cookie: bob });
      expect(grantedView.text).to.not.contain('/-/delete');
      expect((await post('/ui/r/alice/app/-/delete', { tag: 'scratch', csrf: csrfToken(grantedView.text) }, { cookie: bob })).status, 'granted push').to.equal(403);
      expect(await apiStatus('alice/app', 'scratch')).to.equal(200);
      await registry.registry.accounts.revokeGrant('repository', 'alice/app', 'bob');

      const immutable = await post('/ui/r/alice/app/-/delete', { tag: 'v1', csrf: token }, { cookie: owner });
      expect(immutable.status).to.equal(403);
      expect(immutable.text).to.contain('immutable');
      expect(await apiStatus('alice/app', 'v1')).to.equal(200);

      const done = await post('/ui/r/alice/app/-/delete', { tag: 'scratch', csrf: token }, { cookie: owner });
      expect(done.status, done.text).to.equal(303);
      expect(await apiStatus('alice/app', 'scratch')).to.equal(404);
      expect(await apiStatus('alice/app', 'latest')).to.equal(200);
    });

    it('the owner deletes a manifest by digest: its tags go with it, after a confirmation that names them', async function () {
      const body = JSON.parse((await manifestBody('alice/app', image.manifest)).toString()) as Record<string, unknown>;
      const doomed = await pushManifest('alice/app', 'doomed', { ...body, annotations: { purpose: 'to be deleted' } });
      const owner = await login(USERS.alice);
      const confirm = await page(`/ui/r/alice/app/-/delete?digest=${doomed}`, { cookie: owner });
      expect(confirm.text).to.contain('<code>doomed</code>').and.contain('Pulls by digest will fail');
      const done = await post('/ui/r/alice/app/-/delete', { digest: doomed, csrf: csrfToken(confirm.text) }, { cookie: owner });
      expect(done.status, done.text).to.equal(303);
      expect(await apiStatus('alice/app', doomed)).to.equal(404);
      expect(await apiStatus('alice/app', 'doomed')).to.equal(404);
      expect((await post('/ui/r/alice/app/-/delete', { digest: doomed, csrf: csrfToken(confirm.text) }, { cookie: owner })).status, 'already gone').to.equal(404);
    });

    it('pages tags by name and newest first at 50 a page', async function () {
      const body = await manifestBody('alice/app', image.manifest);
      await mountImage('alice/app', 'alice/paged', JSON.parse(body.toString()) as { config: { digest: string }; layers: { digest: string }[] });
      for (let i = 0; i < 60; i++) await pushManifest('alice/paged', `t${String(i).padStart(3, '0')}`, body);
      const first = await page('/ui/r/alice/paged');
      expect(first.text).to.contain('>t000<').and.contain('>t049<').and.not.contain('>t050<');
      const next = /href="([^"]+)" rel="next"/.exec(first.text)?.[1]?.replace(/&amp;/g, '&');
      const second = await page(next as string);
      expect(second.text).to.contain('>t050<').and.contain('>t059<').and.not.contain('>t049<');
      const newest = await page('/ui/r/alice/paged?sort=pushed');
      expect(newest.text.indexOf('>t059<')).to.be.greaterThan(0).and.below(newest.text.indexOf('>t010<'));
      expect(newest.text).to.not.contain('>t009<');
      const older = await page((/href="([^"]+)" rel="next"/.exec(newest.text)?.[1] ?? '').replace(/&amp;/g, '&'));
      expect(older.text).to.contain('>t009<').and.contain('>t000<').and.not.contain('>t010<');
    });

    async function mountImage(from: string, to: string, manifest: { config: { digest: string }; layers: { digest: string }[] }): Promise<void> {
      for (const digest of [manifest.config.digest, ...manifest.layers.map((layer) => layer.digest)]) {
        const response = await alice.call(registry.url, to, 'POST', `/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`);
        expect(response.status, response.text).to.equal(201);
      }
    }

    it('an index of more manifests than a row summarises shows their count, not a badge each', async function () {
      const body = JSON.parse((await manifestBody('alice/app', image.manifest)).toString()) as Record<string, unknown>;
      await mountImage('alice/app', 'alice/wide', body as { config: { digest: string }; layers: { digest: string }[] });
      const entries = [];
      for (let i = 0; i < 70; i++) {
        const bytes = Buffer.from(JSON.stringify({ ...body, annotations: { n: String(i) } }));
        entries.push({ mediaType: OCI_MANIFEST, digest: await pushManifest('alice/wide', undefined, bytes), size: bytes.length, platform: { os: 'linux', architecture: `arch${i}` } });
      }
      await pushManifest('alice/wide', 'wide', { schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }, OCI_INDEX);
      const repository = await page('/ui/r/alice/wide');
      expect(repository.status).to.equal(200);
      expect(repository.text).to.contain('70 manifests').and.not.contain('linux/arch0');
      const indexPage = await page(`/ui/r/alice/wide/-/manifests/${sha256(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries })))}`);
      expect(indexPage.status).to.equal(200);
      expect(indexPage.text).to.contain('linux/arch69');
    });

    it('a control character in the address is a 400, never a database error', async function () {
      for (const path of ['/ui/?q=%00', '/ui/?after=%00', '/ui/r/alice/app?sort=pushed&after=v1&at=%00', '/ui/r/alice/app?q=%01']) {
        const response = await page(path);
        expect(response.status, path).to.equal(400);
      }
      const cookie = await login(USERS.alice);
      expect((await page('/ui/storage?after=%00', { cookie })).status).to.equal(400);
    });

    it('unknown and invalid repositories and digests get a 404 page, never a 500', async function () {
      for (const path of ['/ui/r/nobody/here', '/ui/r/UPPER/case', '/ui/r/alice/app/-/manifests/sha256:zz', `/ui/r/alice/app/-/manifests/${sha256(Buffer.from('none'))}`, '/ui/r/alice/app/-/nothing', '/ui/nope']) {
        const response = await page(path);
        expect(response.status, path).to.equal(404);
        expect(response.headers['content-type']).to.match(/^text\/html/);
      }
    });
  });
}

describe('web login under the login throttle', function () {
  this.timeout(300_000);
  let registry: TestRegistry;

  before(async function () {
    registry = await startTestRegistry({ backend: 'fs', login: { failuresPerUser: 3 } });
  });
  after(async function () {
    await registry?.close();
  });

  it('refuses further logins for a user with 429 after the failures the throttle allows, the right password included', async function () {
    const form = await request(`${registry.url}/ui/login`);
    const text = await form.body.text();
    const cookie = cookiesOf(form.headers);
    const attempt = async (password: string) => {
      const response = await request(`${registry.url}/ui/login`, {
        method: 'POST',
        headers: { 'content-type': FORM, cookie },
        body: new URLSearchParams({ csrf: csrfToken(text), username: 'bob', password, next: '/ui/' }).toString(),
      });
      return { status: response.statusCode, retryAfter: response.headers['retry-after'], text: await response.body.text() };
    };
    for (let i = 0; i < 3; i++) expect((await attempt('wrong')).status).to.equal(401);
    const refused = await attempt(USERS.bob.password);
    expect(refused.status).to.equal(429);
    expect(Number(refused.retryAfter)).to.be.greaterThan(0);
    expect(refused.text).to.contain('Too many attempts');
  });
});

describe('web pages with anonymous pull off', function () {
  this.timeout(300_000);
  let registry: TestRegistry;

  before(async function () {
    registry = await startTestRegistry({ backend: 'fs', anonymousPull: false });
    const alice = new OciTestClient(USERS.alice);
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    await alice.pushBlob(registry.url, 'alice/secret-name', config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length }, layers: [] }));
    expect((await alice.call(registry.url, 'alice/secret-name', 'PUT', '/v2/alice/secret-name/manifests/secret-tag', { body: manifest, headers: { 'content-type': OCI_MANIFEST } })).status).to.equal(201);
  });
  after(async function () {
    await registry?.close();
  });

  it('an anonymous viewer finds nothing: not on the home page, in search, by address or in storage', async function () {
    for (const path of ['/ui/', '/ui/?q=secret', '/ui/?q=secret-tag']) {
      const response = await request(`${registry.url}${path}`);
      const text = await response.body.text();
      // What the viewer typed comes back in the search box and the title; no hit may.
      expect(text, path).to.not.contain('secret-name').and.not.contain('>secret-tag</a>').and.not.contain('Tags starting with');
    }
    // By address, the answer is the one for a name that does not exist.
    for (const path of ['/ui/r/alice/secret-name', '/ui/r/alice/secret-name/-/delete?tag=secret-tag', `/ui/r/alice/secret-name/-/manifests/${sha256(Buffer.from('x'))}`]) {
      const [real, absent] = await Promise.all([path, path.replace('secret-name', 'absent-name')].map(async (url) => {
        const response = await request(`${registry.url}${url}`);
        return { status: response.statusCode, text: (await response.body.text()).replaceAll(/secret-name|absent-name/g, 'NAME') };
      }));
      expect(real, path).to.deep.equal(absent);
      expect(real?.status).to.equal(404);
    }
    const storage = await request(`${registry.url}/ui/storage`);
    await storage.body.dump();
    expect(storage.statusCode).to.equal(303);
  });

  it('pages through more repositories than one request reads without putting an unseen name in a link', async function () {
    const db = await openDatabase({ kind: 'sqlite', path: registry.databasePath as string });
    try {
      const names = Array.from({ length: 1100 }, (_, i) => `alice/hidden-${String(i).padStart(4, '0')}`);
      await db.run(`INSERT INTO repositories (name, created_at) VALUES ${names.map(() => '(?, ?)').join(', ')}`, names.flatMap((name) => [name, new Date().toISOString()]));
    } finally {
      await db.close();
    }
    const response = await request(`${registry.url}/ui/`);
    const text = await response.body.text();
    expect(text).to.not.contain('hidden-').and.not.contain('after=');
  });
});
