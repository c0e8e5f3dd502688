import path from 'node:path';
import { z } from 'zod';
import { didSchema } from '../core/did.ts';
import { ConfigError, deepFreeze } from '../core/config.ts';

/**
 * The plugin's `store:` block in Verdaccio's config.yaml:
 *
 *   store:
 *     holdfast:
 *       did: did:plc:…              # the DID Verdaccio acts as at the hold
 *       metadata: { kind: sqlite, path: ./storage/holdfast.db }
 *       driver: { hold: { url, audience }, issuer, privateKeyFile, provider, … }
 */
export const pluginConfigSchema = z
  .object({
    did: didSchema.describe('The DID Verdaccio acts as at the hold: its owner or a crew member with write access.'),
    metadata: z
      .discriminatedUnion('kind', [
        z.object({ kind: z.literal('sqlite'), path: z.string().min(1).describe('The database file.') }).strict(),
        z
          .object({
            kind: z.literal('postgres'),
            url: z.string().min(1).describe('A `postgres://` connection URL.'),
            maxConnections: z.number().int().min(1).optional().describe("Connections the plugin's pool opens at most; default: 10."),
          })
          .strict(),
      ])
      .describe('Where package documents, the package list, the secret and tokens live; one database may serve several Verdaccio instances.'),
    driver: z.record(z.string(), z.unknown()).describe('The storage driver table above; the plugin sets `service: npm` unless it is given.'),
  })
  .strict();

/** The `store.holdfast` block as written in Verdaccio's config.yaml. */
export type HoldfastStoreConfig = z.input<typeof pluginConfigSchema>;
export type VerdaccioPluginConfig = Readonly<z.output<typeof pluginConfigSchema>>;

/** Validates without mutating; relative paths are relative to Verdaccio's config file. */
export function parsePluginConfig(input: unknown, configDir: string): VerdaccioPluginConfig {
  const result = pluginConfigSchema.safeParse(stripVerdaccioKeys(input));
  if (!result.success) {
    throw ConfigError.fromZod('store.holdfast', result.error.issues);
  }
  const config = structuredClone(result.data);
  if (config.metadata.kind === 'sqlite') config.metadata.path = path.resolve(configDir, config.metadata.path);
  const keyFile = config.driver.privateKeyFile;
  if (typeof keyFile === 'string') config.driver.privateKeyFile = path.resolve(configDir, keyFile);
  return deepFreeze(config);
}

/** Verdaccio merges its own config into a plugin's (legacy mode); keep only ours. */
function stripVerdaccioKeys(input: unknown): unknown {
  if (!input || typeof input !== 'object') return input;
  const { did, metadata, driver } = input as Record<string, unknown>;
  return { did, metadata, driver };
}
