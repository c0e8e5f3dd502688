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
    hold: z.object({ url: z.url(), audience: z.string().min(1) }).strict(),
    /** The registry's identity: the `iss` of its service tokens. */
    issuer: z.string().min(1),
    /**
     * Which of the issuer's services this is (the tokens' `svc`): the hold
     * keeps claims per issuer and service, so two services signing as one
     * issuer keep their own. Unset for a registry; `npm` for Verdaccio.
     */
    service: z.string().regex(SERVICE_NAME, 'service is a lowercase name of up to 32 letters, digits and dashes').optional(),
    privateKey: z.string().min(1).optional(),
    privateKeyFile: z.string().min(1).optional(),
    /** The provider profile behind the hold: part-size preset and equal-part rule. */
    provider: z.enum(PROVIDER_NAMES).default('minio'),
    partSize: z
      .number()
      .int()
      .min(MIN_CONFIGURED_PART_SIZE, `partSize must be from ${MIN_CONFIGURED_PART_SIZE} (5 MiB) to ${MAX_CONFIGURED_PART_SIZE} (64 MiB) bytes`)
      .max(MAX_CONFIGURED_PART_SIZE, `partSize must be from ${MIN_CONFIGURED_PART_SIZE} (5 MiB) to ${MAX_CONFIGURED_PART_SIZE} (64 MiB) bytes`)
      .optional(),
    maxPartsInFlight: z.number().int().min(1).max(32).default(4),
    memoryBudget: z.number().int().min(5 * MiB).default(512 * MiB),
    partTimeoutMs: z.number().int().min(1000).default(120_000),
    /** The most of the memory budget one DID's uploads may hold; default: a quarter of it, at least two parts. */
    memoryPerDid: z.number().int().min(1).optional(),
    /** How long a write waits for buffer memory before the request fails with 429 (the client retries). */
    bufferWaitMs: z.number().int().min(1).default(10_000),
    maxCachedWriters: z.number().int().min(1).default(1000),
    /** Take a fixed-chunk client's chunk size (≥ 5 MiB) as the part size; default: on unless the provider wants equal or large parts. */
    adoptChunkSize: z.boolean().optional(),
    /** Presigned pull URLs kept for reuse (each for half its lifetime); 0 turns the cache off. */
    maxCachedUrls: z.number().int().min(0).default(10_000),
    retry: z
      .object({
        attempts: z.number().int().min(1).max(20).default(DEFAULT_RETRY.attempts),
        baseDelayMs: z.number().int().min(0).default(DEFAULT_RETRY.baseDelayMs),
        maxDelayMs: z.number().int().min(0).default(DEFAULT_RETRY.maxDelayMs),
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
