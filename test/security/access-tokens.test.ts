import { GRANT_LIMITS, VISIBILITY_LIMITS } from '../../src/registry/auth/access.ts';
import { expect } from 'chai';
import { request } from 'undici';
import { createAccessToken } from '../../src/registry/auth/access-tokens.ts';
import { hashPassword } from '../../src/registry/auth/users.ts';
import { DIDS } from '../support/hold-harness.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';
import { csrfToken, webLogin } from '../support/web-login.ts';
import { OciTestClient } from '../support/oci-client.ts';

const basic = (username: string, password: string) => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;

/**
 * Polls `check` until it holds, for a change to reach an instance (each
 * rereads the accounts every second). Every 400 ms, so checks that fail a
 * login stay well under the login throttle's failures per user.
 */
async function eventually(check: () => Promise<boolean>, what: string, ms = 4000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

async function status(url: string, init: { method?: string; authorization?: string; body?: Buffer }): Promise<{ status: number; code?: string; text: string }> {
  const response = await request(url, { method: (init.method ?? 'GET') as 'GET', headers: init.authorization ? { authorization: init.authorization } : {}, ...(init.body ? { body: init.body } : {}) });
  const text = await response.body.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { errors?: { code: string }[] }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return { status: response.statusCode, code, text };
}

/** A registry token for `scope`, traded for Basic `username:password` at `base`. */
async function registryToken(base: string, username: string, password: string, scope: string): Promise<{ status: number; token?: string; access?: unknown }> {
  const response = await request(`${base}/auth/token?service=holdfast-test&scope=${encodeURIComponent(scope)}`, { headers: { authorization: basic(username, password) } });
  if (response.statusCode !== 200) {
    await response.body.dump();
    return { status: response.statusCode };
  }
  const { token } = (await response.body.json()) as { token: string };
  return { status: 200, token, access: (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { access: unknown }).access };
}

/** Pushes a manifest-less blob to `repository` with `authorization`; the status of the upload's POST. */
async function startUpload(base: string, repository: string, authorization: string) {
  return status(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST', authorization });
}

for (const metadata of ['sqlite', 'postgres'] as const) {
  describe(`access tokens (${metadata}${metadata === 'postgres' ? ', two instances' : ''})`, function () {
    this.timeout(120_000);
    let registry: TestRegistry;
    let other: string;

    before(async function () {
      // These tests fail many logins on purpose from one address; the login throttle has its own tests.
      registry = await startTestRegistry({ backend: 'fs', metadata, login: { failuresPerAddress: 1000, failuresPerUser: 1000 }, ...(metadata === 'postgres' ? { instances: 2 } : {}) });
      other = registry.urls.at(-1) as string;
    });
    after(async function () {
      await registry?.close();
    });

    const mint = (actions: string[], repositories = ['alice/ci'], expiresInDays?: number) =>
      createAccessToken(registry.registry.accounts, { owner: 'alice', name: `test ${actions.join(',')}`, repositories, actions, ...(expiresInDays ? { expiresInDays } : {}) });

    it('works as the password, Basic and through the token endpoint, within its repositories and actions only; out of scope is DENIED', async function () {
      const { secret, token } = await mint(['pull', 'push']);
      expect(secret).to.match(/^hfat_[0-9A-Za-z]{50}$/);
      const pushBasic = basic('alice', secret);
      expect((await startUpload(other, 'alice/ci', pushBasic)).status, 'Basic push in scope').to.equal(202);
      expect(await startUpload(other, 'alice/app', pushBasic)).to.deep.include({ status: 403, code: 'DENIED' });

      const granted = await registryToken(registry.url, 'alice', secret, 'repository:alice/ci:pull,push repository:alice/app:pull,push repository:alice/ci:delete');
      expect(granted.access).to.deep.equal([{ type: 'repository', name: 'alice/ci', actions: ['pull', 'push'] }]);
      const bearer = `Bearer ${granted.token as string}`;
      expect((await startUpload(other, 'alice/ci', bearer)).status, 'bearer push in scope, on the other instance').to.equal(202);
      const denied = await startUpload(other, 'alice/app', bearer);
      expect(denied).to.deep.include({ status: 403, code: 'DENIED' });
      expect(denied.text).to.include(`access token ${token.id}`);
      expect(await status(`${other}/v2/alice/app/tags/list`, { authorization: bearer })).to.deep.include({ status: 403, code: 'DENIED' });
      // No delete in its actions: a manifest DELETE is refused before anything is looked up.
      expect(await status(`${other}/v2/alice/ci/manifests/sha256:${'0'.repeat(64)}`, { method: 'DELETE', authorization: bearer })).to.deep.include({ status: 403, code: 'DENIED' });
    });

    it('lists no catalog: a CI token is refused it, Basic and as a registry token, with DENIED', async function () {
      const { secret } = await mint(['pull', 'push'], ['alice/**']);
      expect(await status(`${other}/v2/_catalog`, { authorization: basic('alice', secret) })).to.deep.include({ status: 403, code: 'DENIED' });
      const granted = await registryToken(registry.url, 'alice', secret, 'registry:catalog:* repository:alice/ci:pull');
      expect(granted.access).to.deep.equal([{ type: 'repository', name: 'alice/ci', actions: ['pull'] }]);
      expect(await status(`${other}/v2/_catalog`, { authorization: `Bearer ${granted.token as string}` })).to.deep.include({ status: 403, code: 'DENIED' });
      expect((await status(`${other}/v2/_catalog`, { authorization: basic('alice', USERS.alice.password) })).status, 'the password lists it').to.equal(200);
    });

    it('a read-only token pulls and is refused a push; a token with delete may delete', async function () {
      const readOnly = await mint(['pull']);
      expect((await status(`${other}/v2/alice/ci/tags/list`, { authorization: basic('alice', readOnly.secret) })).status).to.be.oneOf([200, 404]);
      expect(await startUpload(other, 'alice/ci', basic('alice', readOnly.secret))).to.deep.include({ status: 403, code: 'DENIED' });
      const deleter = await mint(['pull', 'delete']);
      const granted = await registryToken(registry.url, 'alice', deleter.secret, 'repository:alice/ci:delete');
      expect(granted.access).to.deep.equal([{ type: 'repository', name: 'alice/ci', actions: ['delete'] }]);
      expect((await status(`${other}/v2/alice/ci/manifests/sha256:${'0'.repeat(64)}`, { method: 'DELETE', authorization: `Bearer ${granted.token as string}` })).status).to.equal(404);
    });

    it("never grants more than its owner has: alice's token on bob's repository gets no push, and under bob's name nothing at all", async function () {
      const { secret } = await mint(['pull', 'push'], ['**']);
      expect(await startUpload(other, 'bob/app', basic('alice', secret))).to.deep.include({ status: 403, code: 'DENIED' });
      expect((await registryToken(registry.url, 'bob', secret, 'repository:bob/app:pull')).status).to.equal(401);
      expect((await status(`${other}/v2/alice/ci/tags/list`, { authorization: basic('bob', secret) })).status).to.equal(401);
    });

    it('is stored only as a hash, and its last use is recorded', async function () {
      const { secret, token } = await mint(['pull']);
      expect((await status(`${other}/v2/alice/ci/tags/list`, { authorization: basic('alice', secret) })).status).to.be.oneOf([200, 404]);
      const row = await registry.registry.accounts.token(token.id);
      expect(JSON.stringify(row)).not.to.include(secret.slice(5 + 12));
      await eventually(async () => (await registry.registry.accounts.token(token.id))?.lastUsedAt !== undefined, 'last use recorded');
    });

    it('a mistyped token (checksum wrong) is refused without a lookup, as a wrong password', async function () {
      const { secret } = await mint(['pull']);
      const typo = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
      expect((await status(`${other}/v2/alice/ci/tags/list`, { authorization: basic('alice', typo) })).status).to.equal(401);
    });

    it('revocation reaches every instance within a second or so: the token, and registry tokens minted from it, are refused', async function () {
      const { secret, token } = await mint(['pull', 'push']);
      const minted = await registryToken(registry.url, 'alice', secret, 'repository:alice/ci:pull,push');
      const bearer = `Bearer ${minted.token as string}`;
      expect((await startUpload(other, 'alice/ci', bearer)).status).to.equal(202);
      expect((await startUpload(other, 'alice/ci', basic('alice', secret))).status).to.equal(202);
      expect(await registry.registry.accounts.revokeToken(token.id)).to.equal(true);
      for (const base of registry.urls) {
        await eventually(async () => (await startUpload(base, 'alice/ci', bearer)).status === 401, `minted registry token refused at ${base}`);
        expect((await startUpload(base, 'alice/ci', basic('alice', secret))).status).to.equal(401);
        expect((await registryToken(base, 'alice', secret, 'repository:alice/ci:pull')).status).to.equal(401);
      }
    });

    it('expires: a token past its expiry is refused', async function () {
      const { secret } = await mint(['pull'], ['alice/ci'], 2 / 86_400);
      expect((await status(`${other}/v2/alice/ci/tags/list`, { authorization: basic('alice', secret) })).status).to.be.oneOf([200, 404]);
      await new Promise((resolve) => setTimeout(resolve, 2100));
      expect((await status(`${other}/v2/alice/ci/tags/list`, { authorization: basic('alice', secret) })).status).to.equal(401);
    });

    it('opens no web session: the pages want the password itself', async function () {
      const { secret } = await mint(['pull', 'push']);
      const refused = (await webLogin(registry.url, { username: 'alice', password: secret }).catch((err: unknown) => err)) as Error;
      expect(refused.message).to.match(/^web login: 401/);
      expect(await webLogin(registry.url, USERS.alice)).to.include('hf_session=');
    });

    it('the token API: a user creates, lists and revokes their own tokens with their password; a token, a stranger or a bad request changes nothing', async function () {
      const api = (method: string, authorization: string | undefined, body?: unknown, path = '', contentType = 'application/json') =>
        request(`${other}/auth/tokens${path}`, {
          method: method as 'GET',
          headers: { ...(authorization ? { authorization } : {}), ...(body === undefined ? {} : { 'content-type': contentType }) },
          ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        });
      const bob = basic('bob', USERS.bob.password);
      const created = await api('POST', bob, { name: 'deploy', repositories: ['bob/app'], actions: ['pull', 'push'], expiresInDays: 1 });
      expect(created.statusCode).to.equal(201);
      const token = (await created.body.json()) as { id: string; secret: string; state: string; secretHash?: string };
      expect(token).to.deep.include({ state: 'live' });
      expect(token.secretHash).to.equal(undefined);
      expect((await startUpload(other, 'bob/app', basic('bob', token.secret))).status).to.equal(202);

      const listed = await api('GET', bob);
      const text = await listed.body.text();
      expect(text).to.include(token.id);
      expect(text).not.to.include(token.secret.slice(17));
      expect(text).not.to.include('secretHash');

      const before = (await registry.registry.accounts.tokens('bob')).length;
      const refusals: [string, Awaited<ReturnType<typeof api>>, number, string?][] = [
        ['no credentials', await api('GET', undefined), 401],
        ['a token managing tokens', await api('POST', basic('bob', token.secret), { name: 'more', repositories: ['bob/**'], actions: ['pull', 'push', 'delete'] }), 403, 'DENIED'],
        ['a wrong password', await api('POST', basic('bob', 'nope'), { name: 'x', repositories: ['bob/app'], actions: ['pull'] }), 401],
        ['an unknown action', await api('POST', bob, { name: 'x', repositories: ['bob/app'], actions: ['admin'] }), 400, 'REQUEST_INVALID'],
        ['a pattern that is no name', await api('POST', bob, { name: 'x', repositories: ['../../etc'], actions: ['pull'] }), 400, 'REQUEST_INVALID'],
        ['text, not JSON', await api('POST', bob, 'name=x', '', 'text/plain'), 400, 'REQUEST_INVALID'],
        ['a 9 KiB body', await api('POST', bob, { name: 'x'.repeat(9 * 1024), repositories: ['bob/app'], actions: ['pull'] }), 413, 'REQUEST_TOO_LARGE'],
        ["alice revoking bob's token", await api('DELETE', basic('alice', USERS.alice.password), undefined, `/${token.id}`), 404, 'NAME_UNKNOWN'],
      ];
      for (const [what, response, expected, code] of refusals) {
        const body = await response.body.text();
        expect(response.statusCode, what).to.equal(expected);
        if (code) expect((JSON.parse(body) as { errors: { code: string }[] }).errors[0]?.code, what).to.equal(code);
      }
      expect(refusals[0]?.[1].headers['www-authenticate']).to.match(/^Basic realm="holdfast"/);
      expect((await registry.registry.accounts.tokens('bob')).length, 'nothing created').to.equal(before);
      expect((await registry.registry.accounts.token(token.id))?.revokedAt, 'nothing revoked').to.equal(undefined);

      const revoked = await api('DELETE', bob, undefined, `/${token.id}`);
      await revoked.body.dump();
      expect(revoked.statusCode).to.equal(204);
      await eventually(async () => (await startUpload(other, 'bob/app', basic('bob', token.secret))).status === 401, 'revoked through the API');
    });

    it('a page of the web front end calls the token API with its session and CSRF token; another site, or a session without the token, cannot', async function () {
      const cookie = await webLogin(other, USERS.alice);
      const page = await request(`${other}/ui/`, { headers: { cookie } });
      const csrf = csrfToken(await page.body.text());
      const call = (method: string, headers: Record<string, string>, body?: unknown) =>
        request(`${other}/auth/tokens`, { method: method as 'POST', headers: { cookie, ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
      const fields = { name: 'from the page', repositories: ['alice/app'], actions: ['pull'] };
      const before = (await registry.registry.accounts.tokens('alice')).length;
      for (const [what, headers, expected] of [
        ['no CSRF token', {}, 403],
        ['a wrong CSRF token', { 'x-csrf-token': `${csrf}x` }, 403],
        ['another site', { 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' }, 403],
        ['another origin', { 'x-csrf-token': csrf, origin: 'http://evil.example' }, 403],
      ] as const) {
        const refused = await call('POST', headers, fields);
        await refused.body.dump();
        expect(refused.statusCode, what).to.equal(expected);
      }
      expect((await registry.registry.accounts.tokens('alice')).length, 'nothing created').to.equal(before);
      const created = await call('POST', { 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin' }, fields);
      expect(created.statusCode).to.equal(201);
      const { secret } = (await created.body.json()) as { secret: string };
      expect(secret).to.match(/^hfat_/);
      const listed = await call('GET', { 'x-csrf-token': csrf });
      expect(listed.statusCode).to.equal(200);
      expect(((await listed.body.json()) as { tokens: { name: string }[] }).tokens.map((token) => token.name)).to.include('from the page');
    });

    it('the tokens page: a user creates a token (its secret shown once), sees it listed, revokes it; robots too; nobody else can touch them', async function () {
      const cookie = await webLogin(other, USERS.alice);
      const get = async (cookieHeader?: string) => {
        const response = await request(`${other}/ui/tokens`, { headers: cookieHeader ? { cookie: cookieHeader } : {} });
        return { status: response.statusCode, location: response.headers.location, text: await response.body.text() };
      };
      const post = async (path: string, fields: [string, string][], cookieHeader = cookie) => {
        const page = await get(cookieHeader);
        const form = new URLSearchParams([['csrf', csrfToken(page.text)], ...fields]);
        const response = await request(`${other}${path}`, { method: 'POST', headers: { cookie: cookieHeader, 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
        return { status: response.statusCode, location: response.headers.location, text: await response.body.text() };
      };
      expect(await get()).to.deep.include({ status: 303, location: '/ui/login?next=%2Fui%2Ftokens' });

      const created = await post('/ui/tokens', [['name', '<script>x</script>'], ['repositories', 'alice/app alice/web-*'], ['actions', 'pull'], ['actions', 'push'], ['days', '7'], ['for', '']]);
      expect(created.status).to.equal(201);
      const secret = /hfat_[0-9A-Za-z]{50}/.exec(created.text)?.[0] as string;
      expect(secret, 'the secret is on the answer').to.be.a('string');
      expect(created.text).to.include('&lt;script&gt;x&lt;/script&gt;').and.not.include('<script>x</script>');
      expect((await startUpload(other, 'alice/app', basic('alice', secret))).status).to.equal(202);
      const listed = await get(cookie);
      expect(listed.text).to.include('alice/web-*');
      expect(listed.text, 'and never again').not.to.include(secret);

      const before = (await registry.registry.accounts.tokens('alice')).length;
      const refused = await post('/ui/tokens', [['name', 'x'], ['repositories', 'alice/app'], ['days', '7']]);
      expect(refused.status).to.equal(400);
      expect(refused.text).to.include("a token&#39;s actions are some of pull, push, delete");
      expect(await post('/ui/tokens', [['name', 'x'], ['repositories', 'alice/app'], ['actions', 'pull'], ['days', '7'], ['for', 'bob']])).to.deep.include({ status: 403 });
      expect((await registry.registry.accounts.tokens('alice')).length, 'nothing created').to.equal(before);

      const id = (await registry.registry.accounts.tokens('alice')).find((token) => token.name === '<script>x</script>')?.id as string;
      const bob = await webLogin(other, USERS.bob);
      expect((await post('/ui/tokens/revoke', [['id', id]], bob)).status, "bob revoking alice's token").to.equal(404);
      expect(await post('/ui/tokens/revoke', [['id', id]])).to.deep.include({ status: 303, location: '/ui/tokens' });
      await eventually(async () => (await startUpload(other, 'alice/app', basic('alice', secret))).status === 401, 'revoked from the page');

      expect(await post('/ui/robots', [['name', 'web']])).to.deep.include({ status: 303 });
      expect((await post('/ui/robots', [['name', 'Bad Name']])).status).to.equal(400);
      expect((await get(cookie)).text).to.include('alice+web (robot)');
      const robotToken = await post('/ui/tokens', [['name', 'robot'], ['repositories', 'alice/app'], ['actions', 'pull'], ['days', '1'], ['for', 'alice+web']]);
      expect(robotToken.status).to.equal(201);
      expect(robotToken.text).to.include('--username alice+web');
      expect((await post('/ui/robots/delete', [['name', 'alice+web']], bob)).status, "bob deleting alice's robot").to.equal(404);
      expect(await post('/ui/robots/delete', [['name', 'alice+web']])).to.deep.include({ status: 303 });
      expect(await registry.registry.accounts.robots('alice')).to.deep.equal([]);
    });

    it('a robot account signs in only with its tokens, may do only what it was granted, and goes with its owner', async function () {
      const alice = basic('alice', USERS.alice.password);
      const post = (path: string, authorization: string, body: unknown, method = 'POST') =>
        request(`${other}${path}`, { method: method as 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const created = await post('/auth/robots', alice, { name: 'ci' });
      expect(created.statusCode).to.equal(201);
      expect(await created.body.json()).to.deep.include({ name: 'alice+ci' });
      const minted = await post('/auth/tokens', alice, { name: 'robot ci', repositories: ['alice/**', 'bob/lib'], actions: ['pull', 'push'], robot: 'ci' });
      expect(minted.statusCode).to.equal(201);
      const { secret } = (await minted.body.json()) as { secret: string; owner: string };
      const robot = basic('alice+ci', secret);

      // Nothing granted yet: its owner's namespace is not its own.
      expect(await startUpload(other, 'alice/app', robot)).to.deep.include({ status: 403, code: 'DENIED' });
      const granted = await post('/auth/access?name=alice', alice, { grants: { 'alice+ci': 'push' } }, 'PATCH');
      expect(granted.statusCode).to.equal(200);
      await granted.body.dump();
      await eventually(async () => (await startUpload(other, 'alice/app', robot)).status === 202, 'the grant reaches the other instance');
      expect(await status(`${other}/v2/alice/app/manifests/v1`, { method: 'DELETE', authorization: robot })).to.deep.include({ status: 403, code: 'DENIED' });

      // bob opens a private repository to it.
      const bobBlob = await new OciTestClient(USERS.bob).pushBlob(registry.url, 'bob/lib', Buffer.from('bob private lib'));
      await registry.registry.accounts.setVisibility('repository', 'bob/lib', true, VISIBILITY_LIMITS);
      await eventually(async () => (await status(`${other}/v2/bob/lib/blobs/${bobBlob}`, { method: 'HEAD', authorization: robot })).status === 404, 'private reaches the other instance');
      await registry.registry.accounts.grant('repository', 'bob/lib', 'alice+ci', 'pull', GRANT_LIMITS);
      await eventually(async () => (await status(`${other}/v2/bob/lib/blobs/${bobBlob}`, { method: 'HEAD', authorization: robot })).status === 200, 'the grant to the robot');

      // No password, no web session, no account management.
      for (const password of ['', 'alice-password', USERS.alice.password]) expect((await status(`${other}/v2/alice/app/tags/list`, { authorization: basic('alice+ci', password) })).status).to.equal(401);
      expect((await post('/auth/tokens', robot, { name: 'more', repositories: ['**'], actions: ['pull'] })).statusCode).to.equal(403);
      expect((await post('/auth/robots', basic('bob', USERS.bob.password), { name: 'ci' })).statusCode).to.equal(201);
      expect((await post('/auth/tokens', basic('bob', USERS.bob.password), { name: 'steal', repositories: ['**'], actions: ['pull'], robot: 'nope' })).statusCode).to.equal(400);

      // Deleted with its owner's say-so: its token stops at once.
      const deleted = await request(`${other}/auth/robots/ci`, { method: 'DELETE', headers: { authorization: alice } });
      expect(deleted.statusCode).to.equal(204);
      await deleted.body.dump();
      for (const base of registry.urls) await eventually(async () => (await startUpload(base, 'alice/app', robot)).status === 401, `the deleted robot refused at ${base}`);
      expect(await registry.registry.accounts.grants()).to.satisfy((rows: { grantee: string }[]) => rows.every((row) => row.grantee !== 'alice+ci'));
    });

    it('a disabled user, and a user taken out of the users file, are refused at once on every instance: password, access token and registry token alike', async function () {
      const password = 'erin-password-1';
      await registry.registry.accounts.addUser({ username: 'erin', did: DIDS.crewWrite, handle: 'erin', passwordHash: await hashPassword(password, 4) });
      await eventually(async () => (await registryToken(other, 'erin', password, 'repository:erin/app:pull,push')).status === 200, 'a new user reaches the other instance');
      const erin = await createAccessToken(registry.registry.accounts, { owner: 'erin', name: 'ci', repositories: ['erin/**'], actions: ['pull', 'push'] });
      const minted = await registryToken(registry.url, 'erin', password, 'repository:erin/app:pull,push');
      expect(minted.status).to.equal(200);
      expect((await startUpload(other, 'erin/app', `Bearer ${minted.token as string}`)).status).to.equal(202);
      await registry.registry.accounts.updateUser('erin', { disabled: true });
      await eventually(async () => (await startUpload(other, 'erin/app', `Bearer ${minted.token as string}`)).status === 401, 'disabled user refused');
      expect((await startUpload(other, 'erin/app', basic('erin', password))).status).to.equal(401);
      expect((await startUpload(other, 'erin/app', basic('erin', erin.secret))).status).to.equal(401);

      // alice comes from the users file; a start without her there removes her, and her tokens with her.
      const aliceToken = await registryToken(registry.url, 'alice', USERS.alice.password, 'repository:alice/app:pull,push');
      expect((await startUpload(other, 'alice/app', `Bearer ${aliceToken.token as string}`)).status).to.equal(202);
      const rest = [USERS.bob, USERS.carol].map(({ password: _password, ...user }) => ({ ...user, passwordHash: '$2b$04$' + 'x'.repeat(53) }));
      await registry.registry.accounts.syncFileUsers(rest);
      await eventually(async () => (await startUpload(other, 'alice/app', `Bearer ${aliceToken.token as string}`)).status === 401, 'removed user refused');
      expect(await registry.registry.accounts.tokens('alice')).to.deep.equal([]);
    });
  });
}
