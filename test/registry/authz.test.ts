import { expect } from 'chai';
import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { sha256 } from '../support/bytes.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

type Caller = 'anonymous' | 'owner' | 'otherUser' | 'wrongPassword' | 'expiredToken' | 'otherRepoToken' | 'ownerBasic';

/** Expected status for a pull (HEAD blob) and a push (POST upload) on alice/app. */
const MATRIX: Record<Caller, { pull: number; push: number }> = {
  anonymous: { pull: 200, push: 401 },
  owner: { pull: 200, push: 202 },
  ownerBasic: { pull: 200, push: 202 },
  otherUser: { pull: 200, push: 403 },
  wrongPassword: { pull: 401, push: 401 },
  expiredToken: { pull: 401, push: 401 },
  otherRepoToken: { pull: 401, push: 401 },
};

describe('registry authorization matrix', function () {
  let registry: TestRegistry;
  let blob: string;

  before(async function () {
    registry = await startTestRegistry({ backend: 'fs' });
    const token = await registry.token('alice', 'repository:alice/app:pull,push');
    const bytes = Buffer.from('hello');
    blob = sha256(bytes);
    const post = await request(`${registry.url}/v2/alice/app/blobs/uploads/?digest=${blob}`, { method: 'POST', body: bytes, headers: { authorization: `Bearer ${token}` } });
    await post.body.dump();
    expect(post.statusCode).to.equal(201);
  });
  after(async function () {
    await registry?.close();
  });

  async function authorization(caller: Caller, action: 'pull' | 'push'): Promise<string | undefined> {
    const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    switch (caller) {
      case 'anonymous':
        return undefined;
      case 'owner':
        return `Bearer ${await registry.token('alice', `repository:alice/app:${action === 'push' ? 'pull,push' : 'pull'}`)}`;
      case 'ownerBasic':
        return basic(USERS.alice.username, USERS.alice.password);
      case 'otherUser':
        return `Bearer ${await registry.token('bob', 'repository:alice/app:pull,push')}`;
      case 'wrongPassword':
        return basic(USERS.alice.username, 'not-the-password');
      case 'expiredToken': {
        const now = Math.floor(Date.now() / 1000);
        const token = await new SignJWT({ access: [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }] })
          .setProtectedHeader({ alg: 'EdDSA' })
          .setIssuer('holdfast-registry')
          .setAudience('holdfast-test')
          .setSubject('alice')
          .setIssuedAt(now - 600)
          .setExpirationTime(now - 300)
          .sign(createPrivateKey(registry.hold.keys.privateKey));
        return `Bearer ${token}`;
      }
      case 'otherRepoToken':
        return `Bearer ${await registry.token('alice', 'repository:alice/other:pull,push')}`;
    }
  }

  for (const [caller, expected] of Object.entries(MATRIX) as [Caller, { pull: number; push: number }][]) {
    it(`${caller}: pull ${expected.pull}, push ${expected.push}`, async function () {
      const pullAuth = await authorization(caller, 'pull');
      const pull = await request(`${registry.url}/v2/alice/app/blobs/${blob}`, { method: 'HEAD', headers: pullAuth ? { authorization: pullAuth } : {} });
      await pull.body.dump();
      expect(pull.statusCode, 'pull').to.equal(expected.pull);
      const pushAuth = await authorization(caller, 'push');
      const push = await request(`${registry.url}/v2/alice/app/blobs/uploads/`, { method: 'POST', headers: pushAuth ? { authorization: pushAuth } : {} });
      const text = await push.body.text();
      expect(push.statusCode, `push: ${text}`).to.equal(expected.push);
      if (expected.push === 401) {
        expect(push.headers['www-authenticate']).to.match(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/auth\/token",service="holdfast-test",scope="repository:alice\/app:pull,push"/);
      }
    });
  }

  it('refuses a token request with a wrong password', async function () {
    const response = await request(`${registry.url}/auth/token?service=holdfast-test&scope=repository:alice/app:pull`, {
      headers: { authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` },
    });
    expect(response.statusCode).to.equal(401);
    await response.body.dump();
  });

  it('grants only what policy allows: bob asking to push alice/app gets pull alone', async function () {
    const token = await registry.token('bob', 'repository:alice/app:pull,push repository:bob/app:pull,push');
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { access: unknown; exp: number; iat: number };
    expect(claims.access).to.deep.equal([
      { type: 'repository', name: 'alice/app', actions: ['pull'] },
      { type: 'repository', name: 'bob/app', actions: ['pull', 'push', 'delete'] },
    ]);
    expect(claims.exp - claims.iat).to.be.at.most(300);
  });

  it('a mount needs write access at the hold, as an upload does: read-only crew cannot build a repository from stored blobs', async function () {
    const token = await registry.token('carol', 'repository:carol/app:pull,push repository:alice/app:pull');
    const headers = { authorization: `Bearer ${token}` };
    const upload = await request(`${registry.url}/v2/carol/app/blobs/uploads/`, { method: 'POST', headers });
    expect(upload.statusCode, 'an upload is refused at the hold').to.equal(403);
    await upload.body.dump();
    for (const query of [`mount=${blob}&from=alice/app`, `mount=${blob}`]) {
      const mount = await request(`${registry.url}/v2/carol/app/blobs/uploads/?${query}`, { method: 'POST', headers });
      const text = await mount.body.text();
      expect([mount.statusCode, (JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code], `${query}: ${text}`).to.deep.equal([403, 'DENIED']);
    }
    expect(await registry.registry.metadata.getBlob('carol/app', blob), 'nothing linked').to.equal(undefined);
    const head = await request(`${registry.url}/v2/carol/app/blobs/${blob}`, { method: 'HEAD', headers });
    await head.body.dump();
    expect(head.statusCode).to.equal(404);
  });
});
