import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { stringify as toYaml } from 'yaml';
import { TokenAuthorizer } from '../../src/registry/auth/token.ts';
import { hashPassword, readUsersFile, UserDirectory } from '../../src/registry/auth/users.ts';
import { ConfigError } from '../../src/core/config.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import { generateSigningKey } from '../support/hold-harness.ts';
import { openDatabase } from '../../src/metadata/db.ts';
import { AccountStore } from '../../src/metadata/accounts/store.ts';

const ALICE = { username: 'alice', did: 'did:plc:alice000000000000000000', handle: 'alice' };
const BOB = { username: 'bob', did: 'did:plc:bob00000000000000000000', handle: 'bob' };

describe('user directory and tokens', function () {
  it('refuses a users file where two users share a handle or a user name', async function () {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-users-'));
    const passwordHash = await hashPassword('x', 4);
    for (const users of [
      [ALICE, { ...BOB, handle: 'alice' }],
      [ALICE, { ...BOB, username: 'alice' }],
    ]) {
      const file = path.join(dir, 'users.yaml');
      await writeFile(file, toYaml({ users: users.map((user) => ({ ...user, passwordHash })) }));
      const error = await readUsersFile(file).then(() => undefined, (err: unknown) => err);
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).issues.join('\n')).to.match(/users\.1\.(handle|username): alice is already the (handle|username) of users\.0/);
    }
  });

  it('a token whose user is gone is refused with 401, never taken as the anonymous user', async function () {
    const keys = await generateSigningKey();
    const passwordHash = await hashPassword('alice-password', 4);
    const authorizer = (users: UserDirectory) =>
      new TokenAuthorizer({ publicUrl: 'http://127.0.0.1:1', service: 'test', issuer: 'test', signingKey: keys.privateKey, ttlSeconds: 300, users, anonymousPull: true, anonymousDid: 'did:plc:anonymous0000000000000' });
    const before = authorizer(UserDirectory.fromList([{ ...ALICE, passwordHash }, { ...BOB, passwordHash }]));
    const after = authorizer(UserDirectory.fromList([{ ...BOB, passwordHash }]));
    const app = Fastify();
    before.register(app);
    try {
      const answer = await app.inject({ url: '/auth/token?service=test&scope=repository:alice/app:pull,push', headers: { authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}` } });
      const { token } = answer.json<{ token: string }>();
      const request = { headers: { authorization: `Bearer ${token}` }, ip: '127.0.0.1' } as never;
      expect((await before.authorize(request, 'push', 'alice/app')).did).to.equal(ALICE.did);
      for (const action of ['pull', 'push'] as const) {
        const error = await after.authorize(request, action, 'alice/app').then(() => undefined, (err: unknown) => err);
        expect(error, action).to.be.instanceOf(RegistryError);
        expect((error as RegistryError).status).to.equal(401);
        expect(String((error as RegistryError).headers?.['www-authenticate'])).to.include('error="invalid_token"');
      }
    } finally {
      await app.close();
      await before.close();
      await after.close();
    }
  });
});

describe('accounts snapshot', function () {
  it('fails closed: when the accounts cannot be read for ten refresh periods, the directory says it is stale', async function () {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-stale-'));
    const db = await openDatabase({ kind: 'sqlite', path: path.join(dir, 'registry.db') });
    const directory = await UserDirectory.open(new AccountStore(db), { refreshMs: 20 });
    try {
      expect(directory.stale).to.equal(false);
      await db.close();
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(directory.stale).to.equal(true);
    } finally {
      await directory.close();
    }
  });
});
