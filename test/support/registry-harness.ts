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
import { Registry, type RegistryOptions } from '../../src/registry/registry.ts';
import type { StepHook } from '../../src/hold/protocol-steps.ts';
import type { WriterStepHook } from '../../src/driver/writer-steps.ts';
import type { UploadRequestStepHook } from '../../src/registry/upload-lease.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold, type BackendKind, type TestHold } from './hold-harness.ts';
import { sharedPostgres } from './global-fixtures.ts';

/** Users of test registries: alice owns `alice/*`, bob owns `bob/*`. */
export const USERS = Object.freeze({
  alice: { username: 'alice', password: 'alice-password', did: DIDS.owner, handle: 'alice' },
  bob: { username: 'bob', password: 'bob-password', did: DIDS.crewWrite, handle: 'bob' },
  /** Read-only crew at the hold: may pull, and push to carol/ at the registry, but the hold refuses her writes. */
  carol: { username: 'carol', password: 'carol-password', did: DIDS.crewRead, handle: 'carol' },
});

export interface TestRegistry {
  url: string;
  registry: Registry;
  /** Every instance's base URL (`url` first): registries sharing the hold and the database. */
  urls: string[];
  /** The Postgres database's URL, when the metadata is on Postgres. */
  databaseUrl?: string;
  /** The SQLite file, when the metadata is on SQLite. */
  databasePath?: string;
  hold: TestHold;
  /** A bearer token for `user` with `scope`, from the registry's own token endpoint. */
  token(user: keyof typeof USERS | undefined, scope: string): Promise<string>;
  /** Every running instance, `registry` first. */
  instances(): Registry[];
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
  /** More of the registry config's `auth` (e.g. `defaultVisibility`). */
  auth?: Record<string, unknown>;
  /** `auth.anonymousPull` (default true). */
  anonymousPull?: boolean;
  /** `gc` of the registry config (the collector runs only when asked). */
  gc?: Record<string, unknown>;
  /** `ui` of the registry config. */
  ui?: Record<string, unknown>;
  /** `metrics` of the registry config. */
  metrics?: Record<string, unknown>;
  /** `policies` of the registry config. */
  policies?: Record<string, unknown>;
  /** `events` of the registry config. */
  events?: Record<string, unknown>;
  /** The events' test DNS and clock, per instance. */
  eventsFor?: (index: number) => RegistryOptions['events'];
  /** Hold settings over the harness's (e.g. `quotas`, `crew` with tiers). */
  hold?: Record<string, unknown>;
  /** bcrypt cost of the users' hashes (4 unless a test measures the cost). */
  passwordRounds?: number;
  /** Registry instances sharing the hold and the database (Postgres for more than one); 1 by default. */
  instances?: number;
  /** Driver settings of instance `index` over `driver` (e.g. a test hook for one instance only). */
  driverFor?: (index: number) => Record<string, unknown>;
  /** Awaited at each step of the hold's release and move (see `StepHook`). */
  holdOnStep?: StepHook;
  /** Instance `index` talks to hold process `index % holds` (S3 only: more than one share the bucket and prefix). */
  holds?: number;
  /** Test hooks of instance `index`: steps of its writers and upload requests, and a switch that stops its lease renewals. */
  hooksFor?: (index: number) => { writerStep?: WriterStepHook; uploadStep?: UploadRequestStepHook; leaseRenewalsPaused?: () => boolean };
}

export async function startTestRegistry(options: TestRegistryOptions): Promise<TestRegistry> {
  const hold = await startTestHold(options.backend, { config: { publicRead: true, ...options.hold }, ...(options.holdOnStep ? { onStep: options.holdOnStep } : {}) });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-registry-'));
  await writeFile(
    path.join(dir, 'users.yaml'),
    toYaml({ users: await Promise.all(Object.values(USERS).map(async ({ password, ...user }) => ({ ...user, passwordHash: await hashPassword(password, options.passwordRounds ?? 4) }))) }),
  );
  const metadata =
    options.metadata === 'postgres'
      ? { kind: 'postgres' as const, url: await (await sharedPostgres()).createDatabase() }
      : { kind: 'sqlite' as const, path: path.join(dir, 'registry.db') };
  const instances = options.instances ?? 1;
  if (instances > 1 && options.metadata !== 'postgres') throw new TypeError('instances sharing a database need metadata: postgres');
  const ports: number[] = [];
  for (let index = 0; index < instances; index++) ports.push(await freePort());
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const url = urls[0] as string;
  const configFor = (port: number) => parseRegistryConfig({
    listen: { host: '127.0.0.1', port },
    publicUrl: url,
    storage: { module: 'hold', options: { hold: { url: hold.url, audience: AUDIENCE } } },
    blobs: { delivery: options.delivery ?? (options.backend === 'fs' ? 'proxy' : 'redirect') },
    metadata,
    auth: {
      mode: 'token',
      service: 'holdfast-test',
      signingKey: hold.keys.privateKey,
      usersFile: path.join(dir, 'users.yaml'),
      anonymousDid: DIDS.stranger,
      ...(options.anonymousPull !== undefined ? { anonymousPull: options.anonymousPull } : {}),
      ...(options.login ? { login: options.login } : {}),
      ...options.auth,
    },
    ...(options.gc ? { gc: options.gc } : {}),
    ...(options.ui ? { ui: options.ui } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.policies ? { policies: options.policies } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.events ? { events: options.events } : {}),
  });
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const start = async (index: number) => {
    const hooks = options.hooksFor?.(index);
    const storage = createHoldDriver({
      hold: { url: holdUrls[index % holdUrls.length] as string, audience: AUDIENCE },
      issuer: ISSUER,
      privateKey: hold.keys.privateKey,
      partSize: 5 * 1024 * 1024,
      retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 100 },
      ...options.driver,
      ...options.driverFor?.(index),
    }, hooks?.writerStep ? { onStep: hooks.writerStep } : {});
    const registry = await Registry.create(configFor(ports[index] as number), {
      logger,
      storage,
      ...(hooks?.uploadStep ? { onUploadStep: hooks.uploadStep } : {}),
      ...(hooks?.leaseRenewalsPaused ? { leaseRenewalsPaused: hooks.leaseRenewalsPaused } : {}),
      ...(options.eventsFor ? { events: options.eventsFor(index) } : {}),
    });
    await registry.listen();
    return registry;
  };
  const holdUrls = [hold.url];
  for (let index = 1; index < (options.holds ?? 1); index++) holdUrls.push((await hold.sibling(options.holdOnStep ? { onStep: options.holdOnStep } : {})).url);
  const others: Registry[] = [];
  for (let index = 1; index < instances; index++) others.push(await start(index));
  const handle: TestRegistry = {
    url,
    urls,
    ...(metadata.kind === 'postgres' ? { databaseUrl: metadata.url } : { databasePath: metadata.path }),
    registry: await start(0),
    hold,
    async token(user, scope) {
      const headers: Record<string, string> = {};
      if (user) headers.authorization = `Basic ${Buffer.from(`${USERS[user].username}:${USERS[user].password}`).toString('base64')}`;
      const response = await request(`${url}/auth/token?service=holdfast-test&scope=${encodeURIComponent(scope)}`, { headers });
      const body = (await response.body.json()) as { token: string };
      return body.token;
    },
    instances: () => [handle.registry, ...others],
    async restart() {
      await handle.registry.close();
      handle.registry = await start(0);
    },
    async close() {
      await Promise.all([handle.registry.close(), ...others.map((other) => other.close())]);
      await hold.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
