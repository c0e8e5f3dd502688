import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, applyEnvOverrides, deepFreeze } from '../core/config.ts';
import { serverTimeoutsSchema } from '../core/http-limits.ts';

const did = z.string().regex(/^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/, 'must be a DID such as did:plc:abc123');

export const registryConfigSchema = z
  .object({
    listen: z.object({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(5000) }).strict().default({ host: '127.0.0.1', port: 5000 }),
    /** The URL clients use; the token realm is built from it. */
    publicUrl: z.url().optional(),
    storage: z
      .object({
        /** `hold` (built in) or a module specifier whose default export is `(options, context) → driver`. */
        module: z.string().min(1).default('hold'),
        options: z.record(z.string(), z.unknown()).default({}),
      })
      .strict(),
    blobs: z.object({ delivery: z.enum(['redirect', 'proxy']).default('redirect') }).strict().default({ delivery: 'redirect' }),
    /** Online garbage collection; off unless `did` (a DID with write access at the hold) is set. */
    gc: z
      .object({
        did: did.optional(),
        graceSeconds: z.number().int().min(0).default(86_400),
        /** Seconds between passes inside the registry; 0 runs passes only from `holdfast gc`. */
        intervalSeconds: z.number().int().min(0).default(3600),
        /**
         * A blob deletion (GC's release at the hold) still unfinished after
         * this long is taken to be abandoned, and another pass takes it over.
         * Keep it well above the longest a release can take.
         */
        deletingTimeoutSeconds: z.number().int().min(60).default(600),
      })
      .strict()
      .prefault({}),
    metadata: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('sqlite'), path: z.string().min(1).default('./data/registry.db') }).strict(),
      z.object({ kind: z.literal('postgres'), url: z.string().min(1), maxConnections: z.number().int().min(1).max(200).default(10) }).strict(),
    ]),
    auth: z.discriminatedUnion('mode', [
      z
        .object({
          /** No authentication; only allowed on a loopback address. */
          mode: z.literal('none'),
          did,
        })
        .strict(),
      z
        .object({
          mode: z.literal('token'),
          /** The `service` in challenges and the `aud` of registry tokens. */
          service: z.string().min(1).default('holdfast'),
          issuer: z.string().min(1).default('holdfast-registry'),
          signingKey: z.string().min(1).optional(),
          signingKeyFile: z.string().min(1).optional(),
          usersFile: z.string().min(1),
          tokenTtlSeconds: z.number().int().min(30).max(3600).default(300),
          anonymousPull: z.boolean().default(true),
          /** The DID presented to the hold for anonymous pulls. */
          anonymousDid: did,
          login: z
            .object({
              /** Failed logins per client address within `windowSeconds`, then 429 until the window moves on. */
              failuresPerAddress: z.number().int().min(1).default(10),
              /** Failed logins per user name within `windowSeconds`; a user's cached correct password still works. */
              failuresPerUser: z.number().int().min(1).default(10),
              windowSeconds: z.number().int().min(1).default(300),
              /** Password checks one client address may have running or queued at once. */
              concurrentPerAddress: z.number().int().min(1).default(8),
              /** Password checks queued for the hashing threads at once; past this, 429. */
              maxQueued: z.number().int().min(1).default(64),
              /** Threads that run bcrypt, off the event loop. */
              threads: z.number().int().min(1).max(16).default(1),
            })
            .strict()
            .prefault({}),
        })
        .strict(),
    ]),
    /**
     * Take the client address from `X-Forwarded-For` when the connection comes
     * from these proxies (addresses or CIDRs). Off by default, and never
     * "any": a client could then name any address.
     */
    trustProxy: z.union([z.literal(false), z.array(z.string().min(1)).min(1)]).default(false),
    /** Bounds on what one request or one account may hold (docs/SECURITY.md). */
    limits: z
      .object({
        http: serverTimeoutsSchema.prefault({}),
        /** Upload sessions one DID may have open (created within `uploadWindowSeconds`); past this, 429. */
        maxOpenUploadsPerDid: z.number().int().min(1).default(100),
        /** Sessions older than this no longer count (the hold expires them after its `uploadTtlSeconds`). */
        uploadWindowSeconds: z.number().int().min(60).default(86_400),
        /** Tags one repository may have; a manifest PUT that would add one more is refused. */
        maxTagsPerRepository: z.number().int().min(1).default(100_000),
        /** Tag and catalog pages: the size without `?n=`, and the most `?n=` may ask for. */
        defaultPageSize: z.number().int().min(1).default(1000),
        maxPageSize: z.number().int().min(1).default(10_000),
        /**
         * One request at a time writes an upload, across every instance: it
         * holds the upload this long, renewed while it works. A registry that
         * dies mid-request keeps the upload from other requests this long.
         */
        uploadLeaseSeconds: z.number().int().min(1).max(600).default(15),
        /** How long a request waits for another request writing the same upload; then 429. */
        uploadWaitSeconds: z.number().int().min(0).max(600).default(30),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type RegistryConfig = Readonly<z.output<typeof registryConfigSchema>>;

export const REGISTRY_ENV_OVERRIDES = Object.freeze({
  HOLDFAST_REGISTRY_HOST: { path: ['listen', 'host'], type: 'string' as const },
  HOLDFAST_REGISTRY_PORT: { path: ['listen', 'port'], type: 'number' as const },
  HOLDFAST_REGISTRY_PUBLIC_URL: { path: ['publicUrl'], type: 'string' as const },
  HOLDFAST_DATABASE_URL: { path: ['metadata', 'url'], type: 'string' as const },
});

export function parseRegistryConfig(input: unknown, source = 'config'): RegistryConfig {
  const result = registryConfigSchema.safeParse(input);
  if (!result.success) {
    throw ConfigError.fromZod(source, result.error.issues);
  }
  const config = result.data;
  if (config.auth.mode === 'none' && !isLoopback(config.listen.host)) {
    throw new ConfigError(source, ['auth.mode: "none" is only allowed when listen.host is a loopback address']);
  }
  if (config.limits.defaultPageSize > config.limits.maxPageSize) {
    throw new ConfigError(source, ['limits.defaultPageSize: must not exceed limits.maxPageSize']);
  }
  if (config.auth.mode === 'token' && (config.auth.signingKey === undefined) === (config.auth.signingKeyFile === undefined)) {
    throw new ConfigError(source, ['auth: set exactly one of signingKey or signingKeyFile']);
  }
  return deepFreeze(config);
}

export async function loadRegistryConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<RegistryConfig> {
  const raw: unknown = parseYaml(await readFile(file, 'utf8')) ?? {};
  return parseRegistryConfig(resolvePaths(applyEnvOverrides(raw, env, REGISTRY_ENV_OVERRIDES), path.dirname(file)), file);
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Relative file paths in the config are relative to the config file. */
function resolvePaths(raw: unknown, baseDir: string): unknown {
  const copy = structuredClone(raw) as Record<string, Record<string, unknown> | undefined>;
  const fix = (section: Record<string, unknown> | undefined, key: string) => {
    const value = section?.[key];
    if (section && typeof value === 'string' && !path.isAbsolute(value) && !value.includes('://')) section[key] = path.resolve(baseDir, value);
  };
  fix(copy.metadata, 'path');
  fix(copy.auth, 'usersFile');
  fix(copy.auth, 'signingKeyFile');
  const storage = copy.storage as { module?: unknown; options?: Record<string, unknown> } | undefined;
  if (storage && typeof storage.module === 'string' && storage.module.startsWith('.')) storage.module = path.resolve(baseDir, storage.module);
  fix(storage?.options, 'privateKeyFile');
  return copy;
}
