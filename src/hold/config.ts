import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, applyEnvOverrides, deepFreeze } from '../core/config.ts';
import { serverTimeoutsSchema } from '../core/http-limits.ts';
import { MAX_SERVICE_TOKEN_TTL_SECONDS } from '../core/service-token.ts';
import { PROVIDER_NAMES } from '../protocol/providers.ts';
import { MAX_SINGLE_COPY_BYTES, MIN_PART_SIZE } from '../protocol/limits.ts';

const did = z.string().regex(/^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/, 'must be a DID such as did:plc:abc123');
const MiB = 1024 * 1024;

const s3Schema = z
  .object({
    provider: z.enum(PROVIDER_NAMES).default('aws'),
    bucket: z.string().min(3).max(63),
    region: z.string().min(1).default('us-east-1'),
    endpoint: z.url().optional(),
    publicEndpoint: z.url().optional(),
    forcePathStyle: z.boolean().optional(),
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    sessionToken: z.string().min(1).optional(),
    prefix: z.string().default(''),
    copyPartThreshold: z.number().int().min(MIN_PART_SIZE).max(MAX_SINGLE_COPY_BYTES).default(MAX_SINGLE_COPY_BYTES),
    copyPartSize: z.number().int().min(MIN_PART_SIZE).max(MAX_SINGLE_COPY_BYTES).default(512 * MiB),
    copyConcurrency: z.number().int().min(1).max(32).default(4),
    /**
     * How a commit publishes a blob at its digest: `reference` leaves the
     * bytes where they were uploaded and writes a reference at the digest
     * (constant time; needs conditional writes), `copy` copies them there
     * (time grows with size; the bucket stays in distribution's layout).
     */
    publish: z.enum(['reference', 'copy']).default('reference'),
    requestTimeoutMs: z.number().int().min(1000).default(30_000),
    longRequestTimeoutMs: z.number().int().min(1000).default(15 * 60_000),
  })
  .strict()
  .refine((s3) => (s3.accessKeyId === undefined) === (s3.secretAccessKey === undefined), {
    message: 'accessKeyId and secretAccessKey must be set together',
    path: ['secretAccessKey'],
  });

const fsSchema = z
  .object({
    root: z.string().min(1).default('./data/hold'),
    prefix: z.string().default(''),
    signingSecret: z.string().min(16).optional(),
  })
  .strict();

const trustedIssuerSchema = z
  .object({
    // No control characters: a claimant names a service after a NUL (`claimantOf`).
    issuer: z
      .string()
      .min(1)
      .refine((issuer) => ![...issuer].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f), 'an issuer has no control characters'),
    publicKey: z.string().min(1).optional(),
    publicKeyFile: z.string().min(1).optional(),
  })
  .strict()
  .refine((issuer) => (issuer.publicKey === undefined) !== (issuer.publicKeyFile === undefined), {
    message: 'set exactly one of publicKey or publicKeyFile',
  });

export const holdConfigSchema = z
  .object({
    listen: z.object({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(8080) }).strict().default({ host: '127.0.0.1', port: 8080 }),
    /** The hold's identity: service tokens must name it in `aud`. */
    identity: z.string().min(1),
    /** Base URL clients use to reach this hold; the fs backend signs URLs under it. */
    publicUrl: z.url().optional(),
    owner: did,
    crew: z.array(z.object({ did, access: z.enum(['read', 'write']) }).strict()).default([]),
    publicRead: z.boolean().default(false),
    trustedIssuers: z.array(trustedIssuerSchema).min(1),
    tokenMaxLifetimeSeconds: z.number().int().min(1).max(MAX_SERVICE_TOKEN_TTL_SECONDS).default(MAX_SERVICE_TOKEN_TTL_SECONDS),
    /** How far a registry's clock may differ from the hold's when tokens are checked. */
    tokenClockSkewSeconds: z.number().int().min(0).max(60).default(5),
    presignTtlSeconds: z.number().int().min(1).max(900).default(900),
    uploadTtlSeconds: z.number().int().min(1).default(86_400),
    janitorIntervalSeconds: z.number().int().min(0).default(3600),
    /**
     * How long a blob deletion holds its digest's lease. Pushes of that digest
     * wait for it; one whose hold process died blocks them this long at most.
     */
    deletionLeaseSeconds: z.number().int().min(30).max(3600).default(300),
    /** Bounds on what one request may hold (docs/SECURITY.md). */
    limits: z.object({ http: serverTimeoutsSchema.prefault({}) }).strict().prefault({}),
    storage: z.discriminatedUnion('backend', [
      z.object({ backend: z.literal('fs'), fs: fsSchema.default({ root: './data/hold', prefix: '' }) }).strict(),
      z.object({ backend: z.literal('s3'), s3: s3Schema }).strict(),
    ]),
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
  return deepFreeze(result.data);
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
