import path from 'node:path';
import type {
  Callback,
  Config,
  IPluginStorage,
  Logger,
  Package,
  PluginOptions,
  Token,
  TokenFilter,
  onEndSearchPackage,
  onSearchPackage,
  onValidatePackage,
} from '@verdaccio/types';
import createHoldDriver, { isDriverError, type HoldDriver } from '../driver/index.ts';
import type { WriterStepHook } from '../driver/writer-steps.ts';
import { KeyedMutex } from '../core/keyed-mutex.ts';
import { openDatabase, type Db } from '../metadata/db.ts';
import { PackageStore } from '../metadata/npm/packages.ts';
import { parsePluginConfig, type HoldfastStoreConfig, type VerdaccioPluginConfig } from './config.ts';
import { HoldfastPackageStorage, type StorageBackends } from './package-storage.ts';

export type { HoldfastStoreConfig } from './config.ts';

/** The plugin's service name in its service tokens (the hold keeps its claims apart from a registry's). */
export const NPM_SERVICE = 'npm';

/** How many claims the one-time claiming below sends at once. */
const CLAIMS_AT_ONCE = 8;
const CLAIMS_SETTING = 'claims_service';

/**
 * Claims every recorded tarball's bytes under the plugin's own service,
 * once per database: before claims were kept per service, the plugin's
 * claims were its issuer's, and a registry signing as the same issuer could
 * release them. Repeating it (several instances at once) is harmless.
 */
async function claimOwnTarballs({ packages, blobs }: StorageBackends): Promise<void> {
  if ((await packages.getSetting(CLAIMS_SETTING)) === NPM_SERVICE) return;
  const digests = await packages.tarballDigests();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CLAIMS_AT_ONCE, digests.length) }, async () => {
      while (next < digests.length) {
        const digest = digests[next++] as string;
        await blobs.claim(digest).catch((err: unknown) => {
          if (!isDriverError(err, 'BLOB_UNKNOWN')) throw err;
        });
      }
    }),
  );
  await packages.setSetting(CLAIMS_SETTING, NPM_SERVICE);
}

/**
 * Verdaccio 6 storage plugin (`IPluginStorage` of @verdaccio/types 10, the
 * legacy contract Verdaccio 6 loads `store:` plugins with). Package documents,
 * the package list, the secret and tokens live in the shared metadata
 * database (SQLite or Postgres), so every Verdaccio sharing it sees the same
 * registry; tarballs go through the Holdfast driver: multipart through the
 * hold, digest-verified, durable.
 *
 * Verdaccio constructs it with its `store.holdfast` block (merged with its own
 * config) and `{ config, logger }`.
 */
export default class HoldfastStorage implements IPluginStorage<HoldfastStoreConfig> {
  /** What Verdaccio passed: the `store.holdfast` block within Verdaccio's config. */
  readonly config: HoldfastStoreConfig & Config;
  readonly logger: Logger;
  /** The `store.holdfast` block, validated, paths resolved against Verdaccio's config file. */
  readonly settings: VerdaccioPluginConfig;
  readonly #ready: Promise<StorageBackends & { db: Db; driver: HoldDriver }>;
  readonly #locks = new KeyedMutex();
  readonly #claiming: Promise<void>;

  /** `testHooks` is for tests only; Verdaccio passes two arguments. */
  constructor(config: HoldfastStoreConfig & Partial<Config>, options: PluginOptions<HoldfastStoreConfig>, testHooks: { writerStep?: WriterStepHook } = {}) {
    const configDir = options.config.self_path ? path.dirname(options.config.self_path) : process.cwd();
    this.settings = parsePluginConfig(config, configDir);
    this.config = config as HoldfastStoreConfig & Config;
    this.logger = options.logger;
    const settings = this.settings;
    this.#ready = (async () => {
      const db = await openDatabase(settings.metadata);
      // Claims at the hold are kept per issuer and service: the plugin's are its own even if it signs as a registry does.
      const driver = createHoldDriver({ service: NPM_SERVICE, ...settings.driver }, testHooks.writerStep ? { onStep: testHooks.writerStep } : {});
      return { db, packages: new PackageStore(db), blobs: driver.blobStore(settings.did), driver };
    })();
    this.#ready.catch((err: unknown) => this.logger.error({ err }, 'holdfast storage failed to start: @{err.message}'));
    this.#claiming = this.#ready
      .then((ready) => claimOwnTarballs(ready))
      .catch((err: unknown) => this.logger.warn({ err }, 'holdfast storage could not claim its tarballs under its own service: @{err.message}'));
  }

  /** The stored secret, or '' when there is none yet (Verdaccio then makes one and calls setSecret). */
  async getSecret(): Promise<string> {
    return (await (await this.#ready).packages.getSetting('secret')) ?? '';
  }

  async setSecret(secret: string): Promise<void> {
    await (await this.#ready).packages.setSetting('secret', secret);
  }

  add(name: string, callback: Callback): void {
    this.#ready.then(({ packages }) => packages.addToList(name)).then(() => callback(null), (err: unknown) => callback(err));
  }

  remove(name: string, callback: Callback): void {
    this.#ready.then(({ packages }) => packages.removeFromList(name)).then(() => callback(null), (err: unknown) => callback(err));
  }

  /** Calls back with the names of the local packages. */
  get(callback: Callback): void {
    this.#ready.then(({ packages }) => packages.list()).then((list) => callback(null, list.map((item) => item.name)), (err: unknown) => callback(err));
  }

  search(onPackage: onSearchPackage, onEnd: onEndSearchPackage, validateName: onValidatePackage): void {
    (async () => {
      const { packages } = await this.#ready;
      for (const item of await packages.list()) {
        if (!validateName(item.name.split('/').pop() ?? item.name)) continue;
        // Verdaccio's search wants {name, path, time} per package, as its
        // filesystem storage gives it, though the type says Package.
        const found = { name: item.name, path: item.name, time: item.updatedAt.getTime() } as unknown as Package;
        await new Promise<void>((resolve, reject) => onPackage(found, (err) => (err ? reject(err) : resolve())));
      }
    })().then(() => onEnd(null), onEnd);
  }

  getPackageStorage(packageName: string): HoldfastPackageStorage {
    return new HoldfastPackageStorage(packageName, this.#ready, this.#locks, this.logger);
  }

  async saveToken(token: Token): Promise<void> {
    await (await this.#ready).packages.saveToken(token.user, token.key, token);
  }

  async deleteToken(user: string, tokenKey: string): Promise<void> {
    await (await this.#ready).packages.deleteToken(user, tokenKey);
  }

  async readTokens(filter: TokenFilter): Promise<Token[]> {
    return (await (await this.#ready).packages.readTokens(filter.user)) as Token[];
  }

  /** Closes the database and the driver's connections (tests, shutdown). */
  async close(): Promise<void> {
    const { db, driver } = await this.#ready;
    await this.#claiming;
    await driver.close();
    await db.close();
  }
}
