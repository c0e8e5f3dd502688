import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { didSchema } from '../core/did.ts';
import { ConfigError, applyEnvOverrides, deepFreeze, listenSchema } from '../core/config.ts';
import { holdMetricsSchema } from '../core/metrics-endpoint.ts';
import { serverTimeoutsSchema } from '../core/http-limits.ts';
import { MAX_SERVICE_TOKEN_TTL_SECONDS } from '../core/service-token.ts';
import { PROVIDER_NAMES } from '../protocol/providers.ts';
import { MAX_SINGLE_COPY_BYTES, MIN_PART_SIZE } from '../protocol/limits.ts';
import { byteSizeSchema } from '../core/byte-size.ts';

const MiB = 1024 * 1024;

const s3Schema = z
  .object({
    provider: z.enum(PROVIDER_NAMES).default('aws').describe("The S3 implementation behind the bucket: its rules for parts and conditional writes (docs/PRESIGNED_URLS.md)."),
    bucket: z.string().min(3).max(63).describe('The bucket blobs and uploads live in.'),
    region: z.string().min(1).default('us-east-1').describe("The bucket's region."),
    endpoint: z.url().optional().describe('The S3 endpoint the hold calls; default: AWS for the region.'),
    publicEndpoint: z.url().optional().describe('The endpoint presigned URLs name, when clients reach storage at another address than the hold does.'),
    forcePathStyle: z.boolean().optional().describe("Path-style URLs (`endpoint/bucket/key`); default: on for every provider but AWS."),
    accessKeyId: z.string().min(1).optional().describe('The access key; with `secretAccessKey`. Default: the AWS SDK\'s credential chain.'),
    secretAccessKey: z.string().min(1).optional().describe('The secret key; keep it in the environment.'),
    sessionToken: z.string().min(1).optional().describe('A session token for temporary credentials.'),
    prefix: z.string().default('').describe('A key prefix, so that several holds can share one bucket.'),
    copyPartThreshold: z.number().int().min(MIN_PART_SIZE).max(MAX_SINGLE_COPY_BYTES).default(MAX_SINGLE_COPY_BYTES).describe('Objects larger than this are copied part by part (`publish: copy`).'),
    copyPartSize: z.number().int().min(MIN_PART_SIZE).max(MAX_SINGLE_COPY_BYTES).default(512 * MiB).describe('The part size of a copy part by part.'),
    copyConcurrency: z.number().int().min(1).max(32).default(4).describe('Parts one copy sends at once.'),
    publish: z
      .enum(['reference', 'copy'])
      .default('reference')
      .describe(
        "How a commit publishes a blob at its digest: `reference` leaves the bytes where they were uploaded and writes a reference at the digest (constant time; needs conditional writes); `copy` copies them there (time grows with size; the bucket keeps distribution's layout).",
      ),
    requestTimeoutMs: z.number().int().min(1000).default(30_000).describe('Timeout of one call to storage.'),
    longRequestTimeoutMs: z.number().int().min(1000).default(15 * 60_000).describe('Timeout of a call that takes time by its nature: completing a multipart upload, a copy.'),
  })
  .strict()
  .refine((s3) => (s3.accessKeyId === undefined) === (s3.secretAccessKey === undefined), {
    message: 'accessKeyId and secretAccessKey must be set together',
    path: ['secretAccessKey'],
  });

const fsSchema = z
  .object({
    root: z.string().min(1).default('./data/hold').describe('The directory blobs and uploads live in.'),
    prefix: z.string().default('').describe('A key prefix under `root`.'),
    signingSecret: z.string().min(16).optional().describe('The HMAC key that signs upload and download URLs; default: random per process, so URLs die with it.'),
  })
  .strict();

const trustedIssuerSchema = z
  .object({
    // No control characters: a claimant names a service after a NUL (`claimantOf`).
    issuer: z
      .string()
      .min(1)
      .refine((issuer) => ![...issuer].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f), 'an issuer has no control characters')
      .describe("A registry's identity: the `iss` of its service tokens."),
    publicKey: z.string().min(1).optional().describe("The PEM public key of the issuer's signing key. Set this or `publicKeyFile`."),
    publicKeyFile: z.string().min(1).optional().describe('A file holding `publicKey`.'),
  })
  .strict()
  .refine((issuer) => (issuer.publicKey === undefined) !== (issuer.publicKeyFile === undefined), {
    message: 'set exactly one of publicKey or publicKeyFile',
  });

const quotasSchema = z
  .object({
    tiers: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a tier name is lowercase letters, digits, - and _'), byteSizeSchema).describe('Named limits: unique blob bytes one DID may store here (`5GB`, `500MiB`, or bytes).'),
    defaultTier: z.string().optional().describe('The tier of every DID that may write here and has none of its own; without it, they are unlimited. The owner is always unlimited.'),
  })
  .strict()
  .refine((quotas) => quotas.defaultTier === undefined || Object.hasOwn(quotas.tiers, quotas.defaultTier), { message: 'defaultTier must name one of tiers', path: ['defaultTier'] });

export const holdConfigSchema = z
  .object({
    listen: listenSchema(8080),
    identity: z.string().min(1).describe("The hold's identity: service tokens must name it in `aud` (a registry's `hold.audience`)."),
    publicUrl: z.url().optional().describe('The URL clients reach this hold at; the fs backend signs its URLs under it. Default: the listen address.'),
    owner: didSchema.describe('The DID that owns this hold: it may read and write.'),
    crew: z
      .array(
        z
          .object({
            did: didSchema.describe('A crew member.'),
            access: z.enum(['read', 'write']).describe('What the member may do.'),
            tier: z.string().optional().describe('Its quota tier (one of `quotas.tiers`); default: `quotas.defaultTier`.'),
          })
          .strict(),
      )
      .default([])
      .describe('Other DIDs that may read, or read and write.'),
    publicRead: z.boolean().default(false).describe('Whether any DID may read (pull) blobs.'),
    quotas: quotasSchema.optional().describe('Storage limits per DID, across every registry using this hold (docs/POLICIES.md). Without it, nobody is limited.'),
    trustedIssuers: z.array(trustedIssuerSchema).min(1).describe('The registries (and Verdaccio plugins) whose service tokens this hold accepts.'),
    tokenMaxLifetimeSeconds: z
      .number()
      .int()
      .min(1)
      .max(MAX_SERVICE_TOKEN_TTL_SECONDS)
      .default(MAX_SERVICE_TOKEN_TTL_SECONDS)
      .describe('The longest lifetime (`exp` − `iat`) a service token may claim.'),
    tokenClockSkewSeconds: z.number().int().min(0).max(60).default(5).describe("How far a registry's clock may differ from the hold's when tokens are checked."),
    presignTtlSeconds: z.number().int().min(1).max(900).default(900).describe('How long a presigned URL is valid.'),
    uploadTtlSeconds: z.number().int().min(1).default(86_400).describe('An upload idle this long is aborted by the janitor.'),
    janitorIntervalSeconds: z.number().int().min(0).default(3600).describe('Seconds between janitor passes (idle uploads, deletions whose hold process died, objects written after their upload ended); 0 turns it off.'),
    deletionLeaseSeconds: z
      .number()
      .int()
      .min(30)
      .max(3600)
      .default(300)
      .describe("How long a blob deletion holds its digest's lease. Pushes of that digest wait for it; one whose hold process died blocks them this long at most."),
    limits: z.object({ http: serverTimeoutsSchema.prefault({}) }).strict().prefault({}).describe('Bounds on what one request may hold (docs/SECURITY.md).'),
    metrics: holdMetricsSchema,
    storage: z
      .discriminatedUnion('backend', [
        z.object({ backend: z.literal('fs'), fs: fsSchema.default({ root: './data/hold', prefix: '' }) }).strict(),
        z.object({ backend: z.literal('s3'), s3: s3Schema }).strict(),
      ])
      .describe('`fs`: a local directory (the embedded default); `s3`: an S3 bucket.'),
  })
  .strict();

export type HoldConfigInput = z.input<typeof holdConfigSchema>;
export type HoldConfig = Readonly<z.output<typeof holdConfigSchema>>;

/**
 * Environment variables that override config keys. Secrets belong here rather
 * than in the file.
 */
export const HOLD_ENV_OVERRIDES: Readonly<Record<string, { path: readonly string[]; type: 'string' | 'number' | 'boolean' }>> = Object.freeze({
  HOLDFAST_HOLD_HOST: { path: ['listen', 'host'], type: 'string' },
  HOLDFAST_HOLD_PORT: { path: ['listen', 'port'], type: 'number' },
  HOLDFAST_HOLD_PUBLIC_URL: { path: ['publicUrl'], type: 'string' },
  HOLDFAST_HOLD_PUBLIC_READ: { path: ['publicRead'], type: 'boolean' },
  HOLDFAST_HOLD_METRICS_TOKEN: { path: ['metrics', 'bearerToken'], type: 'string' },
  HOLDFAST_S3_ENDPOINT: { path: ['storage', 's3', 'endpoint'], type: 'string' },
  HOLDFAST_S3_PUBLIC_ENDPOINT: { path: ['storage', 's3', 'publicEndpoint'], type: 'string' },
  HOLDFAST_S3_BUCKET: { path: ['storage', 's3', 'bucket'], type: 'string' },
  HOLDFAST_S3_REGION: { path: ['storage', 's3', 'region'], type: 'string' },
  HOLDFAST_S3_ACCESS_KEY_ID: { path: ['storage', 's3', 'accessKeyId'], type: 'string' },
  HOLDFAST_S3_SECRET_ACCESS_KEY: { path: ['storage', 's3', 'secretAccessKey'], type: 'string' },
  HOLDFAST_FS_SIGNING_SECRET: { path: ['storage', 'fs', 'signingSecret'], type: 'string' },
});

/** Validates and freezes a config object; never mutates `input`. */
export function parseHoldConfig(input: unknown, source = 'config'): HoldConfig {
  const result = holdConfigSchema.safeParse(input);
  if (!result.success) {
    throw ConfigError.fromZod(source, result.error.issues);
  }
  const config = result.data;
  const unknownTiers = config.crew.filter((member) => member.tier !== undefined && !(config.quotas && Object.hasOwn(config.quotas.tiers, member.tier)));
  if (unknownTiers.length > 0) throw new ConfigError(source, unknownTiers.map((member) => `crew: ${member.did} names tier ${member.tier}, which quotas.tiers does not define`));
  return deepFreeze(config);
}

export async function loadHoldConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<HoldConfig> {
  const text = await readFile(file, 'utf8');
  const raw: unknown = parseYaml(text) ?? {};
  const withEnv = applyEnvOverrides(raw, env, HOLD_ENV_OVERRIDES);
  const config = parseHoldConfig(withEnv, file);
  return resolveKeyFiles(config, path.dirname(file));
}

/** Public keys for each trusted issuer, reading `publicKeyFile` relative to the config. */
export async function trustedIssuerKeys(config: HoldConfig, baseDir = process.cwd()): Promise<{ issuer: string; publicKey: string }[]> {
  return Promise.all(
    config.trustedIssuers.map(async (trusted) => ({
      issuer: trusted.issuer,
      publicKey: trusted.publicKey ?? (await readFile(path.resolve(baseDir, trusted.publicKeyFile as string), 'utf8')),
    })),
  );
}

async function resolveKeyFiles(config: HoldConfig, baseDir: string): Promise<HoldConfig> {
  const issuers = await trustedIssuerKeys(config, baseDir);
  return deepFreeze({ ...structuredClone(config), trustedIssuers: issuers });
}
