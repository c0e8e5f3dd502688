import { GRANT_LIMITS, VISIBILITY_LIMITS } from '../../src/registry/auth/access.ts';
import { expect } from 'chai';
import { request } from 'undici';
import { createAccessToken } from '../../src/registry/auth/access-tokens.ts';
import { sha256 } from '../support/bytes.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';
import { csrfToken, webLogin } from '../support/web-login.ts';

const basic = (username: string, password: string) => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What a caller learns from one request: status, the headers that carry meaning, and the body. */
async function probe(url: string, method: string, authorization: string | undefined): Promise<Answer> {
  const response = await request(url, { method: method as 'GET', headers: { ...(authorization ? { authorization } : {}), accept: OCI_MANIFEST } });
  const body = await response.body.text();
  const headers: Record<string, string> = {};
  for (const name of ['content-type', 'content-length', 'www-authenticate', 'link', 'location', 'docker-content-digest', 'oci-filters-applied']) {
    const value = response.headers[name];
    if (value !== undefined) headers[name] = String(value);
  }
  if (headers.location) headers.location = headers.location.replace(/\/uploads\/.+$/, '/uploads/<upload>');
  return { status: response.statusCode, headers, body };
}

/** Pushes a tiny image (a config blob, a manifest tagged `tag`) and a referrer to it, as alice; returns the digests. */
async function pushImage(base: string, repository: string, tag: string): Promise<{ blob: string; manifest: string; referrer: string }> {
  const client = new OciTestClient(USERS.alice);
  const config = Buffer.from(`{"secret":"${repository}"}`);
  const blob = await client.pushBlob(base, repository, config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blob, size: config.length }, layers: [] }));
  const put = await client.call(base, repository, 'PUT', `/v2/${repository}/manifests/${tag}`, { body: manifest, headers: { 'content-type': OCI_MANIFEST } });
  expect(put.status, put.text).to.equal(201);
  const referrer = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/spdx+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: blob, size: config.length }, layers: [], subject: { mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length } }),
  );
  const putReferrer = await client.call(base, repository, 'PUT', `/v2/${repository}/manifests/${sha256(referrer)}`, { body: referrer, headers: { 'content-type': OCI_MANIFEST } });
  expect(putReferrer.status, putReferrer.text).to.equal(201);
  return { blob, manifest: sha256(manifest), referrer: sha256(referrer) };
}

/** A registry token for `scope`, with Basic credentials or none. */
async function registryToken(base: string, scope: string, authorization?: string): Promise<string> {
  const response = await request(`${base}/auth/token?service=holdfast-test&scope=${encodeURIComponent(scope)}`, { headers: authorization ? { authorization } : {} });
  expect(response.statusCode).to.equal(200);
  return ((await response.body.json()) as { token: string }).token;
}

for (const metadata of ['sqlite', 'postgres'] as const) {
  describe(`private repositories (${metadata}${metadata === 'postgres' ? ', two instances' : ''})`, function () {
    this.timeout(120_000);
    let registry: TestRegistry;
    let other: string;
    let secret: { blob: string; manifest: string; referrer: string };

    before(async function () {
      registry = await startTestRegistry({ backend: 'fs', metadata, login: { failuresPerAddress: 1000, failuresPerUser: 1000 }, ...(metadata === 'postgres' ? { instances: 2 } : {}) });
      other = registry.urls.at(-1) as string;
      secret = await pushImage(registry.url, 'alice/secret', 'v1');
      await pushImage(registry.url, 'alice/open', 'v1');
      await registry.registry.accounts.setVisibility('repository', 'alice/secret', true, VISIBILITY_LIMITS);
      // Every instance learns of it within a second.
      for (const base of registry.urls) await eventually(async () => (await probe(`${base}/v2/alice/secret/tags/list`, 'GET', undefined)).status === 404);
    });
    after(async function () {
      await registry?.close();
    });

    /** Each request a caller without pull might try, by where it goes. */
    const routes = (repository: string) => [
      ['GET', `/v2/${repository}/manifests/v1`],
      ['HEAD', `/v2/${repository}/manifests/v1`],
      ['GET', `/v2/${repository}/manifests/${secret.manifest}`],
      ['HEAD', `/v2/${repository}/manifests/${secret.manifest}`],
      ['GET', `/v2/${repository}/blobs/${secret.blob}`],
      ['HEAD', `/v2/${repository}/blobs/${secret.blob}`],
      ['GET', `/v2/${repository}/tags/list`],
      ['GET', `/v2/${repository}/tags/list?n=1`],
      ['GET', `/v2/${repository}/referrers/${secret.manifest}`],
      ['GET', `/v2/${repository}/referrers/${secret.manifest}?artifactType=application/spdx%2Bjson`],
      ['DELETE', `/v2/${repository}/manifests/v1`],
      ['DELETE', `/v2/${repository}/blobs/${secret.blob}`],
      ['POST', `/v2/${repository}/blobs/uploads/`],
      ['POST', `/v2/bob/app/blobs/uploads/?mount=${secret.blob}&from=${repository}`],
      ['POST', `/v2/bob/app/blobs/uploads/?mount=${secret.blob}`],
    ] as const;

    const callers = async (): Promise<[string, (repository: string, action: string) => Promise<string | undefined>][]> => {
      const bobsToken = await createAccessToken(registry.registry.accounts, { owner: 'bob', name: 'reads everything', repositories: ['**'], actions: ['pull', 'push'] });
      const alicesPushOnly = await createAccessToken(registry.registry.accounts, { owner: 'alice', name: 'push only', repositories: ['alice/**'], actions: ['push'] });
      return [
        ['anonymous, no credentials', async () => undefined],
        ['anonymous, with a registry token', async (repository) => `Bearer ${await registryToken(registry.url, `repository:${repository}:pull,push repository:bob/app:pull,push`)}`],
        ['anonymous, with a registry token for other names', async () => `Bearer ${await registryToken(registry.url, 'repository:bob/app:pull,push')}`],
        ['bob, with a registry token for other names', async () => `Bearer ${await registryToken(registry.url, 'repository:bob/app:pull,push', basic('bob', USERS.bob.password))}`],
        ['bob, Basic', async () => basic('bob', USERS.bob.password)],
        ['bob, registry token', async (repository) => `Bearer ${await registryToken(registry.url, `repository:${repository}:pull,push,delete repository:bob/app:pull,push`, basic('bob', USERS.bob.password))}`],
        ["bob's access token for **", async () => basic('bob', bobsToken.secret)],
        ["alice's access token without pull", async () => basic('alice', alicesPushOnly.secret)],
      ];
    };

    it('answers every route, for every caller without pull, exactly as for a repository that does not exist', async function () {
      const normalize = (answer: Answer) => JSON.parse(JSON.stringify(answer).replaceAll('alice/secret', 'alice/absent')) as Answer;
      let compared = 0;
      for (const [caller, authorization] of await callers()) {
        for (const base of registry.urls) {
          for (const [index, [method, path]] of routes('alice/secret').entries()) {
            const absentPath = (routes('alice/absent')[index] as readonly [string, string])[1];
            const hidden = await probe(`${base}${path}`, method, await authorization('alice/secret', method));
            const absent = await probe(`${base}${absentPath}`, method, await authorization('alice/absent', method));
            expect(normalize(hidden), `${caller}: ${method} ${path}`).to.deep.equal(absent);
            for (const digest of [secret.blob, secret.manifest, secret.referrer]) if (!path.includes(digest)) expect(hidden.body, `${caller}: ${method} ${path}`).not.to.include(digest);
            expect(hidden.status, `${caller}: ${method} ${path}`).not.to.be.oneOf([201, 307, 500]);
            if (hidden.status === 200) expect(hidden.body, 'only the referrers API answers 200, with nothing in it').to.include('"manifests":[]');
            compared++;
          }
        }
      }
      expect(compared).to.equal(8 * registry.urls.length * routes('x').length);
      expect(await registry.registry.metadata.getBlob('bob/app', secret.blob), 'no mount linked the blob').to.equal(undefined);
    });

    it('the web pages neither list nor find it, and its pages answer as for a repository that does not exist', async function () {
      const page = async (path: string, cookie?: string) => {
        const response = await request(`${other}${path}`, { headers: cookie ? { cookie } : {} });
        return { status: response.statusCode, body: (await response.body.text()).replaceAll(/name="csrf" value="[^"]*"/g, '') };
      };
      for (const cookie of [undefined, await webLogin(other, USERS.bob)]) {
        for (const path of ['/ui/', '/ui/?q=secret', '/ui/?q=v1', '/ui/?q=alice', '/ui/storage']) expect((await page(path, cookie)).body, path).not.to.include('alice/secret');
        const hidden = await page('/ui/r/alice/secret', cookie);
        const absent = await page('/ui/r/alice/absent', cookie);
        expect({ ...hidden, body: hidden.body.replaceAll('alice/secret', 'alice/absent') }).to.deep.equal(absent);
        const manifest = await page(`/ui/r/alice/secret/-/manifests/${secret.manifest}`, cookie);
        expect(manifest.status).to.equal(404);
        expect(manifest.body).not.to.include(secret.blob);
      }
      const alice = await webLogin(other, USERS.alice);
      expect((await page('/ui/?q=secret', alice)).body).to.include('alice/secret');
      expect((await page('/ui/r/alice/secret', alice)).status).to.equal(200);
    });

    it('is left out of the catalog, and no page or Link names it; its owner sees it', async function () {
      const list = async (authorization: string | undefined, n?: number) => {
        const names: string[] = [];
        let next: string | undefined = `/v2/_catalog${n ? `?n=${n}` : ''}`;
        while (next) {
          const response = await request(`${other}${next}`, { headers: authorization ? { authorization } : {} });
          const { repositories } = (await response.body.json()) as { repositories: string[] };
          names.push(...repositories);
          const link = response.headers.link as string | undefined;
          if (link) expect(link).not.to.include('secret');
          next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
        }
        return names;
      };
      for (const n of [undefined, 1]) {
        expect(await list(undefined, n), 'anonymous').to.deep.equal(['alice/open']);
        expect(await list(basic('bob', USERS.bob.password), n), 'bob').to.deep.equal(['alice/open']);
        expect(await list(basic('alice', USERS.alice.password), n), 'alice').to.deep.equal(['alice/open', 'alice/secret']);
      }
    });

    it('its owner pulls it; a pull grant lets bob pull and not push, a push grant push, and taking it back hides it again on every instance', async function () {
      expect((await probe(`${other}/v2/alice/secret/manifests/v1`, 'GET', basic('alice', USERS.alice.password))).status).to.equal(200);
      const bob = basic('bob', USERS.bob.password);
      await registry.registry.accounts.grant('repository', 'alice/secret', 'bob', 'pull', GRANT_LIMITS);
      await eventually(async () => (await probe(`${other}/v2/alice/secret/manifests/v1`, 'GET', bob)).status === 200);
      expect((await probe(`${other}/v2/alice/secret/blobs/${secret.blob}`, 'HEAD', bob)).status).to.equal(200);
      expect((await probe(`${other}/v2/alice/secret/blobs/uploads/`, 'POST', bob)).status).to.equal(403);
      const catalog = (await (await request(`${other}/v2/_catalog`, { headers: { authorization: bob } })).body.json()) as { repositories: string[] };
      expect(catalog.repositories).to.include('alice/secret');

      await registry.registry.accounts.grant('namespace', 'alice', 'bob', 'push', GRANT_LIMITS);
      await eventually(async () => (await probe(`${other}/v2/alice/secret/blobs/uploads/`, 'POST', bob)).status === 202);
      expect((await probe(`${other}/v2/alice/secret/manifests/v1`, 'DELETE', bob)).status, 'delete stays the owner\'s').to.equal(403);

      await registry.registry.accounts.revokeGrant('namespace', 'alice', 'bob');
      await registry.registry.accounts.revokeGrant('repository', 'alice/secret', 'bob');
      for (const base of registry.urls) await eventually(async () => (await probe(`${base}/v2/alice/secret/manifests/v1`, 'GET', bob)).status === 404);
    });

    it('a whole namespace made private hides every repository in it; auth.defaultVisibility private hides what nobody opened', async function () {
      await registry.registry.accounts.setVisibility('namespace', 'alice', true, VISIBILITY_LIMITS);
      await eventually(async () => (await probe(`${other}/v2/alice/open/manifests/v1`, 'GET', undefined)).status === 404);
      expect((await probe(`${other}/v2/alice/open/manifests/v1`, 'GET', basic('alice', USERS.alice.password))).status).to.equal(200);
      // A repository row opens one repository of a private namespace.
      await registry.registry.accounts.setVisibility('repository', 'alice/open', false, VISIBILITY_LIMITS);
      await eventually(async () => (await probe(`${other}/v2/alice/open/manifests/v1`, 'GET', undefined)).status === 200);
      await registry.registry.accounts.setVisibility('namespace', 'alice', undefined, VISIBILITY_LIMITS);
      await registry.registry.accounts.setVisibility('repository', 'alice/open', undefined, VISIBILITY_LIMITS);

      const closed = await startTestRegistry({ backend: 'fs', metadata: 'sqlite', auth: { defaultVisibility: 'private' } });
      try {
        await pushImage(closed.url, 'alice/app', 'v1');
        expect((await probe(`${closed.url}/v2/alice/app/manifests/v1`, 'GET', undefined)).status).to.equal(404);
        expect((await probe(`${closed.url}/v2/alice/app/manifests/v1`, 'GET', basic('bob', USERS.bob.password))).status).to.equal(404);
        expect((await probe(`${closed.url}/v2/alice/app/manifests/v1`, 'GET', basic('alice', USERS.alice.password))).status).to.equal(200);
        const anonymous = (await (await request(`${closed.url}/v2/_catalog`)).body.json()) as { repositories: string[] };
        expect(anonymous.repositories).to.deep.equal([]);
      } finally {
        await closed.close();
      }
    });

    it('grants are bounded per namespace, so no owner can grow another user\'s catalog query without end', async function () {
      for (let index = 0; index < GRANT_LIMITS.perNamespace; index++) await registry.registry.accounts.grant('repository', `carol/r${index}`, 'bob', 'pull', GRANT_LIMITS);
      const refused = await request(`${other}/auth/access?name=carol/one-more`, {
        method: 'PATCH',
        headers: { authorization: basic('carol', USERS.carol.password), 'content-type': 'application/json' },
        body: JSON.stringify({ visibility: 'private', grants: { bob: 'pull' } }),
      });
      const body = (await refused.body.json()) as { errors: { code: string; message: string }[] };
      expect([refused.statusCode, body.errors[0]?.code]).to.deep.equal([400, 'REQUEST_INVALID']);
      expect(body.errors[0]?.message).to.match(/^carol has 256 grants already/);
      expect((await registry.registry.accounts.visibility(['carol/one-more'])).length, 'the refused change set nothing').to.equal(0);
      // Re-granting what exists is not a new grant.
      expect(await registry.registry.accounts.grant('repository', 'carol/r0', 'bob', 'push', GRANT_LIMITS)).to.equal(true);
      for (let index = 0; index < GRANT_LIMITS.perNamespace; index++) await registry.registry.accounts.revokeGrant('repository', `carol/r${index}`, 'bob');
    });

    it('visibility settings are bounded per namespace, so no owner can grow every instance\'s rules, or a catalog walk\'s stops, without end', async function () {
      // Rows for names that need not exist, as /auth/access allows in one's own namespace.
      for (let index = 0; index < VISIBILITY_LIMITS.perNamespace; index++) await registry.registry.accounts.setVisibility('repository', `carol/v${index}`, index % 2 === 0, VISIBILITY_LIMITS);
      const refused = await request(`${other}/auth/access?name=carol/one-more`, {
        method: 'PATCH',
        headers: { authorization: basic('carol', USERS.carol.password), 'content-type': 'application/json' },
        body: JSON.stringify({ visibility: 'public' }),
      });
      const body = (await refused.body.json()) as { errors: { code: string; message: string }[] };
      expect([refused.statusCode, body.errors[0]?.code]).to.deep.equal([400, 'REQUEST_INVALID']);
      expect(body.errors[0]?.message).to.match(/^carol has 4096 visibility settings already/);
      expect((await registry.registry.accounts.visibility(['carol/one-more'])).length, 'the refused change set nothing').to.equal(0);
      // Changing a setting that exists, or going back to inherit, is not a new row.
      await registry.registry.accounts.setVisibility('repository', 'carol/v0', false, VISIBILITY_LIMITS);
      for (let index = 0; index < VISIBILITY_LIMITS.perNamespace; index++) await registry.registry.accounts.setVisibility('repository', `carol/v${index}`, undefined, VISIBILITY_LIMITS);
      expect(await registry.registry.accounts.visibility(['carol/v0'])).to.deep.equal([]);
    });

    it('with anonymousPull off, anonymous callers are challenged alike for a private repository and a missing one', async function () {
      const closed = await startTestRegistry({ backend: 'fs', metadata: 'sqlite', anonymousPull: false });
      try {
        await pushImage(closed.url, 'alice/secret', 'v1');
        await closed.registry.accounts.setVisibility('repository', 'alice/secret', true, VISIBILITY_LIMITS);
        await eventually(async () => (await probe(`${closed.url}/v2/alice/secret/tags/list`, 'GET', basic('bob', USERS.bob.password))).status === 404);
        for (const anonymousToken of [false, true]) {
          for (const [method, path] of [['GET', '/v2/NAME/manifests/v1'], ['HEAD', `/v2/NAME/blobs/${secret.blob}`], ['GET', '/v2/NAME/tags/list']] as const) {
            const authorization = async (name: string) => (anonymousToken ? `Bearer ${await registryToken(closed.url, `repository:${name}:pull`)}` : undefined);
            const hidden = await probe(`${closed.url}${path.replace('NAME', 'alice/secret')}`, method, await authorization('alice/secret'));
            const absent = await probe(`${closed.url}${path.replace('NAME', 'alice/absent')}`, method, await authorization('alice/absent'));
            expect(JSON.parse(JSON.stringify(hidden).replaceAll('alice/secret', 'alice/absent')), `${anonymousToken ? 'anonymous token' : 'no credentials'}: ${method} ${path}`).to.deep.equal(absent);
            expect(hidden.status).to.equal(401);
          }
        }
      } finally {
        await closed.close();
      }
    });

    it('the access page: the owner makes a repository private and grants and revokes; anyone else is refused alike, whether it exists or not', async function () {
      const alice = await webLogin(other, USERS.alice);
      const bob = await webLogin(other, USERS.bob);
      const get = async (name: string, cookie?: string) => {
        const response = await request(`${other}/ui/access?name=${encodeURIComponent(name)}`, { headers: cookie ? { cookie } : {} });
        return { status: response.statusCode, text: (await response.body.text()).replaceAll(/name="csrf" value="[^"]*"/g, '') };
      };
      const post = async (fields: Record<string, string>, cookie = alice) => {
        const page = await request(`${other}/ui/tokens`, { headers: { cookie } });
        const body = new URLSearchParams({ csrf: csrfToken(await page.body.text()), ...fields });
        const response = await request(`${other}/ui/access`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
        return { status: response.statusCode, text: await response.body.text() };
      };
      expect((await get('alice/open')).status, 'anonymous: to the login').to.equal(303);
      const open = await get('alice/open', alice);
      expect(open.status).to.equal(200);
      expect(open.text).to.include('<strong>public</strong>');
      const refused = await get('alice/open', bob);
      const missing = await get('alice/never-pushed', bob);
      expect(refused.status).to.equal(403);
      expect(refused.text.replaceAll('alice/open', 'alice/never-pushed')).to.equal(missing.text);
      expect((await post({ name: 'alice/open', op: 'visibility', visibility: 'private' }, bob)).status).to.equal(403);

      expect((await post({ name: 'alice/open', op: 'visibility', visibility: 'private' })).status).to.equal(303);
      expect((await post({ name: 'alice/open', op: 'grant', user: 'carol', access: 'pull' })).status).to.equal(303);
      expect((await post({ name: 'alice/open', op: 'grant', user: 'nobody', access: 'pull' })).status).to.equal(400);
      expect((await post({ name: 'alice/open', op: 'everything' })).status).to.equal(405);
      const changed = await get('alice/open', alice);
      expect(changed.text).to.include('<strong>private</strong>').and.include('<code>carol</code>').and.not.include('nobody');
      await eventually(async () => (await probe(`${other}/v2/alice/open/manifests/v1`, 'GET', basic('bob', USERS.bob.password))).status === 404);
      expect((await probe(`${other}/v2/alice/open/manifests/v1`, 'GET', basic('carol', USERS.carol.password))).status).to.equal(200);

      expect((await post({ name: 'alice/open', op: 'revoke', user: 'carol' })).status).to.equal(303);
      expect((await post({ name: 'alice/open', op: 'visibility', visibility: 'inherit' })).status).to.equal(303);
      expect((await get('alice/open', alice)).text).to.include('<strong>public</strong>').and.not.include('<code>carol</code>');
      expect((await get('alice', alice)).text, 'the namespace has its page').to.include('every repository under');
    });

    it('the owner sets visibility and grants with /auth/access; nobody else can, and the answer is the same whether the repository exists or not', async function () {
      const api = (method: string, name: string, authorization: string | undefined, body?: unknown) =>
        request(`${other}/auth/access?name=${encodeURIComponent(name)}`, {
          method: method as 'GET',
          headers: { ...(authorization ? { authorization } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      const alice = basic('alice', USERS.alice.password);
      const changed = await api('PATCH', 'alice/open', alice, { visibility: 'private', grants: { carol: 'pull' } });
      expect(changed.statusCode).to.equal(200);
      expect(await changed.body.json()).to.deep.include({ kind: 'repository', name: 'alice/open', set: 'private', effective: 'private' });
      await eventually(async () => (await probe(`${other}/v2/alice/open/manifests/v1`, 'GET', basic('bob', USERS.bob.password))).status === 404);
      expect((await probe(`${other}/v2/alice/open/manifests/v1`, 'GET', basic('carol', USERS.carol.password))).status).to.equal(200);

      for (const name of ['alice/open', 'alice/never-pushed']) {
        const refused = await api('PATCH', name, basic('bob', USERS.bob.password), { visibility: 'public' });
        expect(refused.statusCode, name).to.equal(403);
        expect(((await refused.body.json()) as { errors: { message: string }[] }).errors[0]?.message).to.equal(`bob does not own ${name}`);
      }
      const token = await createAccessToken(registry.registry.accounts, { owner: 'alice', name: 'ci', repositories: ['alice/**'], actions: ['pull', 'push', 'delete'] });
      const byToken = await api('PATCH', 'alice/open', basic('alice', token.secret), { visibility: 'public' });
      expect(byToken.statusCode).to.equal(403);
      await byToken.body.dump();
      const bad = await api('PATCH', 'alice/open', alice, { visibility: 'everyone' });
      expect(bad.statusCode).to.equal(400);
      await bad.body.dump();
      const shown = (await (await api('GET', 'alice/open', alice)).body.json()) as { set: string; grants: { user: string }[] };
      expect([shown.set, shown.grants.map((grant) => grant.user)]).to.deep.equal(['private', ['carol']]);
      const reset = await api('PATCH', 'alice/open', alice, { visibility: 'inherit', grants: { carol: null } });
      expect(await reset.body.json()).to.deep.include({ set: 'inherit', effective: 'public', grants: [] });
    });
  });
}

async function eventually(check: () => Promise<boolean>, ms = 4000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('private repositories in the web pages, many of them (sqlite)', function () {
  this.timeout(120_000);

  it('a thousand private repositories and their tags crowd out nothing the viewer may see, on the home page or in tag search', async function () {
    const registry = await startTestRegistry({ backend: 'fs', metadata: 'sqlite' });
    try {
      await pushImage(registry.url, 'alice/open', 'v1');
      const store = registry.registry.metadata;
      const layer = `sha256:${'1'.repeat(64)}`;
      // Names that sort before alice/open: the pages' first rows, were they not left out by the query.
      for (let index = 0; index < 1100; index++) await store.linkBlob(`aaa/p${String(index).padStart(4, '0')}`, { digest: layer, size: 1 });
      for (let index = 0; index < 60; index++) {
        const content = Buffer.from(JSON.stringify({ schemaVersion: 2, index }));
        await store.putManifest({ repository: `aaa/p${String(index).padStart(4, '0')}`, digest: sha256(content), mediaType: OCI_MANIFEST, content, blobs: [layer], manifests: [] }, 'v1');
      }
      await registry.registry.accounts.setVisibility('namespace', 'aaa', true, VISIBILITY_LIMITS);
      await eventually(async () => (await probe(`${registry.url}/v2/aaa/p0000/tags/list`, 'GET', undefined)).status === 404);
      const home = await (await request(`${registry.url}/ui/`)).body.text();
      expect(home).to.include('alice/open');
      expect(home).not.to.include('aaa/p');
      const search = await (await request(`${registry.url}/ui/?q=v1`)).body.text();
      expect(search).to.include('href="/ui/r/alice/open/-/manifests/');
      expect(search).not.to.include('aaa/p');
    } finally {
      await registry.close();
    }
  });
});
