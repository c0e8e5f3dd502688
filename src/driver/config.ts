import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { PROVIDER_NAMES, PROVIDER_PROFILES, type ProviderName } from '../protocol/providers.ts';
import { ConfigError, deepFreeze } from '../core/config.ts';
import { SERVICE_NAME } from '../core/service-token.ts';
import { DEFAULT_RETRY } from './retry.ts';
import { MAX_CONFIGURED_PART_SIZE, MIN_CONFIGURED_PART_SIZE } from './part-size.ts';

const MiB = 1024 * 1024;

export const driverConfigSchema = z
  .object({
    hold: z
      .object({
        url: z.url().describe("The hold's base URL."),
        audience: z.string().min(1).describe("The hold's `identity`: the `aud` of every service token."),
      })
      .strict(),
    issuer: z.string().min(1).describe("This registry's identity: the `iss` of its service tokens, one of the hold's `trustedIssuers`."),
    service: z
      .string()
      .regex(SERVICE_NAME, 'service is a lowercase name of up to 32 letters, digits and dashes')
      .optional()
      .describe("Which of the issuer's services this is (the tokens' `svc`): the hold keeps claims per issuer and service, so two services signing as one issuer keep their own. Unset for a registry; the Verdaccio plugin sets `npm`."),
    privateKey: z.string().min(1).optional().describe('The PEM private key that signs service tokens. Set this or `privateKeyFile`.'),
    privateKeyFile: z.string().min(1).optional().describe('A file holding `privateKey`.'),
    provider: z.enum(PROVIDER_NAMES).default('minio').describe("The provider behind the hold (its `storage.s3.provider`): the part-size preset and the equal-parts rule."),
    partSize: z
      .number()
      .int()
      .min(MIN_CONFIGURED_PART_SIZE, `partSize must be from ${MIN_CONFIGURED_PART_SIZE} (5 MiB) to ${MAX_CONFIGURED_PART_SIZE} (64 MiB) bytes`)
      .max(MAX_CONFIGURED_PART_SIZE, `partSize must be from ${MIN_CONFIGURED_PART_SIZE} (5 MiB) to ${MAX_CONFIGURED_PART_SIZE} (64 MiB) bytes`)
      .optional()
      .describe("Bytes per multipart part; default: the provider's preset."),
    maxPartsInFlight: z.number().int().min(1).max(32).default(4).describe('Parts one upload sends to storage at once.'),
    memoryBudget: z.number().int().min(5 * MiB).default(512 * MiB).describe('Bytes of upload buffers all uploads of this process may hold.'),
    partTimeoutMs: z.number().int().min(1000).default(120_000).describe('Timeout of one transfer through a presigned URL: a part or staged segment PUT, a read back.'),
    memoryPerDid: z.number().int().min(1).optional().describe("The most of the memory budget one DID's uploads may hold; default: a quarter of it, at least two parts."),
    bufferWaitMs: z.number().int().min(1).default(10_000).describe('How long a write waits for buffer memory before the request fails with 429 (the client retries).'),
    maxCachedWriters: z.number().int().min(1).default(1000).describe('Upload writers kept in memory between requests; one that is let go is rebuilt from the hold.'),
    adoptChunkSize: z.boolean().optional().describe("Take a fixed-chunk client's chunk size (5 MiB or more) as the part size; default: on unless the provider wants equal or large parts."),
    maxCachedUrls: z.number().int().min(0).default(10_000).describe('Presigned pull URLs kept for reuse (each for half its lifetime); 0 turns the cache off.'),
    retry: z
      .object({
        attempts: z.number().int().min(1).max(20).default(DEFAULT_RETRY.attempts).describe('Tries of a hold call or a storage transfer that failed to connect or got an answer worth retrying (the hold: 502, 503, 504; storage: those, 429 and 500).'),
        baseDelayMs: z.number().int().min(0).default(DEFAULT_RETRY.baseDelayMs).describe('The backoff: a try waits a random time up to this × 2^try, at most `maxDelayMs`.'),
        maxDelayMs: z.number().int().min(0).default(DEFAULT_RETRY.maxDelayMs).describe('The longest delay between tries.'),
      })
      .strict()
      .default({ ...DEFAULT_RETRY }),
  })
  .strict()
  .refine((config) => (config.privateKey === undefined) !== (config.privateKeyFile === undefined), {
    message: 'set exactly one of privateKey or privateKeyFile',
    path: ['privateKey'],
  });

export type DriverConfigInput = z.input<typeof driverConfigSchema>;

export interface DriverConfig extends Readonly<Omit<z.output<typeof driverConfigSchema>, 'partSize' | 'privateKeyFile' | 'adoptChunkSize' | 'memoryPerDid'>> {
  /** Resolved from the provider preset when not configured. */
  readonly partSize: number;
  readonly memoryPerDid: number;
  readonly adoptChunkSize: boolean;
  readonly equalParts: boolean;
  readonly privateKey: string;
}

/** Validates, applies the provider preset, reads the key file, and freezes. */
export function parseDriverConfig(input: unknown): DriverConfig {
  const result = driverConfigSchema.safeParse(input);
  if (!result.success) {
    throw ConfigError.fromZod('storage driver', result.error.issues);
  }
  const { privateKeyFile, partSize, adoptChunkSize, memoryPerDid, ...rest } = result.data;
  const profile = PROVIDER_PROFILES[rest.provider as ProviderName];
  const resolvedPartSize = partSize ?? profile.defaultPartSize;
  if (rest.memoryBudget < resolvedPartSize) {
    throw new ConfigError('storage driver', [`memoryBudget: must be at least one part (${resolvedPartSize} bytes)`]);
  }
  return deepFreeze({
    ...rest,
    partSize: resolvedPartSize,
    memoryPerDid: Math.min(rest.memoryBudget, memoryPerDid ?? Math.max(Math.floor(rest.memoryBudget / 4), 2 * resolvedPartSize)),
    equalParts: profile.equalParts,
    // Storj stores a part as one segment: small parts cost more there.
    adoptChunkSize: adoptChunkSize ?? (!profile.equalParts && profile.name !== 'storj'),
    privateKey: rest.privateKey ?? readFileSync(privateKeyFile as string, 'utf8'),
  });
}
