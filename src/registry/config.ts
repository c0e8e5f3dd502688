import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { didSchema } from '../core/did.ts';
import { ConfigError, applyEnvOverrides, deepFreeze, listenSchema } from '../core/config.ts';
import { registryMetricsSchema } from '../core/metrics-endpoint.ts';
import { serverTimeoutsSchema } from '../core/http-limits.ts';
import { PATTERN_CHARACTERS } from './policies/glob.ts';
import { byteSizeSchema } from '../core/byte-size.ts';

const patternSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(PATTERN_CHARACTERS, 'a pattern holds the characters of names and tags and the wildcards * ** ?');

const immutableRuleSchema = z
  .object({
    repositories: patternSchema.describe('Repositories the rule covers: `*` matches within one path segment, `**` across segments.'),
    tags: z.array(patternSchema).min(1).describe('Tags that, once pushed, never move and cannot be deleted (e.g. `v*`).'),
  })
  .strict();

const retentionRuleSchema = z
  .object({
    repositories: patternSchema.describe('Repositories the rule covers; the first rule that matches a repository is the one applied to it.'),
    keepTags: z.array(patternSchema).default([]).describe('Tags always kept (e.g. `latest`, `v*`).'),
    keepLast: z.number().int().min(0).optional().describe('Keep the N most recently pushed tags of the repository.'),
    olderThanDays: z.number().int().min(1).optional().describe('Delete only tags pushed more than this many days ago; without it, every tag the rule does not keep is deleted.'),
    untaggedAfterHours: z.number().int().min(1).optional().describe('Delete untagged manifests (and the referrers and index children that go with them) pushed more than this many hours ago.'),
  })
  .strict()
  .refine((rule) => rule.keepTags.length > 0 || rule.keepLast !== undefined || rule.olderThanDays !== undefined || rule.untaggedAfterHours !== undefined, {
    message: 'a retention rule needs keepTags, keepLast, olderThanDays or untaggedAfterHours',
  });

/** The kinds of event (docs/EVENTS.md); the CloudEvents `type` is `dev.holdfast.` + the kind. */
export const EVENT_KINDS = ['manifest.pushed', 'manifest.deleted', 'tag.deleted', 'manifest.pulled', 'quota.exceeded', 'gc.completed'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const eventEndpointSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes, at most 63')
      .describe('What metrics, logs and `holdfast events` call the endpoint; never its URL, which may carry a secret.'),
    url: z
      .url({ protocol: /^https?$/ })
      .refine((value) => !/^[a-z]+:\/\/[^/]*@/i.test(value), 'no user name or password in the URL: use the signing secret')
      .describe('Where events are POSTed. Its host must not resolve to a loopback, private, link-local or metadata address unless `events.allowedNetworks` allows it.'),
    secret: z.string().min(32).optional().describe('The HMAC-SHA256 key that signs each delivery (at least 32 characters). Set this or `secretFile`.'),
    secretFile: z.string().min(1).optional().describe('A file holding `secret`.'),
    repositories: z.array(patternSchema).min(1).default(['**']).describe('Repositories whose events go to this endpoint.'),
    events: z
      .array(z.enum(EVENT_KINDS))
      .min(1)
      .default(['manifest.pushed', 'manifest.deleted', 'tag.deleted', 'quota.exceeded'])
      .describe('Which kinds it receives; `manifest.pulled` also needs `events.pulls.sampleRate`, and `gc.completed` (about the whole registry) is sent only where listed.'),
  })
  .strict()
  .refine((endpoint) => (endpoint.secret === undefined) !== (endpoint.secretFile === undefined), { message: 'set exactly one of secret or secretFile' });

const eventsSchema = z
  .object({
    source: z.string().min(1).optional().describe('The CloudEvents `source` of every event. Default: `publicUrl`.'),
    endpoints: z
      .array(eventEndpointSchema)
      .max(32)
      .default([])
      .refine((list) => new Set(list.map((endpoint) => endpoint.name)).size === list.length, { message: 'endpoint names must differ' })
      .describe('Receivers of the events (docs/EVENTS.md); none by default.'),
    allowedNetworks: z
      .array(z.string().min(1))
      .default([])
      .describe('Addresses or CIDRs an endpoint may reach although they are loopback, private or link-local (`10.0.0.0/8`). Checked again at every connection, against DNS rebinding.'),
    pulls: z
      .object({
        sampleRate: z.number().min(0).max(1).default(0).describe('The share of manifest GETs reported as `manifest.pulled` (0 to 1).'),
        maxPerSecond: z.number().int().min(1).max(10_000).default(20).describe('At most this many pull events per second per instance, however many pulls.'),
      })
      .strict()
      .prefault({}),
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).max(100).default(20).describe('Attempts per event and endpoint before it is dead.'),
        maxAgeHours: z.number().min(0.01).max(24 * 14).default(24).describe('An event still undelivered this long after it was queued is dead after its next failure.'),
        firstDelaySeconds: z.number().min(0.1).max(3600).default(2).describe('The wait after the first failure; it doubles after each one.'),
        maxDelaySeconds: z.number().min(1).max(86_400).default(1800).describe('The longest wait between attempts.'),
      })
      .strict()
      .prefault({}),
    maxQueued: z
      .number()
      .int()
      .min(2)
      .default(100_000)
      .describe('Pending events per endpoint (pulls and quota refusals stop at half of it); past it, new events for that endpoint are dropped and counted. Dead events past it are deleted, oldest first.'),
    maxQueuedPerNamespace: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe("Pending changes per endpoint from one namespace's repositories, and apart from them as many pulls and quota refusals, so one tenant cannot fill the queue for all."),
    keepDeliveredHours: z.number().min(0).max(24 * 90).default(24).describe('How long delivered events stay listed (never more than the newest 100,000 events).'),
    keepDeadDays: z.number().min(0).max(365).default(14).describe('How long dead events stay, to be listed and redelivered.'),
    concurrency: z.number().int().min(1).max(64).default(8).describe('Deliveries this instance makes at once.'),
    timeoutSeconds: z.number().int().min(1).max(60).default(10).describe("How long a receiver has to answer; then the attempt failed."),
    pollMilliseconds: z.number().int().min(50).max(60_000).default(1000).describe("How often this instance looks for events other instances queued (its own wake it at once)."),
  })
  .strict()
  .prefault({})
  .describe('Webhooks: CloudEvents from a durable outbox (docs/EVENTS.md).');


export const registryConfigSchema = z
  .object({
    listen: listenSchema(5000),
    publicUrl: z.url().optional().describe('The URL clients reach the registry at; the token realm (`/auth/token`) is built from it. Default: the listen address.'),
    storage: z
      .object({
        module: z.string().min(1).default('hold').describe('`hold` (the built-in driver), or a module specifier whose default export is `(options, { logger }) → driver`.'),
        options: z.record(z.string(), z.unknown()).default({}).describe("The driver's options; for `hold`, the storage driver table below."),
      })
      .strict(),
    blobs: z
      .object({
        delivery: z.enum(['redirect', 'proxy']).default('redirect').describe('`redirect`: a blob GET answers 307 to a presigned storage URL; `proxy`: the registry streams the bytes itself.'),
      })
      .strict()
      .default({ delivery: 'redirect' }),
    gc: z
      .object({
        did: didSchema.optional().describe('The DID garbage collection acts as at the hold (it needs write access there). Collection is off while unset.'),
        graceSeconds: z.number().int().min(0).default(86_400).describe('A blob unreferenced for this long is deleted; younger ones may belong to a push under way.'),
        intervalSeconds: z.number().int().min(0).default(3600).describe('Seconds between passes inside the registry; 0 runs passes only from `holdfast gc`.'),
        deletingTimeoutSeconds: z
          .number()
          .int()
          .min(60)
          .default(600)
          .describe('A blob deletion still unfinished after this long is taken to be abandoned, and another pass takes it over. Keep it well above the longest a release can take (docs/GC.md).'),
        releaseConcurrency: z.number().int().min(1).max(64).default(8).describe('Blobs a pass releases at the hold at once; each is still decided in a transaction of its own.'),
      })
      .strict()
      .prefault({})
      .describe('Online garbage collection (docs/GC.md).'),
    policies: z
      .object({
        immutableTags: z.array(immutableRuleSchema).default([]).describe('Tags that never move once pushed: a PUT to another digest or a DELETE of the tag or its manifest is refused with 403 DENIED (docs/POLICIES.md).'),
        namespaceQuotas: z
          .array(
            z
              .object({
                namespaces: patternSchema.describe('Namespaces (the first segment of a repository name, e.g. a user\'s handle) the limit covers; the first rule that matches applies.'),
                limit: byteSizeSchema.describe('Unique blob bytes linked into the namespace\'s repositories (`10GB`, `500MiB`, or bytes).'),
              })
              .strict(),
          )
          .default([])
          .describe("Limits per namespace in this registry, beside the hold's per-DID quotas: refused with 403 DENIED at an upload's start when at the limit, and at the commit or mount that would pass it (docs/POLICIES.md)."),
        retention: z.array(retentionRuleSchema).default([]).describe('Which tags and untagged manifests to delete, per repository pattern; run before each GC pass and by `holdfast retention` (docs/POLICIES.md).'),
      })
      .strict()
      .prefault({})
      .describe('Immutable tags and retention (docs/POLICIES.md).'),
    ui: z
      .object({
        enabled: z.boolean().default(true).describe('Serve the web pages under `/ui/` (docs/UI.md).'),
        sessionHours: z.number().min(0.1).max(24 * 7).default(8).describe('How long a web login lasts; the user is checked again on every page.'),
      })
      .strict()
      .prefault({})
      .describe('The web front end: browse repositories, tags and manifests, see storage, delete as the owner.'),
    metadata: z
      .discriminatedUnion('kind', [
        z.object({ kind: z.literal('sqlite'), path: z.string().min(1).default('./data/registry.db').describe('The database file (WAL mode).') }).strict(),
        z
          .object({
            kind: z.literal('postgres'),
            url: z.string().min(1).describe('A `postgres://` connection URL; keep its password in the environment.'),
            maxConnections: z.number().int().min(1).max(200).default(10).describe("Connections this instance's pool opens at most."),
          })
          .strict(),
      ])
      .describe('Where tags, manifests, blob links and uploads are recorded: `sqlite` for one instance, `postgres` for several.'),
    auth: z
      .discriminatedUnion('mode', [
        z.object({ mode: z.literal('none'), did: didSchema.describe('The DID every request acts as.') }).strict(),
        z
          .object({
            mode: z.literal('token'),
            service: z.string().min(1).default('holdfast').describe('The `service` of challenges and the `aud` of registry tokens.'),
            issuer: z.string().min(1).default('holdfast-registry').describe('The `iss` of registry tokens.'),
            signingKey: z.string().min(1).optional().describe('The PEM (PKCS#8, Ed25519 or P-256) that signs client tokens. Set this or `signingKeyFile`.'),
            signingKeyFile: z.string().min(1).optional().describe('A file holding `signingKey`.'),
            usersFile: z
              .string()
              .min(1)
              .optional()
              .describe('A users file (its table is below), brought into the metadata database at each start: its users are added, updated, and removed when they leave it. Users added with `holdfast user` live in the database alone.'),
            tokenTtlSeconds: z.number().int().min(30).max(3600).default(300).describe('How long a client token lives.'),
            anonymousPull: z.boolean().default(true).describe('Whether a client without credentials may pull (public repositories only).'),
            defaultVisibility: z
              .enum(['public', 'private'])
              .default('public')
              .describe('Whether a repository is public or private when neither it nor its namespace says (`holdfast access set`). A private one exists only for its owner and those granted pull.'),
            anonymousDid: didSchema.describe('The DID presented to the hold for anonymous pulls.'),
            login: z
              .object({
                failuresPerAddress: z.number().int().min(1).default(10).describe('Failed logins per client address within `windowSeconds`; then 429 until the window moves on.'),
                failuresPerUser: z.number().int().min(1).default(10).describe("Failed logins per user name within `windowSeconds`; the user's cached correct password still works."),
                windowSeconds: z.number().int().min(1).default(300).describe('The window the two counts above run over.'),
                concurrentPerAddress: z.number().int().min(1).default(8).describe('Password checks one client address may have running or queued at once.'),
                maxQueued: z.number().int().min(1).default(64).describe('Password checks queued for the hashing threads at once; past this, 429.'),
                threads: z.number().int().min(1).max(16).default(1).describe('Threads that run bcrypt, off the event loop.'),
              })
              .strict()
              .prefault({}),
          })
          .strict(),
      ])
      .describe('`token`: Docker token auth against the users file; `none`: no authentication, only on a loopback address.'),
    trustProxy: z
      .union([z.literal(false), z.array(z.string().min(1)).min(1)])
      .default(false)
      .describe('Take the client address from `X-Forwarded-For` when the connection comes from these proxies (addresses or CIDRs). Never "any": a client could then name any address.'),
    limits: z
      .object({
        http: serverTimeoutsSchema.prefault({}),
        maxOpenUploadsPerDid: z.number().int().min(1).default(100).describe('Upload sessions one DID may have open (created within `uploadWindowSeconds`); past this, 429.'),
        uploadWindowSeconds: z.number().int().min(60).default(86_400).describe("Sessions older than this no longer count (the hold expires them after its `uploadTtlSeconds`)."),
        maxTagsPerRepository: z.number().int().min(1).default(100_000).describe('Tags one repository may have; a manifest PUT that would add one more is refused.'),
        defaultPageSize: z.number().int().min(1).default(1000).describe('Tag and catalog pages without `?n=`.'),
        maxPageSize: z.number().int().min(1).default(10_000).describe('The most `?n=` may ask for.'),
        uploadLeaseSeconds: z
          .number()
          .int()
          .min(1)
          .max(600)
          .default(15)
          .describe('One request at a time writes an upload, across every instance: it holds the upload this long, renewed while it works. A registry that dies mid-request keeps the upload from others this long.'),
        uploadWaitSeconds: z.number().int().min(0).max(600).default(30).describe('How long a request waits for another request writing the same upload; then 429.'),
      })
      .strict()
      .prefault({})
      .describe('Bounds on what one request or one account may hold (docs/SECURITY.md).'),
    metrics: registryMetricsSchema,
    events: eventsSchema,
  })
  .strict();

export type RegistryConfig = Readonly<z.output<typeof registryConfigSchema>>;

export const REGISTRY_ENV_OVERRIDES = Object.freeze({
  HOLDFAST_REGISTRY_HOST: { path: ['listen', 'host'], type: 'string' as const },
  HOLDFAST_REGISTRY_PORT: { path: ['listen', 'port'], type: 'number' as const },
  HOLDFAST_REGISTRY_PUBLIC_URL: { path: ['publicUrl'], type: 'string' as const },
  HOLDFAST_DATABASE_URL: { path: ['metadata', 'url'], type: 'string' as const },
  HOLDFAST_REGISTRY_METRICS_TOKEN: { path: ['metrics', 'bearerToken'], type: 'string' as const },
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
  fix(copy.metrics, 'bearerTokenFile');
  const events = copy.events as { endpoints?: unknown } | undefined;
  if (Array.isArray(events?.endpoints)) for (const endpoint of events.endpoints) if (endpoint && typeof endpoint === 'object') fix(endpoint as Record<string, unknown>, 'secretFile');
  const storage = copy.storage as { module?: unknown; options?: Record<string, unknown> } | undefined;
  if (storage && typeof storage.module === 'string' && storage.module.startsWith('.')) storage.module = path.resolve(baseDir, storage.module);
  fix(storage?.options, 'privateKeyFile');
  return copy;
}
