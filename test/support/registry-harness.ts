import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { stringify as toYaml } from 'yaml';
import createHoldDriver from '../../src/driver/index.ts';
import { freePort } from '../../src/core/net.ts';
import { hashPassword } from '../../src/registry/auth/users.ts';
import { parseRegistryConfig } from '../../src/registry/config.ts';
import { Registry } from '../../src/registry/registry.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold, type BackendKind, type TestHold } from './hold-harness.ts';
import { sharedPostgres } from './global-fixtures.ts';

/** Users of test registries: alice owns `alice/*`, bob owns `bob/*`. */
export const USERS = Object.freeze({
  alice: { username: 'alice', password: 'alice-password', did: DIDS.owner, handle: 'alice' },
  bob: { username: 'bob', password: 'bob-password', did: DIDS.crewWrite, handle: 'bob' },
});

export interface TestRegistry {
  url: string;
  registry: Registry;
  hold: TestHold;
  /** A bearer token for `user` with `scope`, from the registry's own token endpoint. */
  token(user: keyof typeof USERS | undefined, scope: string): Promise<string>;
  /** A second registry process stand-in sharing the same hold and database. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface TestRegistryOptions {
  backend: BackendKind;
  metadata?: 'sqlite' | 'postgres';
  delivery?: 'redirect' | 'proxy';
  /** Storage driver settings over the harness's. */
  driver?: Record<string, unknown>;
  /** `limits` and `trustProxy` of the registry config. */
  limits?: Record<string, unknown>;
  /** `auth.login` of the registry config. */
  login?: Record<string, unknown>;
  /** bcrypt cost of the users' hashes (4 unless a test measures the cost). */
  passwordRounds?: number;
}

export async function startTestRegistry(options: TestRegistryOptions): Promise<TestRegistry> {
  const hold = await startTestHold(options.backend, { config: { publicRead: true } });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-registry-'));
  await writeFile(
    path.join(dir, 'users.yaml'),
    toYaml({ users: await Promise.all(Object.values(USERS).map(async ({ password, ...user }) => ({ ...user, passwordHash: await hashPassword(password, options.passwordRounds ?? 4) }))) }),
  );
  const metadata =
    options.metadata === 'postgres'
      ? { kind: 'postgres' as const, url: await (await sharedPostgres()).createDatabase() }
      : { kind: 'sqlite' as const, path: path.join(dir, 'registry.db') };
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = parseRegistryConfig({
    listen: { host: '127.0.0.1', port },
    publicUrl: url,
    storage: { module: 'hold' },
    blobs: { delivery: options.delivery ?? (options.backend === 'fs' ? 'proxy' : 'redirect') },
    metadata,
    auth: {
      mode: 'token',
      service: 'holdfast-test',
      signingKey: hold.keys.privateKey,
      usersFile: path.join(dir, 'users.yaml'),
      anonymousDid: DIDS.stranger,
      ...(options.login ? { login: options.login } : {}),
    },
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const start = async () => {
    const storage = createHoldDriver({
      hold: { url: hold.url, audience: AUDIENCE },
      issuer: ISSUER,
      privateKey: hold.keys.privateKey,
      partSize: 5 * 1024 * 1024,
      retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 100 },
      ...options.driver,
    });
    const registry = await Registry.create(config, { logger, storage });
    await registry.listen();
    return registry;
  };
  const handle: TestRegistry = {
    url,
    registry: await start(),
    hold,
    async token(user, scope) {
      const headers: Record<string, string> = {};
      if (user) headers.authorization = `Basic ${Buffer.from(`${USERS[user].username}:${USERS[user].password}`).toString('base64')}`;
      const response = await request(`${url}/auth/token?service=holdfast-test&scope=${encodeURIComponent(scope)}`, { headers });
      const body = (await response.body.json()) as { token: string };
      return body.token;
    },
    async restart() {
      await handle.registry.close();
      handle.registry = await start();
    },
    async close() {
      await handle.registry.close();
      await hold.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
